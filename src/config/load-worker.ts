/**
 * The configuration load thread: reads, waits for the files to stand still, parses YAML, validates
 * and hashes, off the event loop. Answers plain data: documents in chunks (the next one only once
 * the main thread has taken the previous one, so receiving them never blocks it for long), then
 * the file bytes and version; or the issues that made the configuration invalid. Requests are
 * handled one at a time.
 */
import { parentPort } from 'node:worker_threads';
import { ConfigInvalidError } from './errors.ts';
import type { LoadReply, LoadRequest, ThreadMessage } from './load-thread.ts';
import { loadWhenStable, type StableLoad } from './stable-load.ts';

/** Documents per message: receiving one costs the main thread a few milliseconds. */
const CHUNK = 250;

const port = parentPort!;
const acks = new Map<number, () => void>();
const post = (reply: LoadReply) => port.postMessage(reply);

async function send(id: number, loaded: StableLoad): Promise<void> {
  for (let i = 0; i < loaded.documents.length; i += CHUNK) {
    const taken = new Promise<void>((resolve) => acks.set(id, resolve));
    post({ id, type: 'documents', documents: loaded.documents.slice(i, i + CHUNK) });
    await taken;
  }
  acks.delete(id);
  post({ id, type: 'done', root: loaded.root, version: loaded.version, files: [...loaded.files] });
}

async function serve(request: LoadRequest): Promise<void> {
  let loaded: StableLoad;
  try {
    loaded = await loadWhenStable(request);
  } catch (err) {
    if (err instanceof ConfigInvalidError) post({ id: request.id, type: 'invalid', issues: [...err.issues] });
    else post({ id: request.id, type: 'failed', failure: err instanceof Error ? err.stack ?? err.message : String(err) });
    return;
  }
  await send(request.id, loaded);
}

let chain = Promise.resolve();
port.on('message', (message: ThreadMessage) => {
  if (message.type === 'ack') acks.get(message.id)?.();
  else chain = chain.then(() => serve(message));
});
