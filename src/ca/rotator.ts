/** Drives the authority's rotation phases from the clock (the shell around `Authority.advance`). */
import type { Clock } from '../lib/clock.ts';
import type { Logger } from '../lib/logger.ts';
import type { Authority } from './authority.ts';

/** Long timers are re-armed at least hourly: wall clocks jump, and setTimeout caps at ~24 days. */
const MAX_SLEEP_MS = 3_600_000;
const RETRY_MS = 30_000;

export class Rotator {
  readonly #authority: Authority;
  readonly #clock: Clock;
  readonly #logger?: Logger;
  readonly #onChange: () => void;
  /** A shared CA advances under its lock in PostgreSQL (shared.ts): asynchronously. */
  readonly #advance?: () => Promise<boolean>;
  #cancel?: () => void;
  #running = false;

  constructor(deps: { authority: Authority; clock: Clock; logger?: Logger; onChange?: () => void; advance?: () => Promise<boolean> }) {
    this.#authority = deps.authority;
    this.#advance = deps.advance;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.#onChange = deps.onChange ?? (() => {});
  }

  start(): void {
    this.#running = true;
    this.tick();
  }

  /** Applies due transitions now and re-arms the timer (also after a forced rotation). */
  tick(): void {
    this.#cancel?.();
    this.#cancel = undefined;
    if (!this.#running) return;
    if (this.#advance) {
      this.#advance().then((changed) => {
        if (changed) this.#onChange();
        this.#arm(Math.min(MAX_SLEEP_MS, Math.max(1000, this.#authority.nextEventAt() - this.#clock.now())));
      }, (err: unknown) => {
        this.#logger?.error({ err }, 'CA rotation step failed; retrying');
        this.#arm(RETRY_MS);
      });
      return;
    }
    let delay: number;
    try {
      if (this.#authority.advance()) this.#onChange();
      delay = Math.min(MAX_SLEEP_MS, Math.max(1000, this.#authority.nextEventAt() - this.#clock.now()));
    } catch (err) {
      this.#logger?.error({ err }, 'CA rotation step failed; retrying');
      delay = RETRY_MS;
    }
    this.#cancel = this.#clock.setTimer(delay, () => this.tick());
  }

  #arm(delay: number): void {
    this.#cancel?.();
    this.#cancel = this.#running ? this.#clock.setTimer(delay, () => this.tick()) : undefined;
  }

  stop(): void {
    this.#running = false;
    this.#cancel?.();
    this.#cancel = undefined;
  }
}
