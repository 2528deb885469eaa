/** Error codes of the policy engines (YAML AuthorizationPolicy, and the engines plugged in for Rego). */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { MeshwardError, registerErrorCodes } from '../lib/errors.ts';

registerErrorCodes({
  POLICY_COMPILE_FAILED: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 422, exit: 65, description: 'A policy could not be compiled (bad pattern, CIDR, template or module).' },
  POLICY_EVALUATION_FAILED: { grpc: GrpcStatus.INTERNAL, http: 500, exit: 70, description: 'A policy engine failed while evaluating a request.' },
  POLICY_UNDEFINED_DECISION: { grpc: GrpcStatus.INTERNAL, http: 500, exit: 70, description: 'A policy produced no decision (undefined) or one that is neither a boolean nor an object with "allowed".' },
  POLICY_BUDGET_EXCEEDED: { grpc: GrpcStatus.INTERNAL, http: 500, exit: 70, description: 'A policy evaluation ran out of its time budget (RegoPolicy evaluationBudget, Mesh extAuthz.policyEvaluationBudget) and was stopped.' },
  POLICY_ENGINE_MISSING: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 422, exit: 65, description: 'No policy engine is registered for a document kind the configuration uses.' },
});

/** Where in the configuration a compile problem is. */
export interface PolicyLocation {
  /** `namespace/name` of the policy document. */
  policy?: string;
  /** Source file and line of the document. */
  file?: string;
  line?: number;
}

export class PolicyCompileError extends MeshwardError {
  readonly location: PolicyLocation;
  constructor(message: string, location: PolicyLocation = {}, cause?: unknown) {
    const where = [location.file && `${location.file}${location.line ? `:${location.line}` : ''}`, location.policy].filter(Boolean).join(' ');
    super('POLICY_COMPILE_FAILED', where ? `${where}: ${message}` : message, { cause, details: { ...location } });
    this.location = location;
  }

  /** The same error, located at a document (keeps an inner location when there is one). */
  static at(err: unknown, location: PolicyLocation): PolicyCompileError {
    if (err instanceof PolicyCompileError && err.location.policy) return err;
    const message = err instanceof PolicyCompileError ? err.message : err instanceof Error ? err.message : String(err);
    return new PolicyCompileError(message, location, err);
  }
}

export class PolicyEvaluationError extends MeshwardError {
  constructor(policy: string, cause: unknown) {
    super('POLICY_EVALUATION_FAILED', `${policy}: evaluation failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause, details: { policy } });
  }
}

export class PolicyUndefinedDecisionError extends MeshwardError {
  constructor(policy: string, detail: string) {
    super('POLICY_UNDEFINED_DECISION', `${policy}: ${detail}`, { details: { policy } });
  }
}

export class PolicyEngineMissingError extends MeshwardError {
  constructor(kind: string) {
    super('POLICY_ENGINE_MISSING', `no policy engine is registered for ${kind} documents`, { details: { kind } });
  }
}

/** An evaluation ran out of its time budget and was stopped (in-thread, or by terminating its worker). */
export class PolicyBudgetExceededError extends MeshwardError {
  readonly budgetMs: number;
  constructor(policy: string, budgetMs: number, how: string) {
    super('POLICY_BUDGET_EXCEEDED', `${policy}: evaluation exceeded its budget of ${budgetMs} ms (${how})`, { details: { policy, budgetMs } });
    this.budgetMs = budgetMs;
  }
}
