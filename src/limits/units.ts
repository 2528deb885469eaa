/** Rate-limit units and their window lengths, as the reference service and the RLS proto name them. */
import type { RATE_LIMIT_UNITS } from '../config/kinds/rate-limit-policy.ts';

export type LimitUnit = (typeof RATE_LIMIT_UNITS)[number];

const SECOND = 1000;
const DAY = 86_400 * SECOND;

/**
 * Window length in milliseconds. Month and year are fixed lengths (30 and 365 days) exactly as the
 * reference service's `UnitToDivider`, so fixed windows line up with its cache keys.
 */
export const UNIT_MS: Readonly<Record<LimitUnit, number>> = {
  second: SECOND,
  minute: 60 * SECOND,
  hour: 3600 * SECOND,
  day: DAY,
  month: 30 * DAY,
  year: 365 * DAY,
};

/** Normalises the reference service's case-insensitive unit names. */
export function parseUnit(text: string): LimitUnit {
  const unit = text.toLowerCase() as LimitUnit;
  if (!(unit in UNIT_MS)) throw new Error(`unknown rate limit unit "${text}"`);
  return unit;
}

/** The RLS proto's enum name for a unit. */
export function unitEnumName(unit: LimitUnit): string {
  return unit.toUpperCase();
}
