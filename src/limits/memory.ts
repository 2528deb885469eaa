/** In-process counters: the embedded default for a single replica. Single-threaded, hence atomic. */
import { type FixedWindowState, type HitOutcome, fixedWindowHit, gcraHit } from './algorithms.ts';
import type { LimitBackend, LimitHit } from './backend.ts';

const MIN_SWEEP_SIZE = 10_000;

export class MemoryBackend implements LimitBackend {
  readonly kind = 'memory';
  /** GCRA theoretical arrival times (µs), in a mutable cell: one hash lookup per hit. */
  #tat = new Map<string, { us: number }>();
  #windows = new Map<string, FixedWindowState & { windowMs: number }>();
  #sweepAt = MIN_SWEEP_SIZE;

  hit(hits: readonly LimitHit[], now: number): HitOutcome[] {
    const out = new Array<HitOutcome>(hits.length);
    for (let i = 0; i < hits.length; i++) out[i] = this.hitOne(hits[i]!, now);
    if (this.#tat.size + this.#windows.size > this.#sweepAt) this.sweep(now);
    return out;
  }

  /** One hit (the hot path the benchmark measures). */
  hitOne(h: LimitHit, now: number): HitOutcome {
    if (h.algorithm === 'gcra') {
      const cell = this.#tat.get(h.key);
      const r = gcraHit(cell?.us, now, h.limit, h.windowMs, h.cost);
      if (r.tatUs !== undefined) {
        if (cell) cell.us = r.tatUs;
        else this.#tat.set(h.key, { us: r.tatUs });
      }
      return r.outcome;
    }
    const current = this.#windows.get(h.key);
    const r = fixedWindowHit(current, now, h.limit, h.windowMs, h.cost);
    if (current) {
      current.windowStart = r.state.windowStart;
      current.count = r.state.count;
      current.windowMs = h.windowMs;
    } else {
      this.#windows.set(h.key, { windowStart: r.state.windowStart, count: r.state.count, windowMs: h.windowMs });
    }
    return r.outcome;
  }

  /**
   * Drops counters that no longer hold anything (a full bucket, an ended window): they answer the
   * same as absent ones. Amortised: runs when the maps have doubled since the last sweep.
   */
  sweep(now: number): void {
    const nowUs = now * 1000;
    for (const [k, tat] of this.#tat) if (tat.us <= nowUs) this.#tat.delete(k);
    for (const [k, w] of this.#windows) if (w.windowStart + w.windowMs <= now) this.#windows.delete(k);
    this.#sweepAt = Math.max(MIN_SWEEP_SIZE, 2 * (this.#tat.size + this.#windows.size));
  }

  /** Counters held (tests, metrics). */
  size(): number {
    return this.#tat.size + this.#windows.size;
  }

  healthy(): boolean {
    return true;
  }

  async close(): Promise<void> {
    this.#tat.clear();
    this.#windows.clear();
  }
}
