/**
 * Human-readable log lines for a terminal, without pino-pretty: pino still produces its JSON line
 * (redaction applied), and this destination rewrites it as
 * `12:00:01.234 INFO  http: message key=value …`, with an error's stack indented below.
 */
import { MeshwardError } from './errors.ts';

export type LogFormat = 'text' | 'json';

export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];

/** `--log-format`, else MESHWARD_LOG_FORMAT, else text on a terminal and JSON otherwise (collectors). */
export function resolveLogFormat(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, isTty = process.stdout.isTTY === true): LogFormat {
  const chosen = flag ?? env.MESHWARD_LOG_FORMAT;
  if (chosen === undefined || chosen === '') return isTty ? 'text' : 'json';
  if (!(LOG_FORMATS as readonly string[]).includes(chosen)) {
    throw new MeshwardError('INVALID_ARGUMENT', `log format "${chosen}" is not one of ${LOG_FORMATS.join(', ')} (--log-format or MESHWARD_LOG_FORMAT)`);
  }
  return chosen as LogFormat;
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const COLOURS: Record<number, string> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '35' };
/** Fields every line has, or shown in the line's head. */
const HEAD_FIELDS = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'service', 'component', 'err']);

function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

function clock(ms: unknown): string {
  return typeof ms === 'number' ? new Date(ms).toISOString().slice(11, 23) : '--:--:--.---';
}

/** One pino JSON line as text (the line itself when it is not JSON). */
export function formatLogLine(line: string, colour = false): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const level = typeof rec.level === 'number' ? rec.level : 30;
  const name = (LEVELS[level] ?? String(level)).padEnd(5);
  const shownLevel = colour ? `\x1b[${COLOURS[level] ?? '0'}m${name}\x1b[0m` : name;
  const component = typeof rec.component === 'string' ? `${rec.component}: ` : '';
  const fields = Object.entries(rec).filter(([k]) => !HEAD_FIELDS.has(k)).map(([k, v]) => `${k}=${value(v)}`);
  let out = `${clock(rec.time)} ${shownLevel} ${component}${String(rec.msg ?? '')}${fields.length ? ` ${fields.join(' ')}` : ''}\n`;
  const err = rec.err as { message?: string; stack?: string; code?: string } | undefined;
  if (err) out += `${(err.stack || `${err.code ? `${err.code}: ` : ''}${err.message ?? ''}`).split('\n').map((l) => `    ${l}`).join('\n')}\n`;
  return out;
}

/** A pino destination writing text lines to `out` (pino calls write once per line). */
export function textDestination(out: NodeJS.WritableStream = process.stdout, colour = out === process.stdout && process.stdout.isTTY === true && !process.env.NO_COLOR): { write(line: string): boolean } {
  return { write: (line: string) => out.write(formatLogLine(line, colour)) };
}
