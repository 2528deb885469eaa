/** Nesting depth of parsed JSON (pure), checked without recursing deeper than the limit. */

/**
 * Whether `value` holds a container more than `levels` levels down (a container itself is level 1,
 * a primitive level 0). Recursion stops at `levels`, so a 100,000-level document costs a bounded
 * stack; primitives are skipped before the call (most members are strings).
 */
export function nestedDeeperThan(value: unknown, levels: number): boolean {
  return value !== null && typeof value === 'object' && containerDeeperThan(value, levels);
}

function containerDeeperThan(value: object, levels: number): boolean {
  if (levels <= 0) return true;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (v !== null && typeof v === 'object' && containerDeeperThan(v, levels - 1)) return true;
    }
    return false;
  }
  for (const key in value) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== null && typeof v === 'object' && containerDeeperThan(v, levels - 1)) return true;
  }
  return false;
}
