/**
 * A pool of worker threads that evaluate policies off the event loop: Rego evaluations that ran
 * out of their inline slice, and every OPA wasm evaluation (a wasm loop cannot be interrupted
 * in-thread). Workers compile a policy from the same sources the main thread compiled, on first
 * use (by content key, so a snapshot change that keeps a policy's sources reuses it); each keeps at
 * most `maxLoaded` policies. An evaluation not answered `budget + grace` after it started fails
 * with PolicyBudgetExceededError at once. Its worker is terminated and replaced right away for
 * wasm (which never stops by itself); a Rego worker, which stops itself at its budget, is given
 * `killAfterMs` more to come back (it was starved of CPU, or in one long built-in call) before it
 * is terminated: a restart costs far more CPU than waiting.
 *
 * Thread-safety: used from the main thread only. Workers are unref'd: an idle pool never keeps the
 * process alive.
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Worker } from 'node:worker_threads';
import { PolicyBudgetExceededError, PolicyEvaluationError } from '../errors.ts';
import type { FromWorker, PolicySource, ToWorker } from './protocol.ts';
import { spawnEvaluationWorker } from './spawn.ts';

export type { PolicySource } from './protocol.ts';

/** One policy as the pool knows it: its sources and their content key. */
export interface PooledPolicy {
  /** `namespace/name`, for error messages. */
  readonly id: string;
  readonly key: string;
  readonly source: PolicySource;
}

export function pooledPolicy(id: string, source: PolicySource): PooledPolicy {
  const h = createHash('sha256').update(source.kind).update('\0').update(source.entrypoint).update('\0');
  if (source.kind === 'wasm') h.update(source.bundle);
  else {
    for (const [file, text] of Object.entries(source.modules).sort(([a], [b]) => (a < b ? -1 : 1))) h.update(file).update('\0').update(text).update('\0');
    // Same modules with other data are another policy.
    if (source.data !== undefined) h.update(JSON.stringify(source.data, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)));
  }
  return { id, key: h.digest('hex'), source };
}

export interface EvaluationPoolOptions {
  /** Worker threads (default: cores - 1, at least 2, at most 4). */
  size?: number;
  /** Time past the budget before a worker evaluating a wasm bundle is terminated (default 20 ms). */
  graceMs?: number;
  /**
   * The same for Rego (default 100 ms): Rego stops itself at its budget, so its worker is only
   * terminated when something cannot be interrupted (one long built-in call) or the thread got no
   * CPU; terminating costs a restart, which a loaded box pays in event-loop time too.
   */
  regoGraceMs?: number;
  /** How long a Rego worker past its grace may take to come back before it is terminated (default 1 s). */
  killAfterMs?: number;
  /** An evaluation waiting longer than this for a free worker fails with the budget error (default 1 s; time spent waiting for workers to start does not count). */
  queueTimeoutMs?: number;
  /** Evaluations waiting for a worker beyond which new ones fail at once (default 1,000). */
  maxQueue?: number;
  /** Compiled policies kept per worker (default 32). */
  maxLoaded?: number;
  /** Heap limit of each worker in MiB (default 256): a policy exhausting it ends its worker, not the process. */
  heapMb?: number;
}

interface Job {
  policy: PooledPolicy;
  input: unknown;
  nowMs: number | undefined;
  budgetMs: number;
  enqueuedAt: number;
  resolve(value: unknown): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  /** Keys loaded in the worker, least recently used first (mirrors the worker's map). */
  loaded: Map<string, true>;
  job?: Job;
  jobId: number;
  /** Its job was answered (overrun), the worker has not come back yet: not available. */
  stalled?: boolean;
  /** Key whose load must be acknowledged before the job's timer starts. */
  awaitingLoad?: string;
  timer?: NodeJS.Timeout;
}

/** Delay before replacing a worker that died while starting. */
const RESTART_DELAY_MS = 1000;

export class EvaluationPool {
  readonly #size: number;
  readonly #graceMs: number;
  readonly #regoGraceMs: number;
  readonly #killAfterMs: number;
  readonly #queueTimeoutMs: number;
  readonly #maxQueue: number;
  readonly #maxLoaded: number;
  readonly #heapMb: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Job[] = [];
  #nextId = 0;
  #closed = false;
  #readyWaiters: (() => void)[] = [];
  /** When a worker last became ready while none was: waiting for workers to start is not saturation. */
  #availableSince = 0;
  /** Workers terminated for overrunning their budget (tests and metrics). */
  terminated = 0;

  constructor(options: EvaluationPoolOptions = {}) {
    this.#size = options.size ?? Math.max(2, Math.min(4, availableParallelism() - 1));
    this.#graceMs = options.graceMs ?? 20;
    this.#regoGraceMs = options.regoGraceMs ?? 100;
    this.#killAfterMs = options.killAfterMs ?? 1000;
    this.#queueTimeoutMs = options.queueTimeoutMs ?? 1000;
    this.#maxQueue = options.maxQueue ?? 1000;
    this.#maxLoaded = options.maxLoaded ?? 32;
    this.#heapMb = options.heapMb ?? 256;
  }

  /** Starts the workers (idempotent): called when policies are compiled, so the first slow evaluation finds them ready. */
  warm(): void {
    while (!this.#closed && this.#slots.length < this.#size) this.#slots.push(this.#spawn());
  }

  /** Resolves once every worker has started. */
  ready(): Promise<void> {
    this.warm();
    if (this.#slots.every((s) => s.ready)) return Promise.resolve();
    return new Promise((resolve) => this.#readyWaiters.push(resolve));
  }

  /**
   * Evaluates `policy` on `input` in a worker with `budgetMs`: the JSON value (undefined when the
   * decision is undefined). Rejects with PolicyBudgetExceededError when the budget runs out.
   */
  evaluate(policy: PooledPolicy, input: unknown, nowMs: number | undefined, budgetMs: number): Promise<unknown> {
    if (this.#closed) return Promise.reject(new PolicyEvaluationError(policy.id, 'the evaluation pool is closed'));
    if (this.#queue.length >= this.#maxQueue) {
      return Promise.reject(new PolicyBudgetExceededError(policy.id, budgetMs, `${this.#queue.length} evaluations already wait for a worker`));
    }
    this.warm();
    return new Promise((resolve, reject) => {
      this.#queue.push({ policy, input, nowMs, budgetMs, enqueuedAt: performance.now(), resolve, reject });
      this.#pump();
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) job.reject(new PolicyEvaluationError(job.policy.id, 'the evaluation pool is closed'));
    await Promise.all(this.#slots.splice(0).map((s) => {
      clearTimeout(s.timer);
      s.job?.reject(new PolicyEvaluationError(s.job.policy.id, 'the evaluation pool is closed'));
      return s.worker.terminate();
    }));
  }

  #spawn(): Slot {
    const worker = spawnEvaluationWorker({ maxOldGenerationSizeMb: this.#heapMb });
    const slot: Slot = { worker, ready: false, loaded: new Map(), jobId: -1 };
    worker.on('message', (m: FromWorker) => this.#onMessage(slot, m));
    worker.on('error', (err) => this.#onExit(slot, err));
    worker.on('exit', (code) => this.#onExit(slot, new Error(`evaluation worker exited with code ${code}`)));
    // unref after the listeners: adding a message listener refs the port again (Node 20)
    // idle pool would keep a stopped meshward's process alive.
    worker.unref();
    return slot;
  }

  #onMessage(slot: Slot, m: FromWorker): void {
    if (m.t === 'ready') {
      if (!this.#slots.some((s) => s.ready)) this.#availableSince = performance.now();
      slot.ready = true;
      if (this.#slots.every((s) => s.ready)) for (const w of this.#readyWaiters.splice(0)) w();
    } else if (m.t === 'loaded') {
      if (slot.awaitingLoad === m.key && slot.job) this.#startTimer(slot, slot.job);
    } else if (m.id === slot.jobId && slot.stalled) {
      // Back after its job was answered: the late answer is dropped, the worker is free again.
      clearTimeout(slot.timer);
      slot.timer = undefined;
      slot.stalled = false;
    } else if (m.id === slot.jobId && slot.job) {
      const job = this.#finish(slot);
      if (m.t === 'result') job.resolve(m.value);
      else if (m.budget) job.reject(new PolicyBudgetExceededError(job.policy.id, job.budgetMs, 'stopped in its worker'));
      else job.reject(new PolicyEvaluationError(job.policy.id, `${m.code}: ${m.message}`));
    }
    this.#pump();
  }

  /** A worker died (terminated, out of memory, crashed): fail its job and replace it. */
  #onExit(slot: Slot, err: Error): void {
    const i = this.#slots.indexOf(slot);
    if (i < 0) return;
    clearTimeout(slot.timer);
    const job = slot.job;
    slot.job = undefined;
    job?.reject(new PolicyEvaluationError(job.policy.id, `its evaluation worker stopped: ${err.message}`));
    if (this.#closed) {
      this.#slots.splice(i, 1);
      return;
    }
    if (slot.ready) {
      this.#slots[i] = this.#spawn();
      return;
    }
    // It died starting (a missing or broken worker file): no tight restart loop, and nothing waits forever.
    for (const queued of this.#queue.splice(0)) queued.reject(new PolicyEvaluationError(queued.policy.id, `the evaluation worker failed to start: ${err.message}`));
    this.#slots.splice(i, 1);
    setTimeout(() => {
      if (!this.#closed && this.#slots.length < this.#size) this.#slots.push(this.#spawn());
    }, RESTART_DELAY_MS).unref();
  }

  #finish(slot: Slot): Job {
    clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.awaitingLoad = undefined;
    const job = slot.job!;
    slot.job = undefined;
    return job;
  }

  #startTimer(slot: Slot, job: Job): void {
    slot.awaitingLoad = undefined;
    const grace = job.policy.source.kind === 'wasm' ? this.#graceMs : this.#regoGraceMs;
    slot.timer = setTimeout(() => this.#overrun(slot), job.budgetMs + grace);
  }

  /** The evaluation overran: answer it now; wasm workers are replaced, Rego ones get killAfterMs to come back. */
  #overrun(slot: Slot): void {
    if (this.#slots.indexOf(slot) < 0 || !slot.job) return;
    const job = this.#finish(slot);
    const wasm = job.policy.source.kind === 'wasm';
    job.reject(new PolicyBudgetExceededError(job.policy.id, job.budgetMs, wasm ? 'its worker was terminated' : 'its worker did not answer in time'));
    if (wasm) this.#kill(slot);
    else {
      slot.stalled = true;
      slot.timer = setTimeout(() => this.#kill(slot), this.#killAfterMs);
    }
    this.#pump();
  }

  /** Terminates a worker that cannot finish and puts a fresh one in its place. */
  #kill(slot: Slot): void {
    const i = this.#slots.indexOf(slot);
    if (i < 0) return;
    clearTimeout(slot.timer);
    this.terminated++;
    this.#slots[i] = this.#spawn();
    slot.worker.removeAllListeners('exit');
    slot.worker.removeAllListeners('error');
    slot.worker.on('error', () => {});
    void slot.worker.terminate();
    this.#pump();
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      const slot = this.#slots.find((s) => s.ready && !s.job && !s.stalled);
      if (!slot) return;
      const job = this.#queue.shift()!;
      const waited = performance.now() - Math.max(job.enqueuedAt, this.#availableSince);
      if (waited > this.#queueTimeoutMs) {
        job.reject(new PolicyBudgetExceededError(job.policy.id, job.budgetMs, `waited ${Math.round(waited)} ms for an evaluation worker`));
        continue;
      }
      this.#assign(slot, job);
    }
  }

  #assign(slot: Slot, job: Job): void {
    const { key } = job.policy;
    slot.job = job;
    slot.jobId = this.#nextId++;
    const post = (m: ToWorker) => slot.worker.postMessage(m);
    if (slot.loaded.has(key)) {
      slot.loaded.delete(key);
      slot.loaded.set(key, true);
    } else {
      if (slot.loaded.size >= this.#maxLoaded) {
        const oldest = slot.loaded.keys().next().value!;
        slot.loaded.delete(oldest);
        post({ t: 'drop', key: oldest });
      }
      slot.loaded.set(key, true);
      slot.awaitingLoad = key;
      // Compiling is not the evaluation: the budget's timer starts when the worker reports it loaded.
      post({ t: 'load', key, source: job.policy.source });
    }
    post({ t: 'eval', id: slot.jobId, key, input: job.input, nowMs: job.nowMs, budgetMs: job.budgetMs });
    if (slot.awaitingLoad === undefined) this.#startTimer(slot, job);
  }
}

let shared: EvaluationPool | undefined;

/** The process-wide pool `meshward serve` uses (workers start when a RegoPolicy is first compiled). */
export function sharedEvaluationPool(): EvaluationPool {
  shared ??= new EvaluationPool();
  return shared;
}
