/**
 * RegoPolicy data documents (data.json next to the modules, OPA's bundle layout) and OPA bundles
 * (.tar.gz with .manifest) through the production engine, allow and deny, the bundle's revision
 * in the decision record.
 */
import { gzipSync } from 'node:zlib';
import { status } from '@grpc/grpc-js';
import { pack } from 'tar-stream';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadConfigDir } from '../../src/config/index.ts';
import type { AuthzCapability } from '../../src/authz/index.ts';
import { createRegoPolicyEngine } from '../../src/policy/engines.ts';
import { EvaluationPool } from '../../src/policy/pool/index.ts';
import { readRegoBundle } from '../../src/policy/rego-sources.ts';
import { checkRequest, type Harness, SERVICES, startAuthz, yamlDoc } from './helpers.ts';

const WEB = 'spiffe://cluster.local/ns/shop/sa/web';
const OTHER = 'spiffe://cluster.local/ns/shop/sa/other';

const ROLES_POLICY = `package envoy.authz

import rego.v1

default allow := false

allow if "reader" in data.roles[input.attributes.source.principal]
`;

const pool = new EvaluationPool({ size: 1 });
const engine = (authz: AuthzCapability) => authz.engines.register(createRegoPolicyEngine({ pool }));
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});
afterAll(() => pool.close());

async function tarGz(files: Record<string, string>): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve) => p.on('end', () => resolve()));
  for (const [name, content] of Object.entries(files)) p.entry({ name }, content);
  p.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

describe('RegoPolicy data documents', () => {
  it('reads data.roles from a data.json next to its module: allows a listed principal, denies another', async () => {
    h = await startAuthz({
      'services.yaml': SERVICES,
      'rego/authz.rego': ROLES_POLICY,
      // In the config directory, yet not a configuration document.
      'rego/data.json': JSON.stringify({ roles: { [WEB]: ['reader'], [OTHER]: ['auditor'] } }),
      'rego.yaml': yamlDoc('RegoPolicy', 'roles', 'shop', 'selector: { matchLabels: { app: orders } }\nmodules: [rego/authz.rego]\ndata: [rego/data.json]'),
    }, { configure: engine });
    expect((await h.check(checkRequest({ source: WEB }))).status.code).toBe(status.OK);
    expect((await h.check(checkRequest({ source: OTHER }))).status.code).toBe(status.PERMISSION_DENIED);
  });

  it('loads a data.yaml below the module directory at its directory path (roles/data.yaml → data.roles)', async () => {
    h = await startAuthz({
      'services.yaml': SERVICES,
      'rego/authz.rego': ROLES_POLICY,
      'rego/roles/data.yaml': `"${WEB}": [reader]\n`,
      'rego.yaml': yamlDoc('RegoPolicy', 'roles', 'shop', 'selector: { matchLabels: { app: orders } }\nmodules: [rego/authz.rego]\ndata: [rego/roles/data.yaml]'),
    }, { configure: engine });
    expect((await h.check(checkRequest({ source: WEB }))).status.code).toBe(status.OK);
    expect((await h.check(checkRequest({ source: OTHER }))).status.code).toBe(status.PERMISSION_DENIED);
  });

  it('refuses a malformed data.json, naming the file and line', async () => {
    await expect(startAuthz({
      'services.yaml': SERVICES,
      'rego/authz.rego': ROLES_POLICY,
      'rego/data.json': '{\n  "roles": {\n    "a": [1,,]\n  }\n}\n',
      'rego.yaml': yamlDoc('RegoPolicy', 'roles', 'shop', 'selector: { matchLabels: { app: orders } }\nmodules: [rego/authz.rego]\ndata: [rego/data.json]'),
    }, { configure: engine })).rejects.toThrow(/rego\/data\.json:3:\d+: not valid JSON/);
  });
});

describe('RegoPolicy OPA bundles', () => {
  it('evaluates a bundle (modules + data + manifest) and records its revision', async () => {
    const bundle = await tarGz({
      '.manifest': JSON.stringify({ revision: 'rev-2026-01-01', roots: ['envoy', 'roles'] }),
      'envoy/authz/policy.rego': ROLES_POLICY,
      'roles/data.json': JSON.stringify({ [WEB]: ['reader'] }),
    });
    h = await startAuthz({
      'services.yaml': SERVICES,
      'bundles/authz.tar.gz': bundle as unknown as string,
      'rego.yaml': yamlDoc('RegoPolicy', 'bundled', 'shop', 'selector: { matchLabels: { app: orders } }\nbundle: bundles/authz.tar.gz'),
    }, { configure: engine });
    expect((await h.check(checkRequest({ source: WEB }))).status.code).toBe(status.OK);
    expect((await h.check(checkRequest({ source: OTHER }))).status.code).toBe(status.PERMISSION_DENIED);
    await expect.poll(() => h!.records.length).toBeGreaterThanOrEqual(2);
    for (const r of h.records) {
      expect(r.bundles).toEqual({ 'bundles/authz.tar.gz': { revision: 'rev-2026-01-01' } });
      expect(r.matchedPolicies.find((m) => m.name === 'bundled')?.bundle).toEqual({ name: 'bundles/authz.tar.gz', revision: 'rev-2026-01-01' });
    }
  });

  it('refuses a bundle whose data lies outside the manifest roots', async () => {
    const bundle = await tarGz({
      '.manifest': JSON.stringify({ revision: 'r1', roots: ['envoy'] }),
      'envoy/authz/policy.rego': ROLES_POLICY,
      'roles/data.json': JSON.stringify({ [WEB]: ['reader'] }),
    });
    // The policies of this configuration do not compile: meshward does not start.
    await expect(startAuthz({
      'services.yaml': SERVICES,
      'bundles/authz.tar.gz': bundle as unknown as string,
      'rego.yaml': yamlDoc('RegoPolicy', 'bundled', 'shop', 'selector: { matchLabels: { app: orders } }\nbundle: bundles/authz.tar.gz'),
    }, { configure: engine })).rejects.toThrow(/data\.roles is outside the bundle roots/);
    await expect(readRegoBundle('authz.tar.gz', bundle, {})).rejects.toThrow(/data\.roles is outside the bundle roots/);
  });
});

describe('data files in the configuration directory', () => {
  function configDir(files: Record<string, string>): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mw-regodata-'));
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      writeFileSync(path.join(dir, name), content);
    }
    return dir;
  }

  it('never reads data.json / data.yaml as configuration documents, listed or not', () => {
    const dir = configDir({
      'rego/authz.rego': ROLES_POLICY,
      'rego/data.json': '{"roles": {}}',
      'other/data.yaml': 'not: [a, config, document]\n',
      'rego.yaml': yamlDoc('RegoPolicy', 'roles', 'shop', 'modules: [rego/authz.rego]\ndata: [rego/data.json]'),
    });
    try {
      expect(loadConfigDir(dir).documents.map((d) => d.kind)).toEqual(['RegoPolicy']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a data file not named as OPA names data documents', () => {
    const dir = configDir({
      'rego/authz.rego': ROLES_POLICY,
      'rego/roles.json': '{"roles": {}}',
      'rego.yaml': yamlDoc('RegoPolicy', 'roles', 'shop', 'modules: [rego/authz.rego]\ndata: [rego/roles.json]'),
    });
    try {
      expect(() => loadConfigDir(dir)).toThrow(/data file "rego\/roles\.json" must be named data\.json/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
