/**
 * Structured logs (pino) with secrets redacted by key wherever they appear: JSON lines, or text
 * for a person at a terminal (log-format.ts).
 */
import { pino, type Logger } from 'pino';
import { type LogFormat, resolveLogFormat, textDestination } from './log-format.ts';

export type { Logger };

/** Keys whose values never reach a log line. */
export const REDACTED_PATHS = [
  'privateKey', '*.privateKey', 'key', '*.key', 'keyPem', '*.keyPem',
  'token', '*.token', 'authorization', '*.authorization', '*.headers.authorization',
  '*.headers.cookie', 'password', '*.password',
];

export interface LoggerOptions {
  level?: string;
  /** Write somewhere other than stdout (tests). */
  destination?: NodeJS.WritableStream;
  /** Default: MESHWARD_LOG_FORMAT, else text when stdout is a terminal, else json. */
  format?: LogFormat;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.MESHWARD_LOG_LEVEL ?? 'info';
  const opts = { level, base: { service: 'meshward' }, redact: { paths: REDACTED_PATHS, censor: '[REDACTED]' } };
  // A destination given (tests) is not a terminal: JSON unless asked otherwise.
  const format = options.format ?? (options.destination ? 'json' : resolveLogFormat(undefined));
  if (format === 'text') return pino(opts, textDestination(options.destination) as pino.DestinationStream);
  return options.destination ? pino(opts, options.destination as pino.DestinationStream) : pino(opts);
}

/** A logger that drops everything (tests, CLI commands that print their own output). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
