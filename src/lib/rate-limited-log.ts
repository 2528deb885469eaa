/**
 * A log line for an event that a client can cause at will (a refused stream, an undecodable
 * request): the first occurrence is logged at once, then at most one line per interval carrying
 * how many occurred since the previous line. Counting every occurrence is the metrics' job; this
 * keeps a flood from turning into megabytes of identical lines.
 */
import { type Clock, systemClock } from './clock.ts';
import type { Logger } from './logger.ts';

export const DEFAULT_LOG_INTERVAL_MS = 10_000;

export interface RateLimitedLogOptions {
  intervalMs?: number;
  clock?: Clock;
  level?: 'warn' | 'info' | 'error';
}

export class RateLimitedLog {
  readonly #logger: Logger;
  readonly #message: string;
  readonly #intervalMs: number;
  readonly #clock: Clock;
  readonly #level: 'warn' | 'info' | 'error';
  #lastAt = Number.NEGATIVE_INFINITY;
  #pending = 0;
  #fields: Record<string, unknown> = {};
  #cancel: (() => void) | undefined;

  constructor(logger: Logger, message: string, options: RateLimitedLogOptions = {}) {
    this.#logger = logger;
    this.#message = message;
    this.#intervalMs = options.intervalMs ?? DEFAULT_LOG_INTERVAL_MS;
    this.#clock = options.clock ?? systemClock;
    this.#level = options.level ?? 'warn';
  }

  /** One occurrence; `fields` of the latest occurrence go on the line that reports it. */
  note(fields: Record<string, unknown> = {}): void {
    this.#pending++;
    this.#fields = fields;
    if (this.#cancel) return;
    const wait = this.#lastAt + this.#intervalMs - this.#clock.now();
    if (wait <= 0) {
      this.#flush();
      return;
    }
    this.#cancel = this.#clock.setTimer(wait, () => {
      this.#cancel = undefined;
      this.#flush();
    });
  }

  /** Logs what is pending now and stops the timer (shutdown). */
  close(): void {
    this.#cancel?.();
    this.#cancel = undefined;
    this.#flush();
  }

  #flush(): void {
    if (this.#pending === 0) return;
    this.#logger[this.#level]({ ...this.#fields, count: this.#pending, intervalSeconds: this.#intervalMs / 1000 }, this.#message);
    this.#pending = 0;
    this.#lastAt = this.#clock.now();
  }
}
