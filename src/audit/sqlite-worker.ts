/**
 * Worker-thread side of the SQLite writer (see sqlite-worker-store.ts): owns the write connection,
 * chains (SHA-256) and commits each batch, so hashing, page writes, WAL checkpoints and fsync run
 * on the second core instead of the event loop that answers ext_authz.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteAuditStore, type SqliteStoreOptions } from './sqlite.ts';
import { decodeBatch, type EncodedBatch } from './batch-codec.ts';

/** `batch` is encodeBatch() of the records; its buffers are transferred. */
export type WorkerRequest = { type: 'append'; id: number; batch: EncodedBatch } | { type: 'close' };
export type WorkerResponse =
  | { type: 'ready' }
  | { type: 'appended'; id: number; firstSeq: number; lastSeq: number }
  | { type: 'failed'; id: number; message: string }
  | { type: 'closed' };

const port = parentPort!;
const store = new SqliteAuditStore(workerData as SqliteStoreOptions);
const reply = (message: WorkerResponse) => port.postMessage(message);

port.on('message', (request: WorkerRequest) => {
  if (request.type === 'close') {
    void store.close().then(() => {
      reply({ type: 'closed' });
      port.close();
    });
    return;
  }
  Promise.resolve().then(() => store.append(decodeBatch(request.batch))).then(
    ({ firstSeq, lastSeq }) => reply({ type: 'appended', id: request.id, firstSeq, lastSeq }),
    (err: unknown) => reply({ type: 'failed', id: request.id, message: (err as Error).message }),
  );
});
reply({ type: 'ready' });
