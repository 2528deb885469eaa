/**
 * Runs configuration loads in a worker thread (load-worker.ts), so a reload of thousands of
 * documents does not stall the event loop that answers checks. The thread starts on first use,
 * is unreferenced while idle, and is restarted after a crash.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ConfigDocument } from './document.ts';
import { ConfigInvalidError, type ConfigIssue } from './errors.ts';
import { deepFreeze } from './snapshot.ts';
import type { StableLoad, StableLoadOptions } from './stable-load.ts';

export interface LoadRequest extends StableLoadOptions {
  type: 'load';
  id: number;
}

/** Main thread → load thread. */
export type ThreadMessage = LoadRequest | { type: 'ack'; id: number };

/** Load thread → main thread. */
export type LoadReply =
  | { id: number; type: 'documents'; documents: ConfigDocument[] }
  | { id: number; type: 'done'; root: string; version: string; files: [string, Uint8Array][] }
  | { id: number; type: 'invalid'; issues: ConfigIssue[] }
  | { id: number; type: 'failed'; failure: string };

/** URL of tsx's ESM loader API: loaders of the parent thread do not reach workers. */
function tsxEsmApi(): string {
  const require = createRequire(import.meta.url);
  const pkgFile = require.resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  return pathToFileURL(path.join(path.dirname(pkgFile), pkg.exports['./esm/api']!.import.default)).href;
}

function spawnWorker(): Worker {
  const fromSources = import.meta.url.endsWith('.ts');
  const entry = new URL(fromSources ? './load-worker.ts' : './load-worker.js', import.meta.url);
  if (!fromSources) return new Worker(entry);
  const boot = `import(${JSON.stringify(tsxEsmApi())}).then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(boot, { eval: true });
}

interface Pending {
  resolve(load: StableLoad): void;
  reject(err: Error): void;
  documents: ConfigDocument[];
}

export class ConfigLoadThread {
  #worker?: Worker;
  #pending = new Map<number, Pending>();
  #nextId = 0;

  load(options: StableLoadOptions): Promise<StableLoad> {
    const worker = this.#ensureWorker();
    const id = ++this.#nextId;
    return new Promise<StableLoad>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, documents: [] });
      worker.ref();
      worker.postMessage({ ...options, type: 'load', id } satisfies ThreadMessage);
    });
  }

  close(): void {
    const worker = this.#worker;
    this.#worker = undefined;
    this.#failAll(new Error('configuration load thread closed'));
    void worker?.terminate();
  }

  #ensureWorker(): Worker {
    if (this.#worker) return this.#worker;
    const worker = spawnWorker();
    worker.unref();
    worker.on('message', (reply: LoadReply) => this.#settle(reply));
    worker.on('error', (err) => this.#crashed(worker, err));
    worker.on('exit', (code) => this.#crashed(worker, new Error(`configuration load thread exited (code ${code})`)));
    this.#worker = worker;
    return worker;
  }

  #settle(reply: LoadReply): void {
    const pending = this.#pending.get(reply.id);
    if (!pending) return;
    if (reply.type === 'documents') {
      // Frozen as they arrive, so the snapshot has little left to do in one go.
      for (const d of reply.documents) pending.documents.push(deepFreeze(d));
      // The next chunk once timers and I/O have had their turn.
      setImmediate(() => this.#worker?.postMessage({ type: 'ack', id: reply.id } satisfies ThreadMessage));
      return;
    }
    this.#pending.delete(reply.id);
    if (this.#pending.size === 0) this.#worker?.unref();
    if (reply.type === 'done') {
      // Buffers arrive as plain Uint8Arrays: view them as Buffers again, without copying.
      const files = new Map(reply.files.map(([name, bytes]) => [name, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)] as const));
      pending.resolve({ root: reply.root, version: reply.version, documents: pending.documents, files });
    } else if (reply.type === 'invalid') {
      pending.reject(new ConfigInvalidError(reply.issues));
    } else {
      pending.reject(new Error(`configuration load thread failed: ${reply.failure}`));
    }
  }

  #crashed(worker: Worker, err: Error): void {
    if (this.#worker !== worker) return;
    this.#worker = undefined;
    this.#failAll(err);
  }

  #failAll(err: Error): void {
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }
}
