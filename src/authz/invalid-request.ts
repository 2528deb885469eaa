/**
 * CheckRequests that cannot be decoded. grpc-js (and the fast path, copying it) answered them
 * INTERNAL with nothing logged or counted, so a broken or hostile client was invisible. Decoding
 * now never throws: a failure becomes a marker the check turns into INVALID_ARGUMENT, counted in
 * `meshward_authz_invalid_requests_total{reason}` and logged at most once per interval. The fast
 * path also notes calls whose gRPC framing it refuses before decoding (`InvalidRequests.note`).
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import type { Clock } from '../lib/clock.ts';
import type { RefusedReason } from '../lib/grpc-unary-stream.ts';
import { MeshwardError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { counter, type Registry } from '../lib/metrics.ts';
import { RateLimitedLog } from '../lib/rate-limited-log.ts';
import type { CheckRequestJson } from './input.ts';
import type { CheckFn } from './server.ts';

const UNDECODABLE = Symbol('meshward.undecodableCheckRequest');

/** What a tolerant decoder returns for bytes that are not a CheckRequest. */
interface Undecodable {
  readonly [UNDECODABLE]: string;
}

export class InvalidCheckRequestError extends MeshwardError {
  constructor(reason: string) {
    super('INVALID_ARGUMENT', `the CheckRequest could not be decoded: ${reason}`);
  }
}

/** `decode`, returning a marker instead of throwing (the handler, not the transport, answers). */
export function tolerantDecoder(decode: (message: Buffer) => CheckRequestJson): (message: Buffer) => CheckRequestJson {
  return (message) => {
    try {
      return decode(message);
    } catch (err) {
      return { [UNDECODABLE]: err instanceof Error ? err.message : String(err) } as unknown as CheckRequestJson;
    }
  };
}

/** The Authorization service definition with Check's request deserializer made tolerant. */
export function tolerantService(definition: ServiceDefinition): ServiceDefinition {
  return Object.fromEntries(Object.entries(definition).map(([name, method]) =>
    [name, name === 'Check' ? { ...method, requestDeserialize: tolerantDecoder(method.requestDeserialize as (m: Buffer) => CheckRequestJson) } : method])) as ServiceDefinition;
}

/**
 * Requests refused before any decision: counted in `meshward_authz_invalid_requests_total{reason}`
 * and logged at most once per interval (with a count), so a broken or hostile client is visible
 * without one log line per request.
 */
export class InvalidRequests {
  readonly #counter;
  readonly #log;

  constructor(deps: { registry: Registry; logger: Logger; clock: Clock; logIntervalMs?: number }) {
    this.#counter = counter(deps.registry, 'meshward_authz_invalid_requests_total', 'ext_authz CheckRequests refused before any decision, by reason (undecodable: not a CheckRequest; framing, encoding, too_large: the gRPC message around it).', ['reason']);
    this.#log = new RateLimitedLog(deps.logger, 'invalid CheckRequests refused before any decision', { clock: deps.clock, ...(deps.logIntervalMs ? { intervalMs: deps.logIntervalMs } : {}) });
  }

  note(reason: 'undecodable' | RefusedReason, error: string): void {
    this.#counter.inc({ reason });
    this.#log.note({ reason, error });
  }
}

/** `check`, answering an undecodable request with InvalidCheckRequestError (noted in `invalid`). */
export function rejectUndecodable(check: CheckFn, invalid: InvalidRequests): CheckFn {
  return (request, options) => {
    const reason = (request as Partial<Undecodable>)[UNDECODABLE];
    if (reason === undefined) return check(request, options);
    invalid.note('undecodable', reason);
    throw new InvalidCheckRequestError(reason);
  };
}
