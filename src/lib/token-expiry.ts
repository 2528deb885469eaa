/**
 * Streams that hand out secrets (SDS, ADS) live only as long as the token that opened them: at
 * expiry they end with UNAUTHENTICATED and the proxy must reconnect with a valid token. Otherwise
 * a deleted or rotated service account would keep receiving renewed private keys on a stream
 * opened long ago.
 */
import type { Clock } from './clock.ts';
import { MeshwardError } from './errors.ts';

/**
 * Calls `end` when `validUntil` (ms since the epoch) passes; returns the cancel function, or
 * undefined for a credential that does not expire.
 */
export function endWhenTokenExpires(validUntil: number | undefined, clock: Clock, end: (err: MeshwardError) => void): (() => void) | undefined {
  if (validUntil === undefined) return undefined;
  return clock.setTimer(validUntil - clock.now(), () => {
    end(new MeshwardError('UNAUTHENTICATED', `the token this stream was opened with expired at ${new Date(validUntil).toISOString()}; reconnect with a fresh token`));
  });
}
