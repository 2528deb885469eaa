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
import type { StableLoad, StableLoadOptions } from './stable-load.ts';

export interface LoadRequest extends StableLoadOptions {
  id: number;
}

export type LoadReply =
  | { id: number; ok: true; root: string; version: string; documents: ConfigDocument[]; files: [string, Uint8Array][] }
  | { id: number; ok: false; issues: ConfigIssue[] }
  | { id: number; ok: false; failure: string };

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
}

export class ConfigLoadThread {
  #worker?: Worker;
  #pending = new Map<number, Pending>();
  #nextId = 0;

  load(options: StableLoadOptions): Promise<StableLoad> {
    const worker = this.#ensureWorker();
    const id = ++this.#nextId;
    return new Promise<StableLoad>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ ...options, id } satisfies LoadRequest);
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
    this.#pending.delete(reply.id);
    if (this.#pending.size === 0) this.#worker?.unref();
    if (!pending) return;
    if (reply.ok) {
      // Buffers arrive as plain Uint8Arrays: view them as Buffers again, without copying.
      const files = new Map(reply.files.map(([name, bytes]) => [name, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)] as const));
      pending.resolve({ root: reply.root, version: reply.version, documents: reply.documents, files });
    } else if ('issues' in reply) {
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
