import { parseDuration } from '../config/duration.ts';

/**
 * How long a prepared CA waits before it signs, by default: sidecars must hold the new root first.
 * A bundle is re-fetched at most every BUNDLE_REFRESH_HINT_S (the SPIFFE bundle's refresh hint
 * and the HTTP max-age; SDS pushes sooner), plus time for it to reach every proxy.
 */
export const BUNDLE_REFRESH_HINT_S = 300;
/** Propagation allowance after a refresh: agents poll every 60 s, SDS pushes and Envoy reloads. */
export const BUNDLE_PROPAGATION_S = 60;
/** `meshward ca rotate`'s default --activate-after: 6 minutes. */
export const SAFE_ACTIVATION_DELAY_MS = (BUNDLE_REFRESH_HINT_S + BUNDLE_PROPAGATION_S) * 1000;
/** The same default as a duration, as `--activate-after` and `activateAfter` write it ("6m"). */
export const SAFE_ACTIVATION_DELAY = `${SAFE_ACTIVATION_DELAY_MS / 60_000}m`;

/**
 * Milliseconds before a prepared CA signs, for the CLI and the HTTP API alike: the given duration
 * ("0" or "0s" activates at once), else the safe default. Throws on a malformed duration.
 */
export function activationDelayMs(activateAfter: string | undefined): number {
  if (activateAfter === undefined) return SAFE_ACTIVATION_DELAY_MS;
  return activateAfter === '0' ? 0 : parseDuration(activateAfter);
}
