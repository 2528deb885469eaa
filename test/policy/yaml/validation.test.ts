/** `meshward config validate` catches what the YAML engine would fail to compile. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigInvalidError, loadConfigDir } from '../../../src/config/index.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function load(spec: string): unknown {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mw-yaml-'));
  dirs.push(dir);
  writeFileSync(path.join(dir, 'p.yaml'), `apiVersion: meshward.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: p, namespace: shop }\nspec:\n${spec}`);
  try {
    loadConfigDir(dir);
    return undefined;
  } catch (err) {
    if (!(err instanceof ConfigInvalidError)) throw err;
    return err.issues.map((i) => ({ path: i.path, message: i.message }));
  }
}

describe('AuthorizationPolicy validation', () => {
  it('reports an invalid CIDR, a bad path template and an invalid IP condition with their paths', () => {
    const issues = load([
      '  rules:',
      '    - from: [{ source: { ipBlocks: ["10.0.0.0/40"] } }]',
      '      to: [{ operation: { paths: ["/ok", "/a/{**}/b"] } }]',
      '      when: [{ key: remote.ip, values: ["not-an-ip"] }]',
    ].join('\n'));
    expect(issues).toEqual([
      { path: expect.stringContaining('spec.rules[0].from[0].source.ipBlocks'), message: expect.stringMatching(/invalid prefix length/) },
      { path: expect.stringContaining('spec.rules[0].to[0].operation.paths[1]'), message: expect.stringMatching(/\{\*\*\} must be the last operator/) },
      { path: expect.stringContaining('spec.rules[0].when[0].values'), message: expect.stringMatching(/not an IP address or CIDR block/) },
    ]);
  });

  it('accepts valid CIDRs, templates and conditions', () => {
    expect(load([
      '  rules:',
      '    - from: [{ source: { ipBlocks: ["10.0.0.0/8", "2001:db8::/32"], notRemoteIpBlocks: ["192.0.2.1"] } }]',
      '      to: [{ operation: { paths: ["/api/{*}/items", "/static/{**}"] } }]',
      '      when: [{ key: source.ip, values: ["10.1.0.0/16"] }]',
    ].join('\n'))).toBeUndefined();
  });
});
