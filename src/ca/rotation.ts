/**
 * When things rotate (pure). CA slots follow SPIRE: prepare the next CA when the active one has
 * less than min(½ lifetime, 30 d) left, activate it below min(⅙ lifetime, 7 d). Workload SVIDs
 * renew at `ratio` of their lifetime plus up to `jitter` (Istio's grace ratio).
 */
const DAY = 86_400_000;

export interface Lifetime {
  notBefore: number;
  notAfter: number;
}

export function preparePoint(ca: Lifetime): number {
  return ca.notAfter - Math.min((ca.notAfter - ca.notBefore) / 2, 30 * DAY);
}

export function activatePoint(ca: Lifetime): number {
  return ca.notAfter - Math.min((ca.notAfter - ca.notBefore) / 6, 7 * DAY);
}

/** A new root is needed when the current one would not outlive two more intermediates. */
export function needsNewRoot(rootNotAfter: number, now: number, intermediateTtlMs: number): boolean {
  return rootNotAfter - now < 2 * intermediateTtlMs;
}

/** `random` in [0, 1): the jitter spreads a fleet's renewals so they do not land together. */
export function renewPoint(svid: { issuedAt: number; notAfter: number }, ratio: number, jitter: number, random: number): number {
  const lifetime = svid.notAfter - svid.issuedAt;
  return svid.issuedAt + Math.min(0.95, ratio + jitter * random) * lifetime;
}
