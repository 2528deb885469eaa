/**
 * `compute` memoized by key, forgetting everything once `max` keys are held: for values derived
 * from a small working set (a fleet's SPIFFE IDs, a few PEM labels) on hot paths, where a full
 * LRU's bookkeeping would cost more than the occasional recompute after a reset.
 */
export function boundedMemo<K, V>(max: number, compute: (key: K) => V): (key: K) => V {
  const cache = new Map<K, V>();
  return (key) => {
    let value = cache.get(key);
    if (value === undefined) {
      value = compute(key);
      if (cache.size >= max) cache.clear();
      cache.set(key, value);
    }
    return value;
  };
}
