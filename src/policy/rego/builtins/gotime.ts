/**
 * Go's time layouts (reference time "Mon Jan 2 15:04:05 MST 2006") for formatting and parsing,
 * on instants kept as bigint nanoseconds since the epoch. Civil dates use the proleptic Gregorian
 * calendar for any year; time-zone offsets come from Intl (IANA names, "UTC", "Local").
 */
export const NS_PER_SEC = 1_000_000_000n;
export const MIN_INT64 = -(2n ** 63n);
export const MAX_INT64 = 2n ** 63n - 1n;

export const NAMED_LAYOUTS: Record<string, string> = {
  ANSIC: 'Mon Jan _2 15:04:05 2006',
  UnixDate: 'Mon Jan _2 15:04:05 MST 2006',
  RubyDate: 'Mon Jan 02 15:04:05 -0700 2006',
  RFC822: '02 Jan 06 15:04 MST',
  RFC822Z: '02 Jan 06 15:04 -0700',
  RFC850: 'Monday, 02-Jan-06 15:04:05 MST',
  RFC1123: 'Mon, 02 Jan 2006 15:04:05 MST',
  RFC1123Z: 'Mon, 02 Jan 2006 15:04:05 -0700',
  RFC3339: '2006-01-02T15:04:05Z07:00',
  RFC3339Nano: '2006-01-02T15:04:05.999999999Z07:00',
  Kitchen: '3:04PM',
  Stamp: 'Jan _2 15:04:05',
  StampMilli: 'Jan _2 15:04:05.000',
  StampMicro: 'Jan _2 15:04:05.000000',
  StampNano: 'Jan _2 15:04:05.000000000',
  DateTime: '2006-01-02 15:04:05',
  DateOnly: '2006-01-02',
  TimeOnly: '15:04:05',
};

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

export class TimeError extends Error {}

// ----- civil calendar ------------------------------------------------------------------------

/** Days since 1970-01-01 of a civil date (Hinnant's algorithm; any year). */
export function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

export function civilFromDays(z: number): [number, number, number] {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const y = yoe + era * 400;
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp + (mp < 10 ? 3 : -9);
  return [m <= 2 ? y + 1 : y, m, d];
}

/** Broken-down local time of an instant in a zone. */
export interface Civil {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  nanos: number;
  weekday: number;
  yday: number;
  offset: number;
  zone: string;
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

export function civil(ns: bigint, tz: Zone): Civil {
  const secs = floorDiv(ns, NS_PER_SEC);
  const nanos = Number(ns - secs * NS_PER_SEC);
  const offset = tz.offsetAt(Number(secs));
  const local = Number(secs) + offset;
  const days = Math.floor(local / 86400);
  const rem = local - days * 86400;
  const [year, month, day] = civilFromDays(days);
  return {
    year,
    month,
    day,
    hour: Math.floor(rem / 3600),
    minute: Math.floor((rem % 3600) / 60),
    second: rem % 60,
    nanos,
    weekday: (((days + 4) % 7) + 7) % 7,
    yday: days - daysFromCivil(year, 1, 1) + 1,
    offset,
    zone: tz.abbreviation(Number(secs)),
  };
}

/** Instant of a civil time in a zone (Go's time.Date: fields normalize, offsets from the zone). */
export function instant(y: number, mo: number, d: number, h: number, mi: number, s: number, nanos: bigint, tz: Zone): bigint {
  // Normalize month overflow first, as Go does.
  const m0 = mo - 1;
  y += Math.floor(m0 / 12);
  mo = (((m0 % 12) + 12) % 12) + 1;
  const localSecs = daysFromCivil(y, mo, 1) * 86400 + (d - 1) * 86400 + h * 3600 + mi * 60 + s;
  // Find the offset that applies at the resulting instant (two passes handle DST edges).
  let offset = tz.offsetAt(localSecs);
  offset = tz.offsetAt(localSecs - offset);
  return BigInt(localSecs - offset) * NS_PER_SEC + nanos;
}

// ----- zones ---------------------------------------------------------------------------------

export interface Zone {
  name: string;
  offsetAt(epochSeconds: number): number;
  abbreviation(epochSeconds: number): string;
}

export const UTC: Zone = { name: 'UTC', offsetAt: () => 0, abbreviation: () => 'UTC' };

export function fixedZone(name: string, offset: number): Zone {
  return { name, offsetAt: () => offset, abbreviation: () => name };
}

const zoneCache = new Map<string, Zone>();
const MAX_DATE_SECS = 8.64e12;

function intlOffset(fmt: Intl.DateTimeFormat, secs: number): number {
  const clamped = Math.max(-MAX_DATE_SECS, Math.min(MAX_DATE_SECS, secs));
  const part = fmt.formatToParts(new Date(clamped * 1000)).find((p) => p.type === 'timeZoneName')?.value ?? 'GMT';
  const m = /GMT([+-])(\d{1,2})(?::?(\d{2}))?(?::?(\d{2}))?/.exec(part);
  if (!m) return 0;
  const v = Number(m[2]) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0);
  return m[1] === '-' ? -v : v;
}

/** Loads a zone by IANA name; "" and "UTC" are UTC, "Local" the process zone. */
export function loadZone(name: string): Zone {
  if (name === '' || name === 'UTC') return UTC;
  const cached = zoneCache.get(name);
  if (cached) return cached;
  const tzName = name === 'Local' ? Intl.DateTimeFormat().resolvedOptions().timeZone : name;
  let offsetFmt: Intl.DateTimeFormat;
  let shortFmt: Intl.DateTimeFormat;
  try {
    offsetFmt = new Intl.DateTimeFormat('en-US', { timeZone: tzName, timeZoneName: 'longOffset' });
    shortFmt = new Intl.DateTimeFormat('en-US', { timeZone: tzName, timeZoneName: 'short' });
  } catch {
    throw new TimeError(`unknown time zone ${name}`);
  }
  const zone: Zone = {
    name,
    offsetAt: (secs) => intlOffset(offsetFmt, secs),
    abbreviation: (secs) => {
      const clamped = Math.max(-MAX_DATE_SECS, Math.min(MAX_DATE_SECS, secs));
      const abbr = shortFmt.formatToParts(new Date(clamped * 1000)).find((p) => p.type === 'timeZoneName')?.value ?? '';
      if (/^[A-Z]{3,5}$/.test(abbr)) return abbr;
      // Go prints numeric abbreviations like "+0530" when the zone has no letters.
      const off = intlOffset(offsetFmt, secs);
      const sign = off < 0 ? '-' : '+';
      const a = Math.abs(off);
      const hh = String(Math.floor(a / 3600)).padStart(2, '0');
      const mm = Math.floor((a % 3600) / 60);
      return mm ? `${sign}${hh}${String(mm).padStart(2, '0')}` : `${sign}${hh}`;
    },
  };
  zoneCache.set(name, zone);
  return zone;
}

// ----- layout tokens -------------------------------------------------------------------------

type Tok =
  | { t: 'lit'; s: string }
  | { t: 'field'; f: string }
  | { t: 'frac'; digits: number; trim: boolean; sep: string };

const FIELDS = [
  'January', 'Jan', 'Monday', 'Mon', 'MST',
  'Z07:00:00', '-07:00:00', 'Z070000', '-070000', 'Z07:00', '-07:00', 'Z0700', '-0700', 'Z07', '-07',
  '2006', '002', '__2', '_2', '01', '02', '03', '04', '05', '06', '15', 'PM', 'pm', '1', '2', '3', '4', '5',
];

const layoutCache = new Map<string, Tok[]>();

/** Layout tokens, cached: policies use a handful of layouts. */
export function tokenize(layout: string): Tok[] {
  let toks = layoutCache.get(layout);
  if (!toks) {
    toks = tokenizeLayout(layout);
    if (layoutCache.size >= 256) layoutCache.clear();
    layoutCache.set(layout, toks);
  }
  return toks;
}

function tokenizeLayout(layout: string): Tok[] {
  const out: Tok[] = [];
  let lit = '';
  let i = 0;
  const flush = () => {
    if (lit) out.push({ t: 'lit', s: lit });
    lit = '';
  };
  while (i < layout.length) {
    // Fractional seconds: .000 / ,000 (fixed) or .999 / ,999 (trimmed), not followed by another digit.
    const frac = /^([.,])(0+|9+)(?![0-9])/.exec(layout.slice(i));
    if (frac) {
      flush();
      out.push({ t: 'frac', digits: frac[2]!.length, trim: frac[2]![0] === '9', sep: frac[1]! });
      i += frac[0].length;
      continue;
    }
    const f = FIELDS.find((x) => layout.startsWith(x, i) && fieldAllowed(layout, i, x));
    if (f) {
      flush();
      out.push({ t: 'field', f });
      i += f.length;
      continue;
    }
    lit += layout[i];
    i++;
  }
  flush();
  return out;
}

/** Go reads "Jan"/"Mon" as fields only when no lower-case letter follows ("Monday"/"January" match first). */
function fieldAllowed(layout: string, i: number, f: string): boolean {
  return (f !== 'Jan' && f !== 'Mon') || !/^[a-z]/.test(layout.slice(i + 3));
}

// ----- formatting ----------------------------------------------------------------------------

function pad(n: number, w: number, c = '0'): string {
  return String(n).padStart(w, c);
}

function formatOffset(off: number, f: string): string {
  if (f.startsWith('Z') && off === 0) return 'Z';
  const sign = off < 0 ? '-' : '+';
  const a = Math.abs(off);
  const hh = pad(Math.floor(a / 3600), 2);
  const mm = pad(Math.floor((a % 3600) / 60), 2);
  const ss = pad(a % 60, 2);
  const body = f.replace(/^[Z-]/, '');
  switch (body) {
    case '07':
      return sign + hh;
    case '0700':
      return sign + hh + mm;
    case '07:00':
      return `${sign}${hh}:${mm}`;
    case '070000':
      return sign + hh + mm + ss;
    default:
      return `${sign}${hh}:${mm}:${ss}`;
  }
}

export function formatTime(c: Civil, layout: string): string {
  let out = '';
  for (const tok of tokenize(layout)) {
    if (tok.t === 'lit') {
      out += tok.s;
      continue;
    }
    if (tok.t === 'frac') {
      let digits = pad(c.nanos, 9).slice(0, tok.digits);
      if (tok.trim) {
        digits = digits.replace(/0+$/, '');
        if (digits) out += tok.sep + digits;
      } else out += tok.sep + digits;
      continue;
    }
    const h12 = c.hour % 12 === 0 ? 12 : c.hour % 12;
    switch (tok.f) {
      case 'January':
        out += MONTHS[c.month - 1];
        break;
      case 'Jan':
        out += MONTHS[c.month - 1]!.slice(0, 3);
        break;
      case 'Monday':
        out += DAYS[c.weekday];
        break;
      case 'Mon':
        out += DAYS[c.weekday]!.slice(0, 3);
        break;
      case 'MST':
        out += c.zone;
        break;
      case '2006':
        out += c.year < 0 ? '-' + pad(-c.year, 4) : pad(c.year, 4);
        break;
      case '06':
        out += pad(((c.year % 100) + 100) % 100, 2);
        break;
      case '01':
        out += pad(c.month, 2);
        break;
      case '1':
        out += c.month;
        break;
      case '02':
        out += pad(c.day, 2);
        break;
      case '_2':
        out += pad(c.day, 2, ' ');
        break;
      case '2':
        out += c.day;
        break;
      case '002':
        out += pad(c.yday, 3);
        break;
      case '__2':
        out += pad(c.yday, 3, ' ');
        break;
      case '15':
        out += pad(c.hour, 2);
        break;
      case '03':
        out += pad(h12, 2);
        break;
      case '3':
        out += h12;
        break;
      case '04':
        out += pad(c.minute, 2);
        break;
      case '4':
        out += c.minute;
        break;
      case '05':
        out += pad(c.second, 2);
        break;
      case '5':
        out += c.second;
        break;
      case 'PM':
        out += c.hour >= 12 ? 'PM' : 'AM';
        break;
      case 'pm':
        out += c.hour >= 12 ? 'pm' : 'am';
        break;
      default:
        out += formatOffset(c.offset, tok.f);
    }
  }
  return out;
}

// ----- parsing -------------------------------------------------------------------------------

function bad(value: string, layout: string, what: string): TimeError {
  return new TimeError(`parsing time ${JSON.stringify(value)} as ${JSON.stringify(layout)}: cannot parse ${JSON.stringify(what)}`);
}

/** Parses a value against a Go layout; returns nanoseconds since the epoch. */
export function parseTime(layout: string, value: string, defaultZone: Zone = UTC): bigint {
  let year = 1;
  let month = 1;
  let day = 1;
  let yday = -1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let nanos = 0n;
  let pm: boolean | undefined;
  let offset: number | undefined;
  let zoneAbbr: string | undefined;
  let rest = value;
  const toks = tokenize(layout);
  const num = (min: number, max: number, what: string): number => {
    const m = new RegExp(`^\\d{${min},${max}}`).exec(rest);
    if (!m) throw bad(value, layout, rest);
    rest = rest.slice(m[0].length);
    void what;
    return Number(m[0]);
  };
  const fraction = () => {
    const m = /^[.,](\d+)/.exec(rest);
    if (!m) return;
    nanos = BigInt(m[1]!.slice(0, 9).padEnd(9, '0'));
    rest = rest.slice(m[0].length);
  };
  for (let ti = 0; ti < toks.length; ti++) {
    const tok = toks[ti]!;
    if (tok.t === 'lit') {
      // Go skips leading spaces flexibly; require the literal otherwise.
      if (!rest.startsWith(tok.s)) throw bad(value, layout, rest);
      rest = rest.slice(tok.s.length);
      continue;
    }
    if (tok.t === 'frac') {
      if (tok.trim) fraction();
      else {
        const m = new RegExp(`^[.,](\\d{${tok.digits}})`).exec(rest);
        if (!m) throw bad(value, layout, rest);
        nanos = BigInt(m[1]!.padEnd(9, '0').slice(0, 9));
        rest = rest.slice(m[0].length);
      }
      continue;
    }
    switch (tok.f) {
      case '2006': {
        const m = /^\d{4}/.exec(rest);
        if (!m) throw bad(value, layout, rest);
        year = Number(m[0]);
        rest = rest.slice(4);
        break;
      }
      case '06': {
        const y = num(2, 2, 'year');
        year = y >= 69 ? 1900 + y : 2000 + y;
        break;
      }
      case 'January':
      case 'Jan': {
        const names = tok.f === 'Jan' ? MONTHS.map((n) => n.slice(0, 3)) : MONTHS;
        const idx = names.findIndex((n) => rest.toLowerCase().startsWith(n.toLowerCase()));
        if (idx < 0) throw bad(value, layout, rest);
        month = idx + 1;
        rest = rest.slice(names[idx]!.length);
        break;
      }
      case 'Monday':
      case 'Mon': {
        const names = tok.f === 'Mon' ? DAYS.map((n) => n.slice(0, 3)) : DAYS;
        const idx = names.findIndex((n) => rest.toLowerCase().startsWith(n.toLowerCase()));
        if (idx < 0) throw bad(value, layout, rest);
        rest = rest.slice(names[idx]!.length);
        break;
      }
      case '01':
        month = num(2, 2, 'month');
        break;
      case '1':
        month = num(1, 2, 'month');
        break;
      case '02':
        day = num(2, 2, 'day');
        break;
      case '_2':
        if (rest.startsWith(' ')) rest = rest.slice(1);
        day = num(1, 2, 'day');
        break;
      case '2':
        day = num(1, 2, 'day');
        break;
      case '002':
        yday = num(3, 3, 'day');
        break;
      case '__2':
        rest = rest.replace(/^ {1,2}/, '');
        yday = num(1, 3, 'day');
        break;
      case '15':
        hour = num(1, 2, 'hour');
        break;
      case '03':
        hour = num(2, 2, 'hour');
        break;
      case '3':
        hour = num(1, 2, 'hour');
        break;
      case '04':
        minute = num(2, 2, 'minute');
        break;
      case '4':
        minute = num(1, 2, 'minute');
        break;
      case '05':
      case '5':
        second = num(tok.f === '05' ? 2 : 1, 2, 'second');
        // A fraction in the value but not in the layout is accepted (Go does).
        if (toks[ti + 1]?.t !== 'frac') fraction();
        break;
      case 'PM':
      case 'pm': {
        const m = /^(AM|PM|am|pm)/.exec(rest);
        if (!m) throw bad(value, layout, rest);
        pm = m[0].toUpperCase() === 'PM';
        rest = rest.slice(2);
        break;
      }
      case 'MST': {
        const m = /^(UTC|GMT([+-]\d{1,2})?|[A-Z]{3,5}|[+-]\d{2,4})/.exec(rest);
        if (!m) throw bad(value, layout, rest);
        zoneAbbr = m[0];
        if (m[0] === 'UTC' || m[0] === 'GMT') offset = 0;
        rest = rest.slice(m[0].length);
        break;
      }
      default: {
        if (tok.f.startsWith('Z') && rest.startsWith('Z')) {
          offset = 0;
          rest = rest.slice(1);
          break;
        }
        const m = /^([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?/.exec(rest);
        if (!m) throw bad(value, layout, rest);
        const v = Number(m[2]) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0);
        offset = m[1] === '-' ? -v : v;
        rest = rest.slice(m[0].length);
      }
    }
  }
  if (rest.length) throw new TimeError(`parsing time ${JSON.stringify(value)}: extra text: ${JSON.stringify(rest)}`);
  if (pm !== undefined) {
    if (hour > 12) throw new TimeError(`parsing time ${JSON.stringify(value)}: hour out of range`);
    if (pm && hour < 12) hour += 12;
    if (!pm && hour === 12) hour = 0;
  }
  if (yday > 0) {
    const [, m, d] = civilFromDays(daysFromCivil(year, 1, 1) + yday - 1);
    month = m;
    day = d;
  }
  if (month < 1 || month > 12) throw new TimeError(`parsing time ${JSON.stringify(value)}: month out of range`);
  const dim = civilFromDays(daysFromCivil(year, month + 1 > 12 ? 1 : month + 1, 1) - 1)[2];
  if (day < 1 || day > (month === 12 ? 31 : dim)) throw new TimeError(`parsing time ${JSON.stringify(value)}: day out of range`);
  if (hour > 23 || minute > 59 || second > 59) throw new TimeError(`parsing time ${JSON.stringify(value)}: time out of range`);
  const zone = offset !== undefined ? fixedZone(zoneAbbr ?? '', offset) : zoneAbbr ? defaultZone : defaultZone;
  return instant(year, month, day, hour, minute, second, nanos, zone);
}

/** Go's time.ParseDuration, in nanoseconds. */
export function parseDuration(s: string): bigint {
  const orig = s;
  let neg = false;
  if (s[0] === '-' || s[0] === '+') {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') throw new TimeError(`time: invalid duration ${JSON.stringify(orig)}`);
  const units: Record<string, bigint> = {
    ns: 1n,
    us: 1000n,
    'µs': 1000n,
    'μs': 1000n,
    ms: 1_000_000n,
    s: NS_PER_SEC,
    m: 60n * NS_PER_SEC,
    h: 3600n * NS_PER_SEC,
  };
  let total = 0n;
  while (s.length) {
    const m = /^(\d*)(?:\.(\d*))?([a-zµμ]+)/.exec(s);
    if (!m || (m[1] === '' && (m[2] ?? '') === '')) throw new TimeError(`time: invalid duration ${JSON.stringify(orig)}`);
    const unit = units[m[3]!];
    if (unit === undefined) throw new TimeError(`time: unknown unit ${JSON.stringify(m[3])} in duration ${JSON.stringify(orig)}`);
    const whole = BigInt(m[1] || '0') * unit;
    const fracDigits = m[2] ?? '';
    const frac = fracDigits ? (BigInt(fracDigits) * unit) / 10n ** BigInt(fracDigits.length) : 0n;
    total += whole + frac;
    s = s.slice(m[0].length);
  }
  if (total > MAX_INT64) throw new TimeError(`time: invalid duration ${JSON.stringify(orig)}`);
  return neg ? -total : total;
}
