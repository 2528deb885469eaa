/**
 * A Rego policy evaluated inline within a small slice, and in a worker with its full budget when
 * the slice runs out (see engines.ts). A policy whose evaluations keep running out of the slice
 * goes straight to the worker for a while: a slow policy hit at a high rate then costs the event
 * loop about one slice per `offloadMs`, not one per evaluation.
 */
import { performance } from 'node:perf_hooks';
import { type CompiledPolicy, type PolicyCallContext, PolicyBudgetExceededError } from './index.ts';
import type { EvaluationPool, PooledPolicy } from './pool/index.ts';
import { type BudgetOptions, enterBudget, exitBudget, isSliceExhausted, RegoBudgetExceededError, withBudget } from './rego/index.ts';

export interface SliceOptions {
  /** Inline slice (ms). */
  sliceMs: number;
  /** Consecutive slice exhaustions after which evaluations go straight to a worker (default 3). */
  strikes?: number;
  /** How long they do before one is tried inline again (default 1 s). */
  offloadMs?: number;
}

export class SlicedPolicy implements CompiledPolicy {
  readonly #inline: CompiledPolicy;
  readonly #pool: EvaluationPool;
  readonly #policy: PooledPolicy;
  readonly #budgetMs: number;
  readonly #sliceMs: number;
  readonly #slice: BudgetOptions;
  readonly #maxStrikes: number;
  readonly #offloadMs: number;
  #strikes = 0;
  #offloadUntil = 0;

  constructor(inline: CompiledPolicy, pool: EvaluationPool, policy: PooledPolicy, budgetMs: number, options: SliceOptions) {
    this.#inline = inline;
    this.#pool = pool;
    this.#policy = policy;
    this.#budgetMs = budgetMs;
    this.#sliceMs = options.sliceMs;
    this.#slice = { ms: options.sliceMs, slice: true };
    this.#maxStrikes = options.strikes ?? 3;
    this.#offloadMs = options.offloadMs ?? 1000;
  }

  /** Whether the next evaluation starts inline (false while the policy is known to be slow). */
  get inlineFirst(): boolean {
    return this.#strikes < this.#maxStrikes || performance.now() >= this.#offloadUntil;
  }

  evaluate(input: unknown, context?: PolicyCallContext): unknown {
    if (this.#budgetMs <= this.#sliceMs) return this.#inlineOnly(input, context);
    if (this.#strikes >= this.#maxStrikes && performance.now() < this.#offloadUntil) return this.#inWorker(input, context);
    // enterBudget/exitBudget rather than withBudget: no closure on the hot path of every decision.
    const prev = enterBudget(this.#slice);
    try {
      const value = this.#inline.evaluate(input, context);
      this.#strikes = 0;
      return value;
    } catch (err) {
      if (!isSliceExhausted(err)) throw err;
    } finally {
      exitBudget(prev);
    }
    if (++this.#strikes >= this.#maxStrikes) this.#offloadUntil = performance.now() + this.#offloadMs;
    return this.#inWorker(input, context);
  }

  #inWorker(input: unknown, context?: PolicyCallContext): Promise<unknown> {
    return this.#pool.evaluate(this.#policy, input, context?.now, this.#budgetMs);
  }

  /** A budget no larger than a slice is spent inline. */
  #inlineOnly(input: unknown, context?: PolicyCallContext): unknown {
    try {
      return withBudget({ ms: this.#budgetMs }, () => this.#inline.evaluate(input, context));
    } catch (err) {
      throw err instanceof RegoBudgetExceededError ? new PolicyBudgetExceededError(this.#policy.id, this.#budgetMs, 'stopped inline') : err;
    }
  }
}
