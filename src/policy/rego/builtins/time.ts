/** time.* built-ins on nanosecond timestamps, with Go's layouts and range checks. */
import { isNumber, normalizeNumber, toBigInt, type Value } from '../value.ts';
import { fail, intArg, operandTypeError, stringArg } from './args.ts';
import { builtin, type BuiltinDefinition } from './definition.ts';
import {
  civil,
  civilFromDays,
  daysFromCivil,
  formatTime,
  instant,
  loadZone,
  MAX_INT64,
  MIN_INT64,
  NAMED_LAYOUTS,
  parseDuration,
  parseTime,
  TimeError,
  UTC,
  type Zone,
} from './gotime.ts';
import { T_ANY, T_NULL, T_NUMBER, T_STRING, tArray, tUnion } from './types.ts';

const T_TIME_ARG = tUnion(T_NUMBER, tArray(T_ANY));

function wrap<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof TimeError) fail(err.message);
    throw err;
  }
}

function checkRange(ns: bigint): Value {
  if (ns < MIN_INT64 || ns > MAX_INT64) fail('time outside of valid range');
  return normalizeNumber(ns);
}

/** An instant operand: integer nanoseconds within int64 ("timestamp too big" otherwise, as OPA). */
function nanosOf(v: Value): bigint {
  if (!isNumber(v)) throw operandTypeError(1, v, 'number');
  const n = toBigInt(v);
  if (n === undefined || n < MIN_INT64 || n > MAX_INT64) fail('timestamp too big');
  return n;
}

const TIME_OPERAND = 'either number (ns) or [number (ns), string (tz)]';

/** `ns` or `[ns, tz]` or `[ns, tz, layout]` (OPA's tzTime). */
function timeArg(args: Value[], i: number): { ns: bigint; zone: Zone; layout?: string } {
  const v = args[i]!;
  if (Array.isArray(v)) {
    if (v.length === 0) throw operandTypeError(1, v, TIME_OPERAND);
    const ns = nanosOf(v[0]!);
    const tz = v[1];
    if (tz !== undefined && typeof tz !== 'string') throw operandTypeError(1, tz, 'string');
    const zone = wrap(() => loadZone(tz ?? ''));
    const layout = v[2];
    if (layout !== undefined && typeof layout !== 'string') throw operandTypeError(1, layout, 'string');
    return layout === undefined ? { ns, zone } : { ns, zone, layout };
  }
  if (isNumber(v)) return { ns: nanosOf(v), zone: UTC };
  throw operandTypeError(1, v, TIME_OPERAND);
}

function layoutOf(layout: string): string {
  return NAMED_LAYOUTS[layout] ?? layout;
}

function addDate(args: Value[]): Value {
  const { ns, zone } = timeArg(args, 0);
  const years = intArg(args, 1);
  const months = intArg(args, 2);
  const days = intArg(args, 3);
  // Go's AddDate works on the civil time in the operand's zone.
  const c = civil(ns, zone);
  const nanos = BigInt(c.nanos);
  return checkRange(instant(c.year + years, c.month + months, c.day + days, c.hour, c.minute, c.second, nanos, zone));
}

/** OPA's time.diff: field-wise difference with borrowing, both instants in the first operand's zone. */
function diff(args: Value[]): Value {
  const first = timeArg(args, 0);
  const second = timeArg(args, 1);
  const zone = first.zone;
  const [lo, hi] = first.ns > second.ns ? [second.ns, first.ns] : [first.ns, second.ns];
  const c1 = civil(lo, zone);
  const c2 = civil(hi, zone);
  let year = c2.year - c1.year;
  let month = c2.month - c1.month;
  let day = c2.day - c1.day;
  let hour = c2.hour - c1.hour;
  let min = c2.minute - c1.minute;
  let sec = c2.second - c1.second;
  if (sec < 0) {
    sec += 60;
    min--;
  }
  if (min < 0) {
    min += 60;
    hour--;
  }
  if (hour < 0) {
    hour += 24;
    day--;
  }
  if (day < 0) {
    // Days in c1's month: day 32 of it overflows into the next month by (32 - days in month).
    const overflow = civilFromDays(daysFromCivil(c1.year, c1.month, 1) + 31)[2];
    day += 32 - overflow;
    month--;
  }
  if (month < 0) {
    month += 12;
    year--;
  }
  return [year, month, day, hour, min, sec];
}

function sleep(args: Value[]): Value {
  const ns = wrap(() => parseDuration(stringArg(args, 0)));
  const ms = Math.min(Number(ns / 1_000_000n), 1000);
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return null;
}

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

export const TIME: readonly BuiltinDefinition[] = [
  builtin('time.now_ns', [], T_NUMBER, (_a, ctx) => normalizeNumber(ctx.now()), { nondeterministic: true }),
  builtin('time.parse_ns', [T_STRING, T_STRING], T_NUMBER, (a) =>
    checkRange(wrap(() => parseTime(layoutOf(stringArg(a, 0)), stringArg(a, 1)))),
  ),
  builtin('time.parse_rfc3339_ns', [T_STRING], T_NUMBER, (a) =>
    checkRange(wrap(() => parseTime(NAMED_LAYOUTS.RFC3339!, stringArg(a, 0)))),
  ),
  builtin('time.parse_duration_ns', [T_STRING], T_NUMBER, (a) => normalizeNumber(wrap(() => parseDuration(stringArg(a, 0))))),
  builtin('time.date', [T_TIME_ARG], tArray(T_NUMBER), (a) => {
    const { ns, zone } = timeArg(a, 0);
    const c = civil(ns, zone);
    return [c.year, c.month, c.day];
  }),
  builtin('time.clock', [T_TIME_ARG], tArray(T_NUMBER), (a) => {
    const { ns, zone } = timeArg(a, 0);
    const c = civil(ns, zone);
    return [c.hour, c.minute, c.second];
  }),
  builtin('time.weekday', [T_TIME_ARG], T_STRING, (a) => {
    const { ns, zone } = timeArg(a, 0);
    return WEEKDAYS[civil(ns, zone).weekday]!;
  }),
  builtin('time.add_date', [T_NUMBER, T_NUMBER, T_NUMBER, T_NUMBER], T_NUMBER, addDate),
  builtin('time.diff', [T_TIME_ARG, T_TIME_ARG], tArray(T_NUMBER), diff),
  builtin('time.format', [T_TIME_ARG], T_STRING, (a) => {
    const { ns, zone, layout } = timeArg(a, 0);
    return formatTime(civil(ns, zone), layoutOf(layout ?? 'RFC3339Nano'));
  }),
  builtin('test.sleep', [T_STRING], T_NULL, sleep),
];
