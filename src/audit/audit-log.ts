/**
 * The write side: a bounded in-memory queue in front of the store, flushed in batches off the
 * ext_authz hot path. `append` only enqueues, so it costs well under a microsecond; the records
 * appended during one event-loop turn are masked and serialized right after it (setImmediate),
 * so the queue holds compact prepared rows rather than whole input trees: objects that survive
 * a scavenge are what makes V8's young-generation collections slow, and the CPU profile of a
 * sustained write showed 12 % of the main thread and a third of a core of GC helper threads
 * spent on records waiting in the queue. Hashing happens in the store (the writer thread).
 *
 * No answered decision without a record: when the queue holds `maxQueue` records, what `append`
 * does is the `onOverload` setting (overload.md in docs/audit.md):
 *  - `backpressure` (default): it returns a promise that resolves once the record is queued (the
 *    caller answers only then), and `readable()` makes transports stop taking new requests until
 *    the queue is back under the low-water mark; throughput falls to what the store can write.
 *  - `fail`: it throws AuditOverloadedError (AUDIT_OVERLOADED → UNAVAILABLE): Envoy's failure mode decides.
 *  - `drop`: it returns false; the caller answers without a record, counted (`result="dropped"`) and logged.
 * The common path stays synchronous and allocation-free: `append` returns true.
 * A failing store keeps records queued and retries with backoff (so a long outage fills the
 * queue and the overload mode applies); it shows as `meshward_audit_store_up 0`,
 * `meshward_audit_write_failures_total` and error logs. `close` stops accepting and flushes
 * everything queued, including records still waiting for room.
 */
import type { Clock } from '../lib/clock.ts';
import { errorCodeOf } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { Counter, counter, gauge, histogram, type Registry } from '../lib/metrics.ts';
import { AuditOverloadedError } from './errors.ts';
import { MaskerCache } from './mask.ts';
import type { DecisionRecordV1, InputBytes } from './record.ts';
import { prepareRecord, type PreparedRecord } from './row.ts';
import { type AuditStore, openBatch, type PendingBatch } from './store.ts';

/** The live settings the log reads on every batch (config reloads apply without restart). */
export interface AuditLogSettings {
  maskPaths: readonly string[];
  recordAllows: boolean;
  /** What a full queue does to the check (default `backpressure`). */
  onOverload?: OverloadMode;
}

export type OverloadMode = 'backpressure' | 'fail' | 'drop';

/** A record waiting for queue room (backpressure); its check is answered once it is queued. */
interface Waiter {
  record: DecisionRecordV1;
  inputBytes: InputBytes | undefined;
  resolve(): void;
  reject(err: Error): void;
}

export interface AuditLogOptions {
  store: AuditStore;
  logger: Logger;
  registry: Registry;
  clock: Clock;
  settings: () => AuditLogSettings;
  /** Records held in memory before `append` refuses (default 100,000). */
  maxQueue?: number;
  /** Records per transaction (default 500: big enough to amortize a commit, small enough that masking one batch stalls the event loop < 5 ms). */
  batchSize?: number;
  /** Longest time a record waits before its batch is written (default 10 ms). */
  flushIntervalMs?: number;
}

export interface AuditLogStats {
  queued: number;
  /** Records durable in the store since this log opened. */
  written: number;
  rejected: number;
  /** Answered without a record (`onOverload: drop`). */
  dropped: number;
  /** Checks answered AUDIT_OVERLOADED instead of their decision (`onOverload: fail`). */
  refused: number;
  /** Records waiting for queue room (backpressure). */
  waiting: number;
  /** Transports are holding new requests (backpressure, until the low-water mark). */
  paused: boolean;
  writeFailures: number;
  /** seq of the newest durable record. */
  lastSeq: number;
}

const REJECT_LOG_INTERVAL_MS = 5000;
/** Reading resumes when queued + waiting records fall to this fraction of maxQueue (hysteresis: no flapping per batch). */
const LOW_WATER = 0.9;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5000;
const SHUTDOWN_RETRIES = 3;

/** A JWT in the request path is masked (mask.ts); such rare records take the whole-record route. */
function mayNeedMasking(path: string | undefined): boolean {
  return path?.includes('eyJ') === true;
}

/**
 * The record's JSON without `input`, as JSON.stringify({ ...record, input: undefined }) gives it,
 * without copying the record: `input` is left out for the call and put back (nothing else runs
 * meanwhile; the log owns the record).
 */
function jsonWithoutInput(record: DecisionRecordV1): string {
  const input = record.input;
  if (input === undefined) return JSON.stringify(record);
  record.input = undefined;
  try {
    return JSON.stringify(record);
  } finally {
    record.input = input;
  }
}

/** An allowed decision that a dry-run or AUDIT policy matched is kept even with `recordAllows: false`. */
function asksToBeNoticed(record: DecisionRecordV1): boolean {
  return record.matchedPolicies.some((m) => m.dryRun === true || m.effect === 'audit');
}

export class AuditLog {
  readonly #store: AuditStore;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #settings: () => AuditLogSettings;
  readonly #maxQueue: number;
  readonly #batchSize: number;
  readonly #intervalMs: number;
  /** Appended this turn, not yet prepared; `#rawInputs[i]` is `#raw[i]`'s input as bytes, if given. */
  #raw: DecisionRecordV1[] = [];
  #rawInputs: (InputBytes | undefined)[] = [];
  /** Full batches waiting, then the one filling. A queue of batches avoids O(n) shifts. */
  #batches: PendingBatch[] = [];
  #filling?: PendingBatch;
  #queued = 0;
  #accepted = 0;
  /** Accepted/skipped counts not yet added to the counter (a labelled inc per append costs more than the append). */
  #unreportedQueued = 0;
  #unreportedSkipped = 0;
  #written = 0;
  #rejected = 0;
  #rejectedSinceLog = 0;
  #lastRejectLog = Number.NEGATIVE_INFINITY;
  #dropped = 0;
  #refused = 0;
  #overloadedSinceLog = 0;
  #lastOverloadLog = Number.NEGATIVE_INFINITY;
  /** FIFO of records waiting for room; `#waiterHead` is the oldest (no O(n) shift per admission). */
  #waiters: Waiter[] = [];
  #waiterHead = 0;
  /** Transports parked by `readable()`, released in order as room appears. */
  #readers: (() => void)[] = [];
  #readerHead = 0;
  #paused = false;
  #releaseScheduled = false;
  readonly #lowWater: number;
  #writeFailures = 0;
  #lastSeq = 0;
  #closed = false;
  #cancelTimer?: () => void;
  #immediate?: NodeJS.Immediate;
  #draining?: Promise<void>;
  /** A part-filled batch is due (its flush interval elapsed, or flush() was called). */
  #partialDue = false;
  #retryMs = 0;
  readonly #maskers = new MaskerCache();
  readonly #metrics;

  constructor(options: AuditLogOptions) {
    this.#store = options.store;
    this.#logger = options.logger.child({ component: 'audit' });
    this.#clock = options.clock;
    this.#settings = options.settings;
    this.#maxQueue = options.maxQueue ?? 100_000;
    this.#batchSize = options.batchSize ?? 500;
    this.#intervalMs = options.flushIntervalMs ?? 10;
    this.#lowWater = Math.floor(this.#maxQueue * LOW_WATER);
    const r = options.registry;
    this.#metrics = {
      records: (r.getSingleMetric('meshward_audit_records_total') as Counter | undefined) ?? new Counter({
        name: 'meshward_audit_records_total', help: 'Decision records offered to the audit log, by result (queued, skipped, rejected, dropped, refused).', labelNames: ['result'], registers: [r],
        // Counts are batched off the hot path; a scrape brings them up to date.
        collect: () => this.#reportCounts(),
      }),
      written: counter(r, 'meshward_audit_records_written_total', 'Decision records durably written to the audit store.'),
      waits: counter(r, 'meshward_audit_backpressure_waits_total', 'Checks whose answer waited for audit queue room (onOverload: backpressure).'),
      waiting: gauge(r, 'meshward_audit_waiting', 'Decision records waiting for audit queue room; their checks are not answered yet.'),
      paused: gauge(r, 'meshward_audit_reading_paused', '1 while ext_authz holds new requests because the audit queue is full.'),
      failures: counter(r, 'meshward_audit_write_failures_total', 'Failed audit batch writes (records stay queued and are retried).', ['code']),
      queue: gauge(r, 'meshward_audit_queue_depth', 'Decision records waiting to be written.'),
      up: gauge(r, 'meshward_audit_store_up', '1 when the last audit write succeeded, 0 while writes fail.'),
      batch: histogram(r, 'meshward_audit_batch_seconds', 'Time to mask, chain and commit one audit batch.', [], [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]),
    };
    this.#metrics.up.set(1);
  }

  /**
   * Enqueues a decision: true when queued (or skipped by `recordAllows`). When the queue is full,
   * per `onOverload`: a promise resolving once the record is queued (answer only then; it rejects
   * with AuditOverloadedError if the log closes first), false (`drop`: counted, not recorded), or
   * a thrown AuditOverloadedError (`fail`, and after `close` unless `drop`). The log takes
   * ownership: do not mutate the record afterwards. With `inputBytes`, a store with a writer
   * thread rebuilds, masks and serializes the input there (record.ts InputBytes); other stores use
   * `record.input`. The bytes must not change afterwards.
   */
  append(record: DecisionRecordV1, inputBytes?: InputBytes): boolean | Promise<void> {
    if (this.#closed) return this.#refuseClosed();
    if (record.decision === 'allow' && !this.#settings().recordAllows && !asksToBeNoticed(record)) {
      this.#unreportedSkipped++;
      return true;
    }
    // Waiting records go first: a later one must not overtake them into the chain.
    if (this.#queued >= this.#maxQueue || this.#waiterHead < this.#waiters.length) return this.#overloaded(record, inputBytes);
    this.#enqueue(record, inputBytes);
    return true;
  }

  /**
   * While the queue is full (backpressure), a promise that resolves when the caller may take a
   * new request; undefined otherwise (the common case: no allocation). Callers parked here are
   * released in order, no more at a time than the queue has room for.
   */
  readable(): Promise<void> | undefined {
    if (!this.#paused && this.#readerHead === this.#readers.length) return undefined;
    return new Promise<void>((resolve) => this.#readers.push(resolve));
  }

  #enqueue(record: DecisionRecordV1, inputBytes: InputBytes | undefined): void {
    this.#raw.push(record);
    this.#rawInputs.push(inputBytes);
    this.#queued++;
    this.#accepted++;
    this.#unreportedQueued++;
    this.#immediate ??= setImmediate(this.#afterTurn);
    this.#cancelTimer ??= this.#clock.setTimer(this.#intervalMs, () => this.#kick(true));
  }

  #overloaded(record: DecisionRecordV1, inputBytes: InputBytes | undefined): boolean | Promise<void> {
    const mode = this.#settings().onOverload ?? 'backpressure';
    if (mode === 'drop') {
      this.#dropped++;
      this.#metrics.records.inc({ result: 'dropped' });
      this.#logOverload(mode, 'audit queue full: decisions answered WITHOUT a record (onOverload: drop)');
      return false;
    }
    if (mode === 'fail') {
      this.#refused++;
      this.#metrics.records.inc({ result: 'refused' });
      this.#logOverload(mode, 'audit queue full: checks answered UNAVAILABLE, Envoy\'s failure mode decides (onOverload: fail)');
      throw new AuditOverloadedError(`the audit queue is full (${this.#maxQueue} records): the decision cannot be recorded`);
    }
    this.#metrics.waits.inc();
    if (!this.#paused) this.#setPaused(true);
    this.#logOverload(mode, 'audit queue full: checks wait for their record to be queued and new requests are held (onOverload: backpressure)');
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ record, inputBytes, resolve, reject });
      this.#metrics.waiting.set(this.#waiting());
    });
  }

  /** After close: never a silent loss unless the operator chose `drop`. */
  #refuseClosed(): false {
    this.#reject('closed');
    if ((this.#settings().onOverload ?? 'backpressure') === 'drop') return false;
    throw new AuditOverloadedError('the audit log is stopping: the decision cannot be recorded');
  }

  #waiting(): number {
    return this.#waiters.length - this.#waiterHead;
  }

  #setPaused(paused: boolean): void {
    this.#paused = paused;
    this.#metrics.paused.set(paused ? 1 : 0);
    if (!paused) this.#logger.info({ queued: this.#queued }, 'audit queue below its low-water mark: reading new requests again');
  }

  #logOverload(mode: OverloadMode, message: string): void {
    this.#overloadedSinceLog++;
    const now = this.#clock.now();
    if (now - this.#lastOverloadLog < REJECT_LOG_INTERVAL_MS) return;
    const level = mode === 'backpressure' ? 'warn' : 'error';
    this.#logger[level]({ onOverload: mode, count: this.#overloadedSinceLog, queued: this.#queued, maxQueue: this.#maxQueue, storeUp: this.#retryMs === 0 }, message);
    this.#lastOverloadLog = now;
    this.#overloadedSinceLog = 0;
  }

  /** Moves waiting records into the freed room (in order), then lets parked readers go. */
  #admitWaiters(): void {
    while (this.#waiterHead < this.#waiters.length && this.#queued < this.#maxQueue) {
      const w = this.#waiters[this.#waiterHead]!;
      this.#waiters[this.#waiterHead++] = undefined as unknown as Waiter;
      this.#enqueue(w.record, w.inputBytes);
      w.resolve();
    }
    if (this.#waiterHead === this.#waiters.length) {
      this.#waiters = [];
      this.#waiterHead = 0;
    }
    this.#metrics.waiting.set(this.#waiting());
    if (this.#paused && this.#queued + this.#waiting() <= this.#lowWater) this.#setPaused(false);
    this.#releaseReaders();
  }

  /**
   * Releases parked readers, at most as many as the queue has room for (each check makes at most
   * one record). Those released may make no record (skipped allows), so the rest are looked at
   * again on the next turn as long as some were released; otherwise the next commit does it.
   */
  #releaseReaders(): void {
    if (this.#paused && !this.#closed) return;
    let room = this.#closed ? Number.POSITIVE_INFINITY : this.#maxQueue - this.#queued - this.#waiting();
    let released = 0;
    while (room > 0 && this.#readerHead < this.#readers.length) {
      const resume = this.#readers[this.#readerHead]!;
      this.#readers[this.#readerHead++] = undefined as unknown as () => void;
      resume();
      room--;
      released++;
    }
    if (this.#readerHead === this.#readers.length) {
      this.#readers = [];
      this.#readerHead = 0;
    } else if (released > 0 && !this.#releaseScheduled) {
      this.#releaseScheduled = true;
      setImmediate(() => {
        this.#releaseScheduled = false;
        this.#releaseReaders();
      });
    }
  }

  /** After the event-loop turn that appended: prepare what came in; send any batch that filled. */
  readonly #afterTurn = (): void => {
    this.#immediate = undefined;
    // Only a newly sealed batch starts a write: batches already queued are waiting on a drain or a retry.
    if (this.#prepareRaw()) this.#kick(false);
  };

  /** Resolves when every record appended before the call (waiting ones too) is durable; rejects if the store fails. */
  async flush(): Promise<void> {
    const target = this.#accepted + this.#waiting();
    while (this.#written < target && this.#queued > 0) {
      this.#partialDue = true;
      await this.#drain();
    }
  }

  /** Stops accepting, writes everything queued, closes the store. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    // A store hiccup at shutdown gets a few quick retries before queued records are given up (and logged).
    // Parked readers go now: their checks find the log closed and answer an error, not a decision.
    this.#releaseReaders();
    for (let attempt = 0; ; attempt++) {
      try {
        // Waiting records are admitted as batches commit; their checks were accepted before close.
        do await this.flush(); while (this.#waiting() > 0);
        break;
      } catch (err) {
        if (attempt >= SHUTDOWN_RETRIES) {
          this.#logger.error({ err, lost: this.#queued, waiting: this.#waiting() }, 'audit store failed during shutdown: queued decision records were not written');
          this.#rejectWaiters(err);
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, RETRY_MIN_MS * 2 ** attempt));
      }
    }
    if (this.#immediate) clearImmediate(this.#immediate);
    await this.#store.close();
  }

  stats(): AuditLogStats {
    return {
      queued: this.#queued, written: this.#written, rejected: this.#rejected, dropped: this.#dropped, refused: this.#refused,
      waiting: this.#waiting(), paused: this.#paused, writeFailures: this.#writeFailures, lastSeq: this.#lastSeq,
    };
  }

  /** The store gave up at shutdown: waiting checks are answered an error, not their decision. */
  #rejectWaiters(cause: unknown): void {
    const error = new AuditOverloadedError(`the audit store failed during shutdown: ${(cause as Error).message}`);
    for (let i = this.#waiterHead; i < this.#waiters.length; i++) this.#waiters[i]!.reject(error);
    this.#waiters = [];
    this.#waiterHead = 0;
  }

  #reject(reason: string): void {
    this.#rejected++;
    this.#rejectedSinceLog++;
    this.#metrics.records.inc({ result: 'rejected' });
    this.#reportCounts();
    const now = this.#clock.now();
    if (now - this.#lastRejectLog >= REJECT_LOG_INTERVAL_MS) {
      this.#logger.error({ reason, rejected: this.#rejectedSinceLog, queued: this.#queued, maxQueue: this.#maxQueue }, 'audit log refused decision records: they were not recorded');
      this.#lastRejectLog = now;
      this.#rejectedSinceLog = 0;
    }
  }

  #reportCounts(): void {
    if (this.#unreportedQueued > 0) this.#metrics.records.inc({ result: 'queued' }, this.#unreportedQueued);
    if (this.#unreportedSkipped > 0) this.#metrics.records.inc({ result: 'skipped' }, this.#unreportedSkipped);
    this.#unreportedQueued = 0;
    this.#unreportedSkipped = 0;
  }

  /** `partial`: the oldest record has waited the flush interval, so a part-filled batch goes too. */
  #kick(partial: boolean): void {
    if (partial) this.#partialDue = true;
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    // A failure is logged, counted and retried by #drain itself.
    this.#drain().catch(() => {});
  }

  #scheduleRetry(): void {
    if (this.#closed || this.#queued === 0 || this.#cancelTimer) return;
    this.#cancelTimer = this.#clock.setTimer(this.#retryMs, () => this.#kick(true));
  }

  /** Writes batches until the queue is empty; one drain at a time. Rejects on a failed write. */
  #drain(): Promise<void> {
    this.#draining ??= this.#drainLoop()
      .catch((err: unknown) => {
        this.#scheduleRetry();
        throw err;
      })
      .finally(() => { this.#draining = undefined; });
    return this.#draining;
  }

  /**
   * Pipelined: the next batch is masked and serialized while earlier ones are being committed (in
   * the writer thread or in PostgreSQL). At most `store.maxInFlight` batches are outstanding; they
   * commit in queue order, and after a failure every outstanding one is awaited before the drain
   * fails, so a retry starts again from the oldest unwritten batch and the chain order is the
   * queue order. Only full batches are taken while one is in flight; a part-filled batch goes when
   * its flush interval is due (or on flush) and nothing is in flight. Without that rule, records
   * arriving during each commit became tiny transactions, each rewriting whole pages.
   */
  async #drainLoop(): Promise<void> {
    const maxInFlight = Math.max(1, this.#store.maxInFlight ?? 1);
    const sent = new Set<PendingBatch>();
    const inflight: Promise<void>[] = [];
    let failure: unknown;
    const send = (batch: PendingBatch) => {
      sent.add(batch);
      const settled = this.#commit(batch)
        .catch((err: unknown) => { failure ??= err; })
        .finally(() => {
          sent.delete(batch);
          inflight.splice(inflight.indexOf(settled), 1);
        });
      inflight.push(settled);
    };
    for (;;) {
      if (failure !== undefined) break;
      this.#prepareRaw();
      let next = this.#batches.find((b) => !sent.has(b));
      if (!next && sent.size === 0 && this.#partialDue && this.#filling && this.#filling.size > 0) {
        this.#batches.push(this.#filling);
        this.#filling = undefined;
        this.#partialDue = false;
        next = this.#batches[0];
      }
      if (!next) {
        if (inflight.length === 0) break;
        await inflight[0];
        continue;
      }
      while (inflight.length >= maxInFlight) await inflight[0];
      if (failure !== undefined) break;
      send(next);
    }
    while (inflight.length > 0) await inflight[0];
    if (failure !== undefined) throw failure;
  }

  /**
   * Masks and serializes the records appended since the last call into the filling batch, sealing
   * it each time it reaches the batch size (returns whether it sealed one). A record that cannot
   * be serialized (a BigInt or a cycle a producer put in its input) is refused, counted and logged
   * here, instead of failing its whole batch on every retry.
   */
  #prepareRaw(): boolean {
    if (this.#raw.length === 0) return false;
    let sealed = false;
    const raw = this.#raw;
    const rawInputs = this.#rawInputs;
    this.#raw = [];
    this.#rawInputs = [];
    this.#reportCounts();
    const maskPaths = this.#settings().maskPaths;
    const masker = this.#maskers.get(maskPaths);
    for (let i = 0; i < raw.length; i++) {
      const record = raw[i]!;
      const inputBytes = rawInputs[i];
      let filling = (this.#filling ??= openBatch(this.#store));
      const deferred = inputBytes !== undefined && filling.addWithInputBytes !== undefined && !mayNeedMasking(record.path);
      let prepared: PreparedRecord;
      try {
        if (deferred) {
          // The writer thread adds the masked input (input-bytes.ts); only the small rest is serialized here.
          prepared = prepareRecord(record, [], jsonWithoutInput(record));
        } else {
          const { record: masked, masked: pointers, json } = masker.maskAndSerialize(record);
          prepared = prepareRecord(masked, pointers, json);
        }
      } catch (err) {
        this.#queued--;
        this.#refuseUnserializable(record, err);
        continue;
      }
      if (!deferred) {
        filling.add(prepared);
      } else if (!filling.addWithInputBytes!(prepared, inputBytes!, maskPaths)) {
        // Another decoder or mask list than the batch's: seal it and start one for this record.
        this.#batches.push(filling);
        sealed = true;
        filling = this.#filling = openBatch(this.#store);
        filling.addWithInputBytes!(prepared, inputBytes!, maskPaths);
      }
      if (filling.size >= this.#batchSize) {
        this.#batches.push(filling);
        this.#filling = undefined;
        sealed = true;
      }
    }
    return sealed;
  }

  #refuseUnserializable(record: DecisionRecordV1, err: unknown): void {
    this.#rejected++;
    this.#metrics.records.inc({ result: 'rejected' });
    this.#logger.error({ decisionId: record.decisionId, err: { message: (err as Error).message } }, 'audit log refused a decision record it cannot serialize: it was not recorded');
  }

  /** Writes the batch at the head of the queue; on success removes it from the queue. */
  async #commit(batch: PendingBatch): Promise<void> {
    const started = performance.now();
    try {
      const { lastSeq } = await batch.write();
      this.#lastSeq = lastSeq;
    } catch (err) {
      this.#writeFailures++;
      this.#retryMs = Math.min(RETRY_MAX_MS, Math.max(RETRY_MIN_MS, this.#retryMs * 2));
      this.#metrics.failures.inc({ code: errorCodeOf(err) });
      this.#metrics.up.set(0);
      this.#logger.error({ err, queued: this.#queued, retryInMs: this.#retryMs }, 'audit batch write failed; records stay queued');
      throw err;
    }
    if (this.#batches[0] !== batch) throw new Error('audit queue order violated');
    this.#batches.shift();
    if (this.#retryMs > 0) this.#logger.info({ queued: this.#queued }, 'audit store writes recovered');
    this.#retryMs = 0;
    this.#metrics.up.set(1);
    this.#queued -= batch.size;
    this.#written += batch.size;
    this.#metrics.written.inc(batch.size);
    this.#metrics.queue.set(this.#queued);
    this.#metrics.batch.observe((performance.now() - started) / 1000);
    if (this.#waiting() > 0 || this.#paused || this.#readerHead < this.#readers.length) this.#admitWaiters();
  }
}
