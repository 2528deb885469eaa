/** The policy examples in docs/limits.md are valid configuration (the docs cannot drift from the schema). */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { snapshotOf } from './helpers.ts';

const text = fs.readFileSync(new URL('../../docs/limits.md', import.meta.url), 'utf8');
const examples = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((y) => /^kind: (RateLimitPolicy|QuotaPolicy)$/m.test(y));

describe('docs/limits.md examples', () => {
  it('has the policy examples', () => {
    expect(examples.length).toBeGreaterThanOrEqual(2);
  });
  it.each(examples.map((y, i) => [i, y]))('example %i validates', (_i, yaml) => {
    const snapshot = snapshotOf(yaml as string);
    expect(snapshot.documents).toHaveLength(1);
  });
});
