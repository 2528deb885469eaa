/**
 * Hot-path counters for `(subject, result)` pairs: plain array increments per check, folded into a
 * prom-client counter only when the registry is scraped. `Counter.inc(labels)` hashes its labels
 * on every call, which alone would cost a tenth of the in-memory check budget.
 */
import { Counter, type Registry } from '../lib/metrics.ts';

type Flush = () => void;
const flushers = new WeakMap<Registry, Map<string, Set<Flush>>>();

export class ResultCounts<R extends string> {
  readonly #results: readonly R[];
  readonly #index: Readonly<Record<R, number>>;
  #pending = new Map<string, number[]>();

  constructor(registry: Registry, name: string, help: string, subjectLabel: string, results: readonly R[]) {
    this.#results = results;
    this.#index = Object.fromEntries(results.map((r, i) => [r, i])) as Record<R, number>;
    let byName = flushers.get(registry);
    if (!byName) flushers.set(registry, (byName = new Map()));
    let set = byName.get(name);
    if (!set) {
      const all = (set = new Set<Flush>());
      byName.set(name, all);
      const counter: Counter = (registry.getSingleMetric(name) as Counter | undefined) ?? new Counter({
        name, help, labelNames: [subjectLabel, 'result'], registers: [registry],
        collect() {
          for (const f of all) f();
        },
      });
      this.#counter = counter;
    } else {
      this.#counter = registry.getSingleMetric(name) as Counter;
    }
    this.#subjectLabel = subjectLabel;
    set.add(() => this.flush());
  }

  readonly #counter: Counter;
  readonly #subjectLabel: string;

  add(subject: string, result: R): void {
    let row = this.#pending.get(subject);
    if (!row) this.#pending.set(subject, (row = new Array<number>(this.#results.length).fill(0)));
    row[this.#index[result]]!++;
  }

  /** Moves pending counts into the prom-client counter (on scrape, and in tests). */
  flush(): void {
    for (const [subject, row] of this.#pending) {
      row.forEach((n, i) => {
        if (n > 0) this.#counter.inc({ [this.#subjectLabel]: subject, result: this.#results[i]! }, n);
        row[i] = 0;
      });
    }
  }
}
