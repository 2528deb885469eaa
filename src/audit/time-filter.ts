/**
 * Strict times for audit filters. `Date.parse` reads almost anything (`' OR '1'='1` became a 2001
 * date, `2026-02-30` became March 2), so a mistyped filter silently selected the wrong records.
 * Accepted: RFC 3339 date-times with an offset (`2026-01-31T09:30:00Z`, `...+02:00`, fractions of
 * a second), a full date (`2026-01-31`, midnight UTC), epoch milliseconds, or a duration ago.
 * Every field is checked against the calendar (month length, leap years); no leap seconds.
 */
const DATE_TIME_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2}))?$/;

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Epoch ms of an RFC 3339 date-time or full date; undefined when it is not one or is not on the calendar. */
export function parseRfc3339(text: string): number | undefined {
  const m = DATE_TIME_RE.exec(text);
  if (!m) return undefined;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return undefined;
  if (m[4] === undefined) return Date.UTC(year, month - 1, day);
  const [hour, minute, second] = [Number(m[4]), Number(m[5]), Number(m[6])];
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const offset = m[8]!;
  let offsetMinutes = 0;
  if (offset !== 'Z' && offset !== 'z') {
    const [oh, om] = [Number(offset.slice(1, 3)), Number(offset.slice(4, 6))];
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = (offset[0] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const fractionMs = m[7] ? Math.floor(Number(`0${m[7]}`) * 1000) : 0;
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day); // years 0–99 stay as written (Date.UTC would add 1900)
  utc.setUTCHours(hour, minute, second, fractionMs);
  return utc.getTime() - offsetMinutes * 60_000;
}
