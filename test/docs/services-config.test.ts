import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import services from '../../vitest.services.config.ts';

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [join(dir, e.name)] : [],
  );
}

describe('npm run test:services', () => {
  it('selects the *.services.test.ts suites and nothing else', () => {
    const include = services.test?.include ?? [];
    const matches = (f: string) => include.some((glob) => path2re(glob).test(f));
    const all = testFiles('test');
    const selected = all.filter(matches);
    expect(selected.length).toBeGreaterThan(0);
    expect(selected).toEqual(all.filter((f) => f.endsWith('.services.test.ts')));
  });
});

/** The only glob shapes the config uses: `**` (any folders) and `*` (within a name). */
function path2re(glob: string): RegExp {
  const re = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*\//g, '\u0000').replace(/\*/g, '[^/]*').replace(/\u0000/g, '(?:.*/)?');
  return new RegExp(`^${re}$`);
}
