import { describe, expect, it } from 'vitest';
import { call, callError, NOW_NS } from './helpers.ts';

describe('time', () => {
  it('reads the evaluation clock from the context', () => {
    expect(call('time.now_ns')).toBe(NOW_NS);
  });

  it('parses Go layouts, named layouts and RFC 3339 across the whole int64 range', () => {
    expect(call('time.parse_ns', '2006-01-02T15:04:05Z07:00', '2017-06-02T19:00:00-07:00')).toBe(1496455200000000000n);
    expect(call('time.parse_ns', "01/02 03:04:05PM '06 -0700", "06/02 07:00:00PM '17 -0700")).toBe(1496455200000000000n);
    expect(call('time.parse_ns', 'RFC822Z', '02 Jun 17 19:00 -0700')).toBe(1496455200000000000n);
    expect(call('time.parse_ns', '2006-01-02', '2020-02-29')).toBe(1582934400000000000n);
    expect(call('time.parse_rfc3339_ns', '1677-09-21T00:12:43.145224192-00:00')).toBe(-9223372036854775808n);
    expect(call('time.parse_rfc3339_ns', '2262-04-11T23:47:16.854775807-00:00')).toBe(9223372036854775807n);
    expect(callError('time.parse_rfc3339_ns', '2262-04-11T23:47:16.854775808-00:00').message).toContain('time outside of valid range');
    expect(callError('time.parse_ns', '2006-01-02', 'nope').code).toBe('eval_builtin_error');
  });

  it('parses Go durations', () => {
    expect(call('time.parse_duration_ns', '100ms')).toBe(100000000);
    expect(call('time.parse_duration_ns', '1h30m')).toBe(5400000000000);
    expect(call('time.parse_duration_ns', '-1.5us')).toBe(-1500);
    expect(callError('time.parse_duration_ns', '5 minutes').code).toBe('eval_builtin_error');
  });

  it('breaks instants into date, clock and weekday in a time zone', () => {
    expect(call('time.date', 1517814000000000000)).toEqual([2018, 2, 5]);
    expect(call('time.date', [1517814000000000000, 'America/Los_Angeles'])).toEqual([2018, 2, 4]);
    expect(call('time.clock', [1517832000000000000, 'America/New_York'])).toEqual([7, 0, 0]);
    expect(call('time.weekday', 1518350400000000000)).toBe('Sunday');
    expect(callError('time.date', 1.58e21).message).toContain('timestamp too big');
    expect(callError('time.date', [0, 'Mars/Olympus']).code).toBe('eval_builtin_error');
  });

  it('adds calendar units and diffs instants with borrowing', () => {
    expect(call('time.add_date', 1585852421593912000n, 3, 9, 12)).toBe(1705257221593912000n);
    expect(call('time.add_date', 1585852421593912000n, -1, -1, -1)).toBe(1551465221593912000n);
    expect(callError('time.add_date', 0, 2262, 1, 1).message).toContain('time outside of valid range');
    const day = (s: string) => call('time.parse_ns', '2006-01-02', s)!;
    expect(call('time.diff', day('2020-02-02'), day('2020-03-01'))).toEqual([0, 0, 28, 0, 0, 0]);
    expect(call('time.diff', day('2004-02-29'), day('2005-03-01'))).toEqual([1, 0, 1, 0, 0, 0]);
  });

  it('adds dates in the operand time zone and rejects fractional or malformed instants like OPA', () => {
    // 2021-03-27 12:00 in Paris + 1 day crosses the DST change: still 12:00 local, 23 hours later.
    const paris = call('time.parse_ns', '2006-01-02T15:04:05Z07:00', '2021-03-27T12:00:00+01:00') as number | bigint;
    const next = call('time.add_date', [paris, 'Europe/Paris'], 0, 0, 1) as bigint;
    expect(call('time.clock', [next, 'Europe/Paris'])).toEqual([12, 0, 0]);
    expect(Number(BigInt(next) - BigInt(paris)) / 3.6e12).toBe(23);
    expect(callError('time.date', 1.5).message).toContain('timestamp too big');
    expect(callError('time.date', []).message).toBe('time.date: operand 1 must be either number (ns) or [number (ns), string (tz)] but got array');
  });

  it('formats with layouts and zones', () => {
    const t = 1670006453141828752n;
    expect(call('time.format', t)).toBe('2022-12-02T18:40:53.141828752Z');
    expect(call('time.format', [t, 'Asia/Kolkata'])).toBe('2022-12-03T00:10:53.141828752+05:30');
    expect(call('time.format', [t, 'Asia/Kolkata', 'Mon Jan 02 15:04:05 -0700 2006'])).toBe('Sat Dec 03 00:10:53 +0530 2022');
    expect(call('time.format', [t, 'Asia/Kolkata', 'RFC1123Z'])).toBe('Sat, 03 Dec 2022 00:10:53 +0530');
  });
});
