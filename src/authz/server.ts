/**
 * The `envoy.service.auth.v3.Authorization/Check` handler (shell): runs the pipeline on the
 * current compiled snapshot, maps the decision to a CheckResponse, records metrics and the audit
 * record. An internal failure answers with a gRPC error status (never an allow), so Envoy's
 * `failure_mode_allow` / `status_on_error` decide, as documented.
 */
import { performance } from 'node:perf_hooks';
import type { sendUnaryData, ServerUnaryCall, ServiceError } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import type { DecisionRecordV1, InputBytes } from '../audit/record.ts';
import type { Clock } from '../lib/clock.ts';
import { errorCodeOf, toGrpcStatus } from '../lib/errors.ts';
import { newDecisionId } from '../lib/ids.ts';
import type { Logger } from '../lib/logger.ts';
import type { GrpcFailure, UnaryMethod, UnaryRoute } from '../lib/grpc-unary-stream.ts';
import { FastHistogram, type FastHistogramChild } from '../lib/fast-histogram.ts';
import { counter, type Registry } from '../lib/metrics.ts';
import { AUDIT_INPUT_DECODER } from './audit-input.ts';
import { decodeCheckRequest, encodeCheckResponse } from './codec.ts';
import { AuthzNotReadyError } from './errors.ts';
import { type InvalidRequests, tolerantDecoder } from './invalid-request.ts';
import { buildInput, type CheckRequestJson } from './input.ts';
import { type CheckOutcome, type CompiledPipeline, runPipeline } from './pipeline.ts';
import { decisionRecord, errorRecord, worthRecording } from './record.ts';
import { buildCheckResponse } from './response.ts';

/**
 * The audit capability's public face, as ext_authz uses it. No answered decision without a record:
 * `append` returns (true or nothing) once queued, a promise to await before answering when the
 * queue is full (backpressure), false when the operator chose to answer without a record (drop),
 * or throws (AUDIT_OVERLOADED: answered as an error, never as the decision).
 */
export interface AuditSink {
  append(record: DecisionRecordV1, inputBytes?: InputBytes): boolean | Promise<void> | void;
  /** While the audit queue is full (backpressure): a promise to await before taking a new request. */
  readable?(): Promise<void> | undefined;
}

/** Undefined, or a promise transports await before reading a new request (see AuditSink.readable). */
export type Admission = () => Promise<void> | undefined;

export interface CheckDeps {
  pipeline(): CompiledPipeline | undefined;
  audit(): AuditSink | undefined;
  clock: Clock;
  logger: Logger;
  registry: Registry;
}

export interface CheckResult {
  response: Record<string, unknown>;
  outcome: CheckOutcome;
  record: DecisionRecordV1;
}

export interface CheckOptions {
  /** False for what-if checks (`POST /v1/authz/check`): decided exactly the same, never audited. */
  record?: boolean;
  /**
   * The serialized CheckRequest `request` was decoded from (the HTTP/2 fast path has it): the
   * audit writer thread then rebuilds and masks the input from it, off the event loop. It must not
   * change afterwards.
   */
  wire?: Uint8Array;
}

export type CheckFn = (request: CheckRequestJson, options?: CheckOptions) => CheckResult | Promise<CheckResult>;

/** The check as a function (the gRPC handler, `authz.check()` and the benchmark all use it). */
export function createCheck(deps: CheckDeps): CheckFn {
  const checks = counter(deps.registry, 'meshward_authz_checks_total', 'ext_authz checks by decision.', ['decision']);
  // Checks take microseconds: the default buckets (from 50 µs) would put everything in the first one.
  const buckets = [0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.2];
  const duration = FastHistogram.in(deps.registry, 'meshward_authz_check_duration_seconds', 'Time meshward spent deciding an ext_authz check.', 'decision', buckets);
  const stageDuration = FastHistogram.in(deps.registry, 'meshward_authz_stage_duration_seconds', 'Time per pipeline stage.', 'stage', buckets);
  // Handles cached per label value: each is then a plain bucket increment.
  const stageTimers = new Map<string, FastHistogramChild>();
  const observe = (stage: string, seconds: number) => {
    let t = stageTimers.get(stage);
    if (!t) stageTimers.set(stage, (t = stageDuration.child(stage)));
    t.observe(seconds);
  };
  const byDecision = new Map<string, { count: { inc(): void }; time: FastHistogramChild }>();
  const decided = (decision: string, seconds: number) => {
    let m = byDecision.get(decision);
    if (!m) byDecision.set(decision, (m = { count: checks.labels({ decision }), time: duration.child(decision) }));
    m.count.inc();
    m.time.observe(seconds);
  };

  const finish = (outcome: CheckOutcome, decisionId: string, t0: number, audited: boolean, wire: Uint8Array | undefined): CheckResult | Promise<CheckResult> => {
    const { decision, ctx } = outcome;
    const latency = performance.now() - t0;
    const response = buildCheckResponse(decision, ctx.mutations, decisionId);
    const record = decisionRecord(ctx, decision, { decisionId, time: ctx.now, latencyUs: Math.round(latency * 1000) });
    let queued: boolean | Promise<void> | void = true;
    if (audited && worthRecording(ctx, decision)) {
      try {
        queued = deps.audit()?.append(record, wire && { decoder: AUDIT_INPUT_DECODER, bytes: wire });
      } catch (err) {
        // The record cannot be taken (onOverload: fail, or stopping): answer an error, not the decision.
        checks.inc({ decision: 'error' });
        throw err;
      }
    }
    decided(decision.outcome, latency / 1000);
    const result = { response, outcome, record };
    // Backpressure: answered only once its record is queued.
    return queued instanceof Promise ? queued.then(() => result) : result;
  };

  /** Records and logs an internal failure, then rethrows it (Envoy's failure mode decides), once its record is queued. */
  const fail = (err: unknown, request: CheckRequestJson, pipeline: CompiledPipeline, call: { decisionId: string; now: number; t0: number; recordIt: boolean }): Promise<never> => {
    checks.inc({ decision: 'error' });
    const built = buildInput(request, { pathNormalization: pipeline.snapshot.mesh.pathNormalization.normalization });
    const record = errorRecord({
      decisionId: call.decisionId, time: call.now, snapshot: pipeline.snapshot, input: built.input, facts: built.facts,
      destination: pipeline.workloads.resolve(built.input.attributes).display, latencyUs: Math.round((performance.now() - call.t0) * 1000),
    }, `${errorCodeOf(err)}: ${err instanceof Error ? err.message : String(err)}`);
    let queued: boolean | Promise<void> | void = false;
    try {
      if (call.recordIt) queued = deps.audit()?.append(record);
    } catch {
      // Refused by the audit log (counted and logged there); the answer is an error either way.
    }
    deps.logger.error({ err: { code: errorCodeOf(err), message: (err as Error).message }, decisionId: call.decisionId }, 'ext_authz check failed; Envoy failure mode applies');
    if (queued instanceof Promise) return queued.then(() => { throw err; }, () => { throw err; });
    throw err;
  };

  // No closures are made per check on the synchronous path (the common one): each would be an
  // allocation, and under tsx a keep-names call, on every request.
  return (request, options) => {
    const recordIt = options?.record !== false;
    const pipeline = deps.pipeline();
    if (!pipeline) throw new AuthzNotReadyError();
    const t0 = performance.now();
    const decisionId = newDecisionId();
    const now = deps.clock.now();
    let outcome: CheckOutcome | Promise<CheckOutcome>;
    try {
      outcome = runPipeline(pipeline, request, { decisionId, now, observe });
    } catch (err) {
      return fail(err, request, pipeline, { decisionId, now, t0, recordIt });
    }
    if (outcome instanceof Promise) {
      return outcome.then((o) => finish(o, decisionId, t0, recordIt, options?.wire), (err: unknown) => fail(err, request, pipeline, { decisionId, now, t0, recordIt }));
    }
    return finish(outcome, decisionId, t0, recordIt, options?.wire);
  };
}

/** The same status, message and trailers as the fast path answers with (grpcFailure). */
function toServiceError(err: unknown): Partial<ServiceError> {
  const failure = grpcFailure(err);
  const metadata = new Metadata();
  for (const [name, value] of Object.entries(failure.trailers ?? {})) metadata.set(name, value);
  return { code: failure.code, details: failure.message, metadata };
}

/**
 * The grpc-js unary handler around a CheckFn. While `admission` holds (the audit queue is full),
 * new calls are parked before the pipeline runs.
 */
export function checkHandler(check: CheckFn, admission?: Admission) {
  const run = (call: ServerUnaryCall<CheckRequestJson, unknown>, callback: sendUnaryData<unknown>): void => {
    let result: CheckResult | Promise<CheckResult>;
    try {
      result = check(call.request);
    } catch (err) {
      callback(toServiceError(err));
      return;
    }
    if (result instanceof Promise) result.then((r) => callback(null, r.response), (err: unknown) => callback(toServiceError(err)));
    else callback(null, result.response);
  };
  return (call: ServerUnaryCall<CheckRequestJson, unknown>, callback: sendUnaryData<unknown>): void => {
    const wait = admission?.();
    if (wait === undefined) run(call, callback);
    else void wait.then(() => { if (!call.cancelled) run(call, callback); });
  };
}

function grpcFailure(err: unknown): GrpcFailure {
  return { code: toGrpcStatus(err), message: err instanceof Error ? err.message : String(err), trailers: { 'meshward-error-code': errorCodeOf(err) } };
}

/**
 * Check served directly on HTTP/2 streams (src/lib/grpc-unary-stream.ts), bypassing grpc-js's
 * call machinery; same protos, same statuses and trailers as `checkHandler`, which stays
 * registered as the fallback on the gRPC port.
 */
export function checkRoute(check: CheckFn, admission?: Admission, invalid?: Pick<InvalidRequests, 'note'>): UnaryRoute {
  const method: UnaryMethod<CheckRequestJson, Record<string, unknown>> = {
    // The hand-written codec (codec.ts): proven equal to proto-loader's by test, 2.4–3.3× faster.
    deserialize: tolerantDecoder(decodeCheckRequest),
    serialize: encodeCheckResponse,
    handle: (request, message) => {
      // Streams read before the queue filled are held here, before the pipeline makes a record.
      const wait = admission?.();
      if (wait !== undefined) return wait.then(() => check(request, { wire: message })).then(responseOf);
      const result = check(request, { wire: message });
      return result instanceof Promise ? result.then(responseOf) : result.response;
    },
    failure: grpcFailure,
    refused: (reason, message) => invalid?.note(reason, message),
  };
  return admission ? { method, admission } : { method };
}

function responseOf(result: CheckResult): Record<string, unknown> {
  return result.response;
}
