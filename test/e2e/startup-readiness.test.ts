/**
 * "A replica that says it is serving answers." Several `meshward serve` processes start at once on a
 * CPU-loaded machine with many policies and are sent ext_authz checks from before their port
 * accepts (startup-load.ts): no check may be answered AUTHZ_NOT_READY (or any error), before or
 * after the "meshward serving" line, nor while a reload compiles the next pipeline. A configuration
 * whose policies do not compile stops the start: no port answers, no "serving" line. Counts are
 * printed; only behaviour is asserted.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { checkRequest } from '../authz/helpers.ts';
import { ALLOWED, burnCpu, cleanupsAfterAll, checkOnce, DENIED, describeTallies, GENERATED_REGO_POLICIES, GENERATED_YAML_POLICIES, hammer, hammerThroughStartup, type Serve, spawnServe, writeLoadedConfig } from './startup-load.ts';

const REPLICAS = 4;

const BLOCKED_LATER = checkRequest({ path: '/api/orders/blocked' });
const BLOCK_ON_RELOAD = `apiVersion: meshward.io/v1
kind: AuthorizationPolicy
metadata: { name: blocked-after-reload, namespace: shop }
spec:
  selector: { matchLabels: { app: orders } }
  action: DENY
  rules:
    - to:
        - operation: { paths: ["/api/orders/blocked"] }
`;

describe('meshward serve answers ext_authz checks as soon as it accepts them', () => {
  const { cleanups, killLater } = cleanupsAfterAll();

  it('never answers AUTHZ_NOT_READY: not while starting under load with many policies, not after "serving", not during a reload', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'mw-startup-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const configDir = path.join(root, 'config');
    writeLoadedConfig(configDir);

    const burners = burnCpu();
    for (const b of burners) killLater(b);
    const serves = await Promise.all(Array.from({ length: REPLICAS }, (_, i) => spawnServe(configDir, path.join(root, `data-${i}`))));
    for (const s of serves) killLater(s.child, s.exited);
    const startup = await hammerThroughStartup(serves);
    const ready = await Promise.all(serves.map((s) => fetch(`http://${s.http}/readyz`).then((res) => res.status)));
    for (const b of burners) b.kill('SIGKILL');
    process.stderr.write(describeTallies(`startup under load: ${REPLICAS} replicas, ${GENERATED_YAML_POLICIES + GENERATED_REGO_POLICIES} generated policies`, startup));
    for (const t of startup) {
      expect(t.notReady).toEqual([]);
      expect(t.errors).toEqual([]);
      expect(t.wrong).toEqual([]);
      expect(t.decisions).toBeGreaterThan(0);
    }
    expect(ready).toEqual(serves.map(() => 200));

    // A reload recompiles every policy; checks keep being answered by the pipeline being replaced.
    expect(await checkOnce(serves[0]!, BLOCKED_LATER)).toBe(status.OK);
    writeFileSync(path.join(configDir, 'blocked.yaml'), BLOCK_ON_RELOAD);
    const during = serves.map((s) => hammer(s, [ALLOWED, DENIED]));
    const reload = (s: Serve) => fetch(`http://${s.http}/v1/config/reload`, {
      method: 'POST', headers: { authorization: `Bearer ${readFileSync(path.join(s.dataDir, 'admin.token'), 'utf8').trim()}` },
    }).then(async (res) => ({ status: res.status, body: await res.json() as { changed?: boolean; errors?: { file: string }[] } }));
    const applied = await Promise.all(serves.map(reload));
    expect(applied.map((r) => [r.status, r.body.changed])).toEqual(serves.map(() => [200, true]));
    for (const s of serves) expect(await checkOnce(s, BLOCKED_LATER)).toBe(status.PERMISSION_DENIED);

    // A reload whose Rego does not compile is rejected; the served pipeline keeps answering.
    writeFileSync(path.join(configDir, 'rego/gen/p0.rego'), 'package gen0.authz\n\nallow if {\n');
    const rejected = await Promise.all(serves.map(reload));
    expect(rejected.map((r) => r.status)).toEqual(serves.map(() => 400));
    for (const s of serves) expect(await checkOnce(s, BLOCKED_LATER)).toBe(status.PERMISSION_DENIED);
    const reloads = await Promise.all(during.map((h) => h.stop()));
    process.stderr.write(describeTallies('checks during an applied and a rejected reload', reloads));
    for (const t of reloads) {
      expect(t.notReady).toEqual([]);
      expect(t.errors).toEqual([]);
      expect(t.wrong).toEqual([]);
      expect(t.noConnection).toBe(0);
      expect(t.decisions).toBeGreaterThan(0);
    }

    for (const s of serves) s.child.kill('SIGTERM');
    expect(await Promise.all(serves.map((s) => s.exited))).toEqual(serves.map(() => 0));
  }, 240_000);

  it('does not start with policies that do not compile: exits with the error, never answers a check, never says "serving"', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'mw-startup-broken-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const configDir = path.join(root, 'config');
    cpSync('policies', configDir, { recursive: true });
    writeFileSync(path.join(configDir, 'rego/payments.rego'), 'package envoy.authz\n\nallow if {\n');
    const s = await spawnServe(configDir, path.join(root, 'data'));
    killLater(s.child, s.exited);
    const h = hammer(s, [ALLOWED]);
    // Either it exits, or (what this guards against) it says "serving" and keeps running.
    const code = await Promise.race([s.exited, s.whenServing.then(() => new Promise((r) => setTimeout(r, 1000))).then(() => 'still running')]);
    const tally = await h.stop();
    expect(code).toBe(65); // POLICY_COMPILE_FAILED
    expect(s.serving).toBe(false);
    expect(s.logs.join('\n')).toMatch(/meshward serve: \S*rego\.yaml:\d+ shop\/payments-limits: rego\/payments\.rego:\d+:\d+: rego_parse_error/);
    expect(tally.notReady).toEqual([]);
    expect(tally.errors).toEqual([]);
    expect(tally.decisions).toBe(0);
  }, 60_000);
});
