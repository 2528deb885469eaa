import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, tempDirsOfFiles } from '../../helpers/cli.ts';

const tempDir = tempDirsOfFiles('mw-');

const POLICY = 'package envoy.authz\nimport rego.v1\n\ndefault allow := false\n\nallow if input.method == "GET"\n\nallow if input.user in data.admins\n';

describe('meshward policy', () => {
  it('eval prints results like opa eval --format json', async () => {
    const dir = tempDir({ 'authz.rego': POLICY, 'input.json': '{"method": "GET"}', 'data.json': '{"admins": ["ann"]}' });
    const r = await cli(['policy', 'eval', '-d', path.join(dir, 'authz.rego'), '-i', path.join(dir, 'input.json'), 'data.envoy.authz.allow']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ result: [{ expressions: [{ value: true, text: 'data.envoy.authz.allow' }] }] });
  });

  it('eval reads --data and binds query variables', async () => {
    const dir = tempDir({ 'authz.rego': POLICY, 'input.json': '{"method": "POST", "user": "ann"}', 'data.json': '{"admins": ["ann"]}' });
    const r = await cli(['policy', 'eval', '-d', dir, '-i', path.join(dir, 'input.json'), '--data', path.join(dir, 'data.json'), 'x := data.envoy.authz.allow']);
    expect(JSON.parse(r.stdout).result[0].bindings).toEqual({ x: true });
  });

  it('eval prints {} for an undefined query and fails with --fail', async () => {
    const dir = tempDir({ 'authz.rego': POLICY });
    const r = await cli(['policy', 'eval', '-d', dir, '--fail', 'data.envoy.authz.nothing']);
    expect(JSON.parse(r.stdout)).toEqual({});
    expect(r.code).toBe(1);
  });

  it('test runs test_ rules, reports failures and exits 2', async () => {
    const dir = tempDir({
      'authz.rego': POLICY,
      'authz_test.rego': 'package envoy.authz_test\nimport rego.v1\nimport data.envoy.authz\n\ntest_get if authz.allow with input as {"method": "GET"}\ntest_post_denied if not authz.allow with input as {"method": "POST"}\ntest_wrong if authz.allow with input as {"method": "DELETE"}\n',
    });
    const r = await cli(['policy', 'test', dir]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('data.envoy.authz_test.test_wrong: FAIL');
    expect(r.stdout).toContain('PASS: 2/3');
    expect(r.stdout).toContain('FAIL: 1/3');
    const ok = await cli(['policy', 'test', dir, '--run', 'test_get|test_post']);
    expect(ok.code).toBe(0);
  });

  it('places data files found in subdirectories at their directory path, as OPA bundles do', async () => {
    const dir = tempDir({ 'authz.rego': POLICY });
    fs.mkdirSync(path.join(dir, 'teams'));
    fs.writeFileSync(path.join(dir, 'teams', 'data.yaml'), 'payments: [ann]\n');
    const r = await cli(['policy', 'eval', '-d', dir, 'data.teams.payments[0]']);
    expect(JSON.parse(r.stdout).result[0].expressions[0].value).toBe('ann');
  });

  it('check exits 0 for valid modules and 1 with positioned errors', async () => {
    const good = tempDir({ 'authz.rego': POLICY });
    expect((await cli(['policy', 'check', good])).code).toBe(0);
    const bad = tempDir({ 'bad.rego': 'package bad\n\nallow if {\n  y == 1\n}\n' });
    const r = await cli(['policy', 'check', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${path.join(bad, 'bad.rego')}:4:3: rego_unsafe_var_error: var y is unsafe`);
  });
});
