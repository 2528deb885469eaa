/** In-process counters: the embedded default for a single replica. Single-threaded, hence atomic. */
import { type FixedWindowState, type HitOutcome, fixedWindowHit, gcraHit } from './algorithms.ts';
import type { LimitBackend, LimitHit } from './backend.ts';

const MIN_SWEEP_SIZE = 10_000;

/** GCRA theoretical arrival time (µs), in a mutable cell: one lookup per hit. */
interface TatCell { us: number }
type WindowCell = FixedWindowState & { windowMs: number };

/** Counters by scope, then by value: no per-request key concatenation. */
class Cells<C> {
  readonly byScope = new Map<string, Map<string, C>>();
  size = 0;

  get(scope: string, value: string): C | undefined {
    return this.byScope.get(scope)?.get(value);
  }

  add(scope: string, value: string, cell: C): void {
    let inner = this.byScope.get(scope);
    if (!inner) this.byScope.set(scope, (inner = new Map()));
    inner.set(value, cell);
    this.size++;
  }

  /** Deletes the cells `dead` says hold nothing. */
  sweep(dead: (cell: C) => boolean): void {
    for (const [scope, inner] of this.byScope) {
      for (const [value, cell] of inner) {
        if (dead(cell)) {
          inner.delete(value);
          this.size--;
        }
      }
      if (inner.size === 0) this.byScope.delete(scope);
    }
  }

  clear(): void {
    this.byScope.clear();
    this.size = 0;
  }
}

export class MemoryBackend implements LimitBackend {
  readonly kind = 'memory';
  readonly #tat = new Cells<TatCell>();
  readonly #windows = new Cells<WindowCell>();
  #sweepAt = MIN_SWEEP_SIZE;

  hit(hits: readonly LimitHit[], now: number): HitOutcome[] {
    const out = new Array<HitOutcome>(hits.length);
    for (let i = 0; i < hits.length; i++) out[i] = this.hitOne(hits[i]!, now);
    if (this.size() > this.#sweepAt) this.sweep(now);
    return out;
  }

  /** One hit (the hot path the benchmark measures). */
  hitOne(h: LimitHit, now: number): HitOutcome {
    if (h.algorithm === 'gcra') {
      const cell = this.#tat.get(h.scope, h.value);
      const r = gcraHit(cell?.us, now, h.limit, h.windowMs, h.cost);
      if (r.tatUs !== undefined) {
        if (cell) cell.us = r.tatUs;
        else this.#tat.add(h.scope, h.value, { us: r.tatUs });
      }
      return r.outcome;
    }
    const cell = this.#windows.get(h.scope, h.value);
    const r = fixedWindowHit(cell, now, h.limit, h.windowMs, h.cost);
    if (cell) {
      cell.windowStart = r.state.windowStart;
      cell.count = r.state.count;
      cell.windowMs = h.windowMs;
    } else {
      this.#windows.add(h.scope, h.value, { windowStart: r.state.windowStart, count: r.state.count, windowMs: h.windowMs });
    }
    return r.outcome;
  }

  /**
   * Drops counters that no longer hold anything (a full bucket, an ended window): they answer the
   * same as absent ones. Amortised: runs when the counters have doubled since the last sweep.
   */
  sweep(now: number): void {
    const nowUs = now * 1000;
    this.#tat.sweep((c) => c.us <= nowUs);
    this.#windows.sweep((w) => w.windowStart + w.windowMs <= now);
    this.#sweepAt = Math.max(MIN_SWEEP_SIZE, 2 * this.size());
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
