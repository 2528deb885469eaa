/**
 * A value computed per workload (the policies or JWT rules in scope for it), cached by the
 * workload object's identity first, since resolvers hand out one frozen object per destination
 * and a WeakMap lookup is far cheaper than building a key, then by its content (namespace and
 * labels), bounded. Computing the content key with JSON.stringify on every check measured 2 % of
 * the ext_authz event loop.
 */
export interface WorkloadKey {
  namespace?: string;
  labels: Readonly<Record<string, string>>;
}

const DEFAULT_MAX_ENTRIES = 10_000;

export class WorkloadCache<W extends WorkloadKey, T> {
  readonly #byIdentity = new WeakMap<W, T>();
  readonly #byContent = new Map<string, T>();
  readonly #compute: (workload: W) => T;
  readonly #maxEntries: number;

  /** `compute` is called once per distinct workload content (pass a function made once, not per lookup). */
  constructor(compute: (workload: W) => T, maxEntries = DEFAULT_MAX_ENTRIES) {
    this.#compute = compute;
    this.#maxEntries = maxEntries;
  }

  get(workload: W): T {
    const known = this.#byIdentity.get(workload);
    if (known !== undefined) return known;
    const key = `${workload.namespace ?? ''}\u0000${JSON.stringify(workload.labels)}`;
    let value = this.#byContent.get(key);
    if (value === undefined) {
      if (this.#byContent.size >= this.#maxEntries) this.#byContent.clear();
      value = this.#compute(workload);
      this.#byContent.set(key, value);
    }
    this.#byIdentity.set(workload, value);
    return value;
  }
}
