/** Calendar periods of quotas, in UTC (pure). */
export type QuotaPeriod = 'day' | 'month';

export interface PeriodBounds {
  /** Stable id of the period, part of the counter key: `2026-01-31` or `2026-01`. */
  id: string;
  /** Start (inclusive) and end (exclusive), ms since the epoch. */
  start: number;
  end: number;
}

const pad = (n: number) => String(n).padStart(2, '0');

export function periodBounds(period: QuotaPeriod, now: number): PeriodBounds {
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  if (period === 'month') {
    return { id: `${y}-${pad(m + 1)}`, start: Date.UTC(y, m, 1), end: Date.UTC(y, m + 1, 1) };
  }
  const day = d.getUTCDate();
  return { id: `${y}-${pad(m + 1)}-${pad(day)}`, start: Date.UTC(y, m, day), end: Date.UTC(y, m, day + 1) };
}
