import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'meshward-conformance-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `npm run conformance` itself (its script line), with the suite directory from the environment. */
function conformance(suiteDir: string, ...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'test/policy/rego/conformance/run.ts', ...args], {
    env: { ...process.env, MESHWARD_CONFORMANCE_DIR: suiteDir },
    encoding: 'utf8',
  });
}

describe('npm run conformance', () => {
  it('reads the suite from MESHWARD_CONFORMANCE_DIR', () => {
    mkdirSync(join(dir, 'suite/tiny'), { recursive: true });
    const yaml = [
      'cases:',
      '  - note: tiny/one',
      '    query: data.t.x = x',
      '    modules:',
      '      - |',
      '        package t',
      '        x := 1',
      '    want_result:',
      '      - x: 1',
      '  - note: tiny/wrong',
      '    query: data.t.x = x',
      '    modules:',
      '      - |',
      '        package t',
      '        x := 2',
      '    want_result:',
      '      - x: 1',
      '',
    ].join('\n');
    writeFileSync(join(dir, 'suite/tiny/test-tiny.yaml'), yaml);
    // --folder: a partial run, so the committed test/conformance-summary.json is not rewritten.
    const r = conformance(join(dir, 'suite'), '--folder', 'tiny');
    expect(r.stdout).toContain('TOTAL 1/2 passed');
  });

  it('refuses a missing suite with where to get it, exit 2', () => {
    const r = conformance(join(dir, 'absent'));
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`conformance suite not found at ${join(dir, 'absent')}`);
    expect(r.stderr).toContain('v1/test/cases/testdata/v1');
    expect(r.stderr).toContain('MESHWARD_CONFORMANCE_DIR');
  });
});
