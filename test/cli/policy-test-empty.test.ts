/**
 * `meshward policy test` that finds no test to run fails (exit 1, POLICY_NO_TESTS, naming the
 * paths searched): a CI job whose test files or rules are mis-named must not pass silently.
 * `opa test` exits 0 then unless given --fail-on-empty; `--allow-empty` keeps that behaviour.
 */
import { describe, expect, it } from 'vitest';
import { cli, tempDirsOfFiles } from '../helpers/cli.ts';
import { errorCatalog } from '../../src/lib/errors.ts';

const tempDir = tempDirsOfFiles('mw-policy-test-');

const POLICY = 'package envoy.authz\nimport rego.v1\n\ndefault allow := false\n\nallow if input.method == "GET"\n';
// A test rule mis-named (no test_ prefix): nothing to run.
const MISNAMED = 'package envoy.authz_test\nimport rego.v1\nimport data.envoy.authz\n\ncheck_get if authz.allow with input as {"method": "GET"}\n';
const GOOD = 'package envoy.authz_test\nimport rego.v1\nimport data.envoy.authz\n\ntest_get if authz.allow with input as {"method": "GET"}\n';

describe('meshward policy test with no tests', () => {
  it('exits 1 with POLICY_NO_TESTS naming every path searched', async () => {
    const a = tempDir({ 'authz.rego': POLICY, 'authz_tests.rego': MISNAMED });
    const b = tempDir({});
    const r = await cli(['policy', 'test', a, b]);
    expect(r.code).toBe(1);
    expect(errorCatalog().get('POLICY_NO_TESTS')?.exit).toBe(1);
    expect(r.stderr).toContain('no tests found');
    expect(r.stderr).toContain(a);
    expect(r.stderr).toContain(b);
  });

  it('fails the same when --run matches no test, and says so', async () => {
    const dir = tempDir({ 'authz.rego': POLICY, 'authz_test.rego': GOOD });
    const r = await cli(['policy', 'test', dir, '--run', 'nothing_matches']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(dir);
    expect(r.stderr).toContain('nothing_matches');
  });

  it('fails with --json too, printing an empty result list', async () => {
    const dir = tempDir({ 'authz.rego': POLICY });
    const r = await cli(['policy', 'test', '--json', dir]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual([]);
    expect(r.stderr).toContain(dir);
  });

  it('exits 0 with --allow-empty, and 0 when tests are found and pass', async () => {
    const empty = tempDir({ 'authz.rego': POLICY });
    const allowed = await cli(['policy', 'test', '--allow-empty', empty]);
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toContain('no tests found');
    const good = tempDir({ 'authz.rego': POLICY, 'authz_test.rego': GOOD });
    expect((await cli(['policy', 'test', good])).code).toBe(0);
  });

  it("accepts opa test's --fail-on-empty (the default here) but not with --allow-empty", async () => {
    const empty = tempDir({ 'authz.rego': POLICY });
    expect((await cli(['policy', 'test', '--fail-on-empty', empty])).code).toBe(1);
    const both = await cli(['policy', 'test', '--fail-on-empty', '--allow-empty', empty]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--allow-empty');
  });
});
