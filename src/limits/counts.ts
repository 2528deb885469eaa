/**
 * Hot-path counters for `(subject, result)` pairs: plain array increments per check, folded into a
 * prom-client counter only when the registry is scraped. `Counter.inc(labels)` hashes its labels
 * on every call, which alone would cost a fifth of the in-memory check.
 */
import { Counter, type Registry } from '../lib/metrics.ts';

type Flush = () => void;
/** Per registry and metric name, every ResultCounts feeding that counter (several engines may share one). */
const flushers = new WeakMap<Registry, Map<string, Set<Flush>>>();

function counterFor(registry: Registry, name: string, help: string, labelNames: string[]): { counter: Counter; feeds: Set<Flush> } {
  let byName = flushers.get(registry);
  if (!byName) flushers.set(registry, (byName = new Map()));
  let feeds = byName.get(name);
  if (feeds) return { counter: registry.getSingleMetric(name) as Counter, feeds };
  const all = (feeds = new Set<Flush>());
  byName.set(name, all);
  const counter = new Counter({
    name, help, labelNames, registers: [registry],
    collect() {
      for (const flush of all) flush();
    },
  });
  return { counter, feeds };
}

export class ResultCounts<R extends string> {
  readonly #results: readonly R[];
  readonly #index: Readonly<Record<R, number>>;
  readonly #counter: Counter;
  readonly #subjectLabel: string;
  readonly #pending = new Map<string, number[]>();

  constructor(registry: Registry, name: string, help: string, subjectLabel: string, results: readonly R[]) {
    this.#results = results;
    this.#index = Object.fromEntries(results.map((r, i) => [r, i])) as Record<R, number>;
    this.#subjectLabel = subjectLabel;
    const { counter, feeds } = counterFor(registry, name, help, [subjectLabel, 'result']);
    this.#counter = counter;
    feeds.add(() => this.flush());
  }

  add(subject: string, result: R): void {
    let row = this.#pending.get(subject);
    if (!row) this.#pending.set(subject, (row = new Array<number>(this.#results.length).fill(0)));
    row[this.#index[result]]!++;
  }

  /** Moves pending counts into the prom-client counter (on scrape). */
  flush(): void {
    for (const [subject, row] of this.#pending) {
      for (let i = 0; i < row.length; i++) {
        if (row[i]! > 0) this.#counter.inc({ [this.#subjectLabel]: subject, result: this.#results[i]! }, row[i]!);
        row[i] = 0;
      }
    }
  }
}
