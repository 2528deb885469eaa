/** Structured JSON logs (pino) with secrets redacted by key wherever they appear. */
import { pino, type Logger } from 'pino';

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
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.MESHWARD_LOG_LEVEL ?? 'info';
  const opts = { level, base: { service: 'meshward' }, redact: { paths: REDACTED_PATHS, censor: '[REDACTED]' } };
  return options.destination ? pino(opts, options.destination as pino.DestinationStream) : pino(opts);
}

/** A logger that drops everything (tests, CLI commands that print their own output). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
