/**
 * Evaluation worker: compiles the policies the pool sends (by content key) and evaluates them with
 * the full budget. Rego evaluations stop themselves when the budget runs out (budget.ts); a wasm
 * evaluation cannot be interrupted in-thread, so the pool terminates this thread when it overruns.
 */
import { parentPort } from 'node:worker_threads';
import { withBudget, RegoBudgetExceededError } from '../rego/budget.ts';
import { compileRego, fromJSON, toJSON } from '../rego/index.ts';
import { loadWasmBundle } from '../wasm/index.ts';
import type { FromWorker, PolicySource, ToWorker } from './protocol.ts';

type Run = (input: unknown, nowMs: number | undefined) => unknown;

const port = parentPort!;
const loaded = new Map<string, Run>();
const failed = new Map<string, string>();

async function compile(source: PolicySource): Promise<Run> {
  if (source.kind === 'rego') {
    const run = compileRego(source.modules, { data: source.data }).entrypoint(source.entrypoint);
    return (input, nowMs) => {
      const v = run(fromJSON(input), undefined, nowMs === undefined ? undefined : { nowMs });
      return v === undefined ? undefined : toJSON(v);
    };
  }
  const run = (await loadWasmBundle(source.bundle)).entrypoint(source.entrypoint);
  return (input, nowMs) => {
    const v = run(fromJSON(input), undefined, nowMs);
    return v === undefined ? undefined : toJSON(v);
  };
}

const post = (m: FromWorker) => port.postMessage(m);
const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

async function handle(m: ToWorker): Promise<void> {
  if (m.t === 'drop') {
    loaded.delete(m.key);
    failed.delete(m.key);
    return;
  }
  if (m.t === 'load') {
    try {
      loaded.set(m.key, await compile(m.source));
      post({ t: 'loaded', key: m.key });
    } catch (err) {
      failed.set(m.key, messageOf(err));
      post({ t: 'loaded', key: m.key, error: messageOf(err) });
    }
    return;
  }
  const run = loaded.get(m.key);
  if (!run) {
    post({ t: 'error', id: m.id, budget: false, code: 'POLICY_EVALUATION_FAILED', message: failed.get(m.key) ?? 'policy not loaded in the evaluation worker' });
    return;
  }
  try {
    post({ t: 'result', id: m.id, value: withBudget({ ms: m.budgetMs }, () => run(m.input, m.nowMs)) });
  } catch (err) {
    const code = typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'INTERNAL';
    // A wasm host built-in (numbers.range…) can run out of budget too: opa-wasm wraps its error.
    const budget = err instanceof RegoBudgetExceededError || (err as { cause?: unknown }).cause instanceof RegoBudgetExceededError;
    post({ t: 'error', id: m.id, budget, code, message: messageOf(err) });
  }
}

// Messages are handled one at a time, in order (a load completes before the eval sent after it).
let chain = Promise.resolve();
port.on('message', (m: ToWorker) => {
  chain = chain.then(() => handle(m));
});
post({ t: 'ready' });
