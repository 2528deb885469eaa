/** Error codes of the audit store, the auditor API and `meshward audit`. */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { MeshwardError, registerErrorCodes } from '../lib/errors.ts';

registerErrorCodes({
  AUDIT_STORE_UNAVAILABLE: { grpc: GrpcStatus.UNAVAILABLE, http: 503, exit: 69, description: 'The audit store (SQLite file or PostgreSQL) cannot be opened or written.' },
  AUDIT_STORE_MISCONFIGURED: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 500, exit: 78, description: 'The audit store settings are inconsistent (e.g. store: postgres without a database URL).' },
  AUDIT_INVALID_QUERY: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 400, exit: 2, description: 'An audit query filter, cursor or interval is malformed.' },
  AUDIT_RECORD_NOT_FOUND: { grpc: GrpcStatus.NOT_FOUND, http: 404, exit: 1, description: 'No decision record has that id.' },
  AUDIT_OVERLOADED: { grpc: GrpcStatus.UNAVAILABLE, http: 503, exit: 69, description: 'The audit log could not take a decision record (queue full with `audit.onOverload: fail`, or stopping): the check is answered with an error, never a decision, so Envoy\'s failure mode decides.' },
  AUDIT_CHAIN_BROKEN: { grpc: GrpcStatus.DATA_LOSS, http: 409, exit: 65, description: 'Audit verification found an edited, inserted or deleted record.' },
  AUDIT_RECORDS_MISSING: { grpc: GrpcStatus.DATA_LOSS, http: 409, exit: 66, description: 'A signed audit checkpoint names records the store no longer holds (tail truncated, or an older copy restored).' },
  AUDIT_CHECKPOINT_INVALID: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 400, exit: 67, description: 'An audit checkpoint is malformed, forged or altered, or signed by a key that is not trusted.' },
});

export class AuditStoreUnavailableError extends MeshwardError {
  constructor(message: string, cause?: unknown) {
    super('AUDIT_STORE_UNAVAILABLE', message, { cause });
  }
}

export class AuditStoreMisconfiguredError extends MeshwardError {
  constructor(message: string) {
    super('AUDIT_STORE_MISCONFIGURED', message);
  }
}

/** A decision record the audit log cannot take: the check must not be answered with its decision. */
export class AuditOverloadedError extends MeshwardError {
  constructor(message: string) {
    super('AUDIT_OVERLOADED', message);
  }
}

/** A malformed filter; `parameter` names the offending query parameter or CLI flag. */
export class AuditInvalidQueryError extends MeshwardError {
  readonly parameter: string;
  constructor(parameter: string, message: string) {
    super('AUDIT_INVALID_QUERY', `${parameter}: ${message}`, { details: { parameter } });
    this.parameter = parameter;
  }
}

export class AuditRecordNotFoundError extends MeshwardError {
  constructor(decisionId: string) {
    super('AUDIT_RECORD_NOT_FOUND', `no decision record with id ${decisionId}`, { details: { decisionId } });
  }
}

/** A checkpoint that cannot be trusted: malformed, bad signature, unknown key. Names where it came from. */
export class AuditCheckpointInvalidError extends MeshwardError {
  constructor(message: string) {
    super('AUDIT_CHECKPOINT_INVALID', message);
  }
}
