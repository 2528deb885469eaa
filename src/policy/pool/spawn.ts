/**
 * Starts an evaluation worker thread. From TypeScript sources (tsx, vitest) the worker registers
 * tsx itself: loaders of the parent thread do not reach workers.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type ResourceLimits, Worker } from 'node:worker_threads';

/** URL of tsx's ESM loader API (its `import` export: the `require` one cannot register ESM hooks). */
function tsxEsmApi(): string {
  const require = createRequire(import.meta.url);
  const pkgFile = require.resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  return pathToFileURL(path.join(path.dirname(pkgFile), pkg.exports['./esm/api']!.import.default)).href;
}

/**
 * Slow evaluations are background work next to the event loop answering every other check: on a
 * box with few cores the scheduler runs the loop first. Set before the worker loads anything, so
 * its start (compiling the engine's modules) is background work too.
 */
export const EVALUATION_WORKER_NICE = 10;

/** Lowers the calling thread's priority (Linux; a no-op elsewhere or when not permitted). Runs inside the worker. */
const LOWER_PRIORITY = `try { const os = require('node:os'); const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop()); if (os.getPriority(tid) < ${EVALUATION_WORKER_NICE}) os.setPriority(tid, ${EVALUATION_WORKER_NICE}); } catch {}`;

export function spawnEvaluationWorker(resourceLimits: ResourceLimits): Worker {
  const fromSources = import.meta.url.endsWith('.ts');
  const entry = new URL(fromSources ? './worker.ts' : './worker.js', import.meta.url);
  const load = fromSources
    ? `import(${JSON.stringify(tsxEsmApi())}).then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); })`
    : `import(${JSON.stringify(entry.href)})`;
  return new Worker(`${LOWER_PRIORITY}\n${load}`, { eval: true, resourceLimits });
}
