/**
 * The configuration load thread: reads, waits for the files to stand still, parses YAML, validates
 * and hashes, off the event loop. Answers plain data (documents, file bytes, version) or the
 * issues that made the configuration invalid. Requests are handled one at a time.
 */
import { parentPort } from 'node:worker_threads';
import { ConfigInvalidError } from './errors.ts';
import type { LoadReply, LoadRequest } from './load-thread.ts';
import { loadWhenStable } from './stable-load.ts';

async function answer(request: LoadRequest): Promise<LoadReply> {
  try {
    const loaded = await loadWhenStable(request);
    return { id: request.id, ok: true, root: loaded.root, version: loaded.version, documents: loaded.documents, files: [...loaded.files] };
  } catch (err) {
    if (err instanceof ConfigInvalidError) return { id: request.id, ok: false, issues: [...err.issues] };
    return { id: request.id, ok: false, failure: err instanceof Error ? err.stack ?? err.message : String(err) };
  }
}

let chain = Promise.resolve();
parentPort!.on('message', (request: LoadRequest) => {
  chain = chain.then(async () => parentPort!.postMessage(await answer(request)));
});
