/**
 * Worker-thread side of the SQLite writer (see sqlite-worker-store.ts): owns the write connection,
 * chains (SHA-256) and commits each batch, so hashing, page writes, WAL checkpoints and fsync run
 * on the second core instead of the event loop that answers ext_authz.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DEFAULT_WRITER_NICE, SqliteAuditStore, type SqliteStoreOptions } from './sqlite.ts';
import { decodeBatch, type EncodedBatch } from './batch-codec.ts';
import { completeRecords } from './input-bytes.ts';
import { MaskerCache } from './mask.ts';
import { lowerThreadPriority } from '../lib/thread-priority.ts';

/** `batch` is encodeBatch() of the records; its buffers are transferred. */
export type WorkerRequest = { type: 'append'; id: number; batch: EncodedBatch } | { type: 'resume' } | { type: 'close' };
export type WorkerResponse =
  | { type: 'ready'; tid?: number; nice?: number }
  | { type: 'appended'; id: number; firstSeq: number; lastSeq: number }
  | { type: 'failed'; id: number; message: string }
  | { type: 'closed' };

const options = workerData as SqliteStoreOptions;
// Writing is background work: let the event loop that answers ext_authz have the core first.
const priority = lowerThreadPriority(options.writerNice ?? DEFAULT_WRITER_NICE);
const port = parentPort!;
const store = new SqliteAuditStore(options);
const reply = (message: WorkerResponse) => port.postMessage(message);

/**
 * After a failed batch, batches already sent behind it are refused until the main thread says
 * `resume` (it does once it has seen the failure). So a retry always rewrites the failed batch
 * before anything queued after it, and the chain order stays the append order.
 */
let blocked = false;
const maskers = new MaskerCache();

async function handle(request: WorkerRequest): Promise<void> {
  if (request.type === 'close') {
    await store.close();
    reply({ type: 'closed' });
    port.close();
    return;
  }
  if (request.type === 'resume') {
    blocked = false;
    return;
  }
  if (blocked) {
    reply({ type: 'failed', id: request.id, message: 'an earlier batch failed; retrying it first' });
    return;
  }
  try {
    const records = decodeBatch(request.batch);
    if (request.batch.input) await completeRecords(records, request.batch.input, maskers);
    const { firstSeq, lastSeq } = await store.append(records);
    reply({ type: 'appended', id: request.id, firstSeq, lastSeq });
  } catch (err) {
    blocked = true;
    reply({ type: 'failed', id: request.id, message: (err as Error).message });
  }
}

// One message at a time, in order: completing a batch may await the decoder's first import.
let queue = Promise.resolve();
port.on('message', (request: WorkerRequest) => {
  queue = queue.then(() => handle(request));
});
reply({ type: 'ready', ...(priority ? { tid: priority.tid, nice: priority.nice } : {}) });
