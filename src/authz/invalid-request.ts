/**
 * CheckRequests that cannot be decoded. grpc-js (and the fast path, copying it) answered them
 * INTERNAL with nothing logged or counted, so a broken or hostile client was invisible. Decoding
 * now never throws: a failure becomes a marker the check turns into INVALID_ARGUMENT, counted in
 * `meshward_authz_invalid_requests_total{reason}` and logged at most once per interval.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import type { Clock } from '../lib/clock.ts';
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

/** `check`, answering an undecodable request with InvalidCheckRequestError (counted, rate-limited log). */
export function rejectUndecodable(check: CheckFn, deps: { registry: Registry; logger: Logger; clock: Clock; logIntervalMs?: number }): CheckFn {
  const invalid = counter(deps.registry, 'meshward_authz_invalid_requests_total', 'ext_authz CheckRequests refused before any decision, by reason (undecodable: not a CheckRequest).', ['reason']);
  const log = new RateLimitedLog(deps.logger, 'invalid CheckRequests answered INVALID_ARGUMENT', { clock: deps.clock, ...(deps.logIntervalMs ? { intervalMs: deps.logIntervalMs } : {}) });
  return (request, options) => {
    const reason = (request as Partial<Undecodable>)[UNDECODABLE];
    if (reason === undefined) return check(request, options);
    invalid.inc({ reason: 'undecodable' });
    log.note({ reason: 'undecodable', error: reason });
    throw new InvalidCheckRequestError(reason);
  };
}
