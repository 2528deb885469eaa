/**
 * Istio's push debounce: after a change wait for `quietMs` without another, but never more than
 * `maxMs` after the first, then run once. Bursts of edits become one push.
 */
import type { Clock } from '../lib/clock.ts';

export interface DebounceOptions {
  quietMs: number;
  maxMs: number;
}

export const DEFAULT_DEBOUNCE: DebounceOptions = { quietMs: 100, maxMs: 1000 };

export class Debouncer {
  readonly #clock: Clock;
  readonly #options: DebounceOptions;
  readonly #fn: (firstTriggeredAt: number) => void;
  #cancelQuiet?: () => void;
  #cancelMax?: () => void;
  #firstAt?: number;

  constructor(clock: Clock, options: DebounceOptions, fn: (firstTriggeredAt: number) => void) {
    if (!(options.quietMs >= 0 && options.maxMs >= options.quietMs)) throw new RangeError(`debounce needs 0 <= quietMs <= maxMs (got ${options.quietMs}/${options.maxMs})`);
    this.#clock = clock;
    this.#options = options;
    this.#fn = fn;
  }

  trigger(): void {
    this.#firstAt ??= this.#clock.now();
    this.#cancelQuiet?.();
    this.#cancelQuiet = this.#clock.setTimer(this.#options.quietMs, () => this.#fire());
    this.#cancelMax ??= this.#clock.setTimer(this.#options.maxMs, () => this.#fire());
  }

  /** True while a trigger waits to fire. */
  get pending(): boolean {
    return this.#firstAt !== undefined;
  }

  cancel(): void {
    this.#cancelQuiet?.();
    this.#cancelMax?.();
    this.#cancelQuiet = this.#cancelMax = this.#firstAt = undefined;
  }

  #fire(): void {
    const first = this.#firstAt;
    this.cancel();
    if (first !== undefined) this.#fn(first);
  }
}
