/**
 * SQLite audit store whose appends run in a worker thread (sqlite-worker.ts). Reads and retention
 * use a connection on the calling thread (WAL lets readers run beside the writer). This is what
 * `meshward serve` uses: on 2 cores it roughly doubles sustained throughput, and the event loop
 * never waits on SQLite page writes or fsync.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { BatchEncoder, type EncodedBatch, encodeBatch } from './batch-codec.ts';
import type { ChainAnchor } from './chain.ts';
import { AuditStoreUnavailableError } from './errors.ts';
import type { AuditFilter, AuditQuery } from './query.ts';
import type { AuditRow, PreparedRecord } from './row.ts';
import { SqliteAuditStore, type SqliteStoreOptions } from './sqlite.ts';
import type { WorkerRequest, WorkerResponse } from './sqlite-worker.ts';
import type { AuditStore, PendingBatch, RetentionResult, StatsBucket } from './store.ts';

/** Encoders kept for reuse: the batches in flight plus the one filling, with room to spare. */
const ENCODER_POOL = 4;

interface Pending {
  resolve(result: { firstSeq: number; lastSeq: number }): void;
  reject(err: Error): void;
}

/** URL of tsx's ESM loader API (its `import` export: the `require` one cannot register ESM hooks). */
function tsxEsmApi(): string {
  const require = createRequire(import.meta.url);
  const pkgFile = require.resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  return pathToFileURL(path.join(path.dirname(pkgFile), pkg.exports['./esm/api']!.import.default)).href;
}

/**
 * Starts the worker. From TypeScript sources (tsx, vitest) the worker registers tsx itself:
 * loaders of the parent thread do not reach workers.
 */
function spawnWorker(options: SqliteStoreOptions): Worker {
  const entry = new URL(import.meta.url.endsWith('.ts') ? './sqlite-worker.ts' : './sqlite-worker.js', import.meta.url);
  if (!import.meta.url.endsWith('.ts')) return new Worker(entry, { workerData: options });
  const tsx = tsxEsmApi();
  const boot = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(boot, { eval: true, workerData: options });
}

export class WorkerSqliteAuditStore implements AuditStore {
  readonly kind = 'sqlite' as const;
  /** Batches commit in the order sent (one writer, FIFO), so the log may keep two in flight. */
  readonly maxInFlight = 2;
  readonly #reader: SqliteAuditStore;
  readonly #options: SqliteStoreOptions;
  #worker?: Promise<Worker>;
  #pending = new Map<number, Pending>();
  #nextId = 0;
  #closed = false;
  #writerThread?: { tid: number; nice: number };
  #freeEncoders: BatchEncoder[] = [];

  private constructor(reader: SqliteAuditStore, options: SqliteStoreOptions) {
    this.#reader = reader;
    this.#options = options;
  }

  /**
   * Opens (creating the file and schema on this thread, so a bad path fails here) and starts the
   * writer thread without waiting for it: the first batch waits instead, and a thread that cannot
   * start fails that batch (the log retries and reports it).
   */
  static async open(options: SqliteStoreOptions): Promise<WorkerSqliteAuditStore> {
    const store = new WorkerSqliteAuditStore(new SqliteAuditStore(options), options);
    store.#ensureWorker().catch(() => {});
    return store;
  }

  /** Resolves once the writer thread runs (benchmarks; appends wait for it on their own). */
  async whenReady(): Promise<void> {
    await this.#ensureWorker();
  }

  /** The writer thread's kernel id and nice value once it runs (Linux), for diagnostics and tests. */
  writerThread(): { tid: number; nice: number } | undefined {
    return this.#writerThread;
  }

  #ensureWorker(): Promise<Worker> {
    this.#worker ??= new Promise<Worker>((resolve, reject) => {
      const worker = spawnWorker(this.#options);
      worker.unref();
      worker.on('message', (m: WorkerResponse) => {
        if (m.type === 'ready') {
          this.#writerThread = m.tid === undefined || m.nice === undefined ? undefined : { tid: m.tid, nice: m.nice };
          resolve(worker);
        }
        else if (m.type === 'appended') this.#settle(m.id, (p) => p.resolve({ firstSeq: m.firstSeq, lastSeq: m.lastSeq }));
        else if (m.type === 'failed') {
          // Everything sent before this point is refused by the writer; later batches are accepted again.
          worker.postMessage({ type: 'resume' } satisfies WorkerRequest);
          this.#settle(m.id, (p) => p.reject(new AuditStoreUnavailableError(`audit write failed: ${m.message}`)));
        }
      });
      const die = (err: Error) => {
        // A dead writer fails what it held; the next append starts a new one (the log retries).
        this.#worker = undefined;
        const failure = new AuditStoreUnavailableError(`audit writer thread stopped: ${err.message}`, err);
        reject(failure);
        for (const p of this.#pending.values()) p.reject(failure);
        this.#pending.clear();
      };
      worker.on('error', die);
      worker.on('exit', (code) => { if (!this.#closed) die(new Error(`exited with code ${code}`)); });
    });
    return this.#worker;
  }

  #settle(id: number, fn: (p: Pending) => void): void {
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    fn(p);
    if (this.#pending.size === 0) void this.#worker?.then((w) => w.unref());
  }

  async append(records: readonly PreparedRecord[]): Promise<{ firstSeq: number; lastSeq: number }> {
    if (records.length === 0) return { firstSeq: 0, lastSeq: 0 };
    return this.#send(encodeBatch(records));
  }

  /**
   * Records are encoded as they are added, off the V8 heap (see batch-codec.ts). The encoder goes
   * back to a small pool once its batch is durable; until then a failed write can be re-sent.
   */
  openBatch(): PendingBatch {
    const encoder = this.#freeEncoders.pop() ?? new BatchEncoder();
    let size = 0;
    let done = false;
    return {
      get size() { return done ? size : encoder.size; },
      add: (record) => encoder.add(record),
      addWithInputBytes: (record, input, maskPaths) => encoder.addWithInputBytes(record, input.bytes, { decoder: input.decoder, maskPaths }),
      write: async () => {
        if (done) throw new Error('audit batch already written');
        const result = encoder.size === 0 ? { firstSeq: 0, lastSeq: 0 } : await this.#send(encoder.finish());
        size = encoder.size;
        done = true;
        encoder.reset();
        if (this.#freeEncoders.length < ENCODER_POOL) this.#freeEncoders.push(encoder);
        return result;
      },
    };
  }

  async #send(batch: EncodedBatch): Promise<{ firstSeq: number; lastSeq: number }> {
    const worker = await this.#ensureWorker();
    const id = this.#nextId++;
    // Keep the process alive while a batch is in flight; idle, the writer never holds it open.
    if (this.#pending.size === 0) worker.ref();
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({ type: 'append', id, batch } satisfies WorkerRequest, [batch.data, batch.index.buffer as ArrayBuffer]);
    });
  }

  query(q: AuditQuery & { limit: number }): Promise<AuditRow[]> { return this.#reader.query(q); }
  get(decisionId: string): Promise<AuditRow | undefined> { return this.#reader.get(decisionId); }
  stats(filter: AuditFilter, intervalMs: number): Promise<StatsBucket[]> { return this.#reader.stats(filter, intervalMs); }
  scan(afterSeq: number, limit: number): Promise<AuditRow[]> { return this.#reader.scan(afterSeq, limit); }
  anchor(): Promise<ChainAnchor> { return this.#reader.anchor(); }
  head(): Promise<ChainAnchor> { return this.#reader.head(); }
  deleteBefore(cutoff: number, now: number): Promise<RetentionResult> { return this.#reader.deleteBefore(cutoff, now); }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const worker = await this.#worker?.catch(() => undefined);
    if (worker) {
      worker.ref();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => void worker.terminate().then(() => resolve()), 5000);
        worker.once('exit', () => { clearTimeout(force); resolve(); });
        worker.postMessage({ type: 'close' } satisfies WorkerRequest);
      });
    }
    await this.#reader.close();
  }
}
