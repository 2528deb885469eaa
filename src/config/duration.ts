/** Go-style durations ("1h", "30m", "1h30m", "200ms", "1.5s"), as Istio and Envoy configs write them. */
import { Type } from '@sinclair/typebox';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_RE = /^(\d+(\.\d+)?(ms|s|m|h|d))+$/;
const PART_RE = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

/** Schema for a duration string; the value stays a string in the document. */
export const Duration = (options: { default?: string; description?: string } = {}) =>
  Type.String({ pattern: DURATION_RE.source, ...options });

/** Milliseconds in a duration string. Throws on a malformed one (schemas reject those first). */
export function parseDuration(text: string): number {
  if (!DURATION_RE.test(text)) throw new Error(`invalid duration "${text}" (expected e.g. 1h, 30m, 200ms)`);
  let ms = 0;
  for (const [, n, unit] of text.matchAll(PART_RE)) ms += Number(n) * UNIT_MS[unit!]!;
  return Math.round(ms);
}
