/**
 * When the authz capability can decide: `start()` resolves with a pipeline serving (meshward binds
 * its ports after that), a configuration whose policies do not compile stops the start before any
 * port opens, and a reload swaps pipelines in one step: the old one answers until the new one is
 * compiled, and keeps answering when it does not compile.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { type AuthzCapability, createAuthzCapability } from '../../src/authz/index.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { createMeshward } from '../../src/meshward.ts';
import { createRegoPolicyEngine } from '../../src/policy/engines.ts';
import { checkRequest, type Harness, ORDERS_FROM_WEB, SERVICES, startAuthz, yamlDoc } from './helpers.ts';

const BLOCKED = checkRequest({ path: '/api/orders/blocked' });
const BLOCK = yamlDoc('AuthorizationPolicy', 'blocked', 'shop', 'selector: { matchLabels: { app: orders } }\naction: DENY\nrules:\n  - to:\n      - operation: { paths: ["/api/orders/blocked"] }');

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('authz capability readiness', () => {
  it('has a pipeline deciding checks once start() resolves (allow and deny)', async () => {
    h = await startAuthz({ 'services.yaml': SERVICES, 'authz.yaml': ORDERS_FROM_WEB });
    expect(h.authz.ready?.()).toBe(true);
    expect((await h.check(checkRequest())).status.code).toBe(status.OK);
    expect((await h.check(checkRequest({ source: 'spiffe://cluster.local/ns/shop/sa/orders' }))).status.code).toBe(status.PERMISSION_DENIED);
    expect((await h.mw.http.inject('/readyz')).statusCode).toBe(200);
  });

  it('does not start, and opens no port, when the policies of the configuration do not compile', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'mw-authz-start-'));
    try {
      const configDir = path.join(root, 'config');
      const files = {
        'services.yaml': SERVICES,
        'rego.yaml': yamlDoc('RegoPolicy', 'broken', 'shop', 'selector: { matchLabels: { app: orders } }\nmodules: [broken.rego]'),
        'broken.rego': 'package envoy.authz\n\nallow if {\n',
      };
      mkdirSync(configDir);
      for (const [name, content] of Object.entries(files)) writeFileSync(path.join(configDir, name), content);
      const mw = await createMeshward(
        { configDir, dataDir: path.join(root, 'data'), grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false },
        { logger: silentLogger(), registry: createRegistry(), capabilities: [(ctx) => { const a = createAuthzCapability(ctx); a.engines.register(createRegoPolicyEngine()); return a; }] },
      );
      await expect(mw.start()).rejects.toMatchObject({ code: 'POLICY_COMPILE_FAILED', message: expect.stringMatching(/rego\.yaml:\d+ shop\/broken: broken\.rego:\d+/) });
      expect(mw.addresses).toEqual({ grpc: '', http: '' });
      expect(mw.capability<AuthzCapability>('authz')!.ready?.()).toBe(false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('answers from the old pipeline while a reload compiles, then from the new one; a reload that fails to compile keeps the old one', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => { release = resolve; });
    let fail = false;
    let holding = false;
    const compiled: string[] = [];
    h = await startAuthz({ 'services.yaml': SERVICES, 'authz.yaml': ORDERS_FROM_WEB }, {
      configure: (authz) => authz.addStage({
        name: 'held',
        async compile(snapshot) {
          if (compiled.length > 0) { // every compile after the first waits for the test
            holding = true;
            await held;
          }
          if (fail) throw new Error('held stage refuses this snapshot');
          compiled.push(snapshot.version);
          return { name: 'held', run: () => undefined };
        },
      }),
    });
    const first = h.authz.version();
    expect((await h.check(BLOCKED)).status.code).toBe(status.OK);

    h.writeConfig({ 'block.yaml': BLOCK });
    const reload = h.mw.config.reload();
    // The new snapshot is compiling (held): every check is answered, by the pipeline being replaced.
    try {
      await expect.poll(() => holding, { timeout: 20_000 }).toBe(true); // the reload reads the files in a worker thread first
      expect(h.mw.config.current().version).toBe(first);
      for (let i = 0; i < 20; i++) {
        expect((await h.check(BLOCKED)).status.code).toBe(status.OK);
        expect((await h.check(checkRequest({ source: 'spiffe://cluster.local/ns/shop/sa/orders' }))).status.code).toBe(status.PERMISSION_DENIED);
      }
      expect(h.authz.version()).toBe(first);
    } finally {
      release(); // else stop() would wait for the held compile
    }
    expect(await reload).toMatchObject({ changed: true });
    expect(h.authz.version()).not.toBe(first);
    expect((await h.check(BLOCKED)).status.code).toBe(status.PERMISSION_DENIED);

    // Rejected: the served pipeline stays, and stays ready.
    const second = h.authz.version();
    fail = true;
    h.writeConfig({ 'block.yaml': BLOCK.replace('blocked', 'blocked-renamed') });
    expect(await h.mw.config.reload()).toMatchObject({ changed: false, error: { code: 'CONFIG_INVALID' } });
    expect(h.authz.version()).toBe(second);
    expect(h.authz.ready?.()).toBe(true);
    expect((await h.check(BLOCKED)).status.code).toBe(status.PERMISSION_DENIED);
    expect((await h.check(checkRequest())).status.code).toBe(status.OK);
  });

  it('answers from the old pipeline while a recompile after start (a stage added late) compiles', async () => {
    h = await startAuthz({ 'services.yaml': SERVICES, 'authz.yaml': ORDERS_FROM_WEB });
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => { release = resolve; });
    let holding = false;
    h.authz.addStage({
      name: 'deny-all',
      async compile() {
        holding = true;
        await held;
        return { name: 'deny-all', run: () => ({ outcome: 'deny', reason: 'late stage' }) };
      },
    });
    try {
      await expect.poll(() => holding).toBe(true);
      for (let i = 0; i < 20; i++) expect((await h.check(checkRequest())).status.code).toBe(status.OK);
    } finally {
      release(); // else stop() would wait for the held compile
    }
    await h.authz.recompile(); // queued behind the held compile: resolves once that one serves
    expect((await h.check(checkRequest())).status.code).toBe(status.PERMISSION_DENIED);
  });
});
