/**
 * A slow policy through ext_authz with meshward's Rego engine: it is stopped at its budget, the
 * check fails as policy errors do (gRPC error: Envoy's failure mode decides) and is audited, the
 * event loop stays responsive while it runs (its evaluation moves to a worker after a 1 ms slice),
 * and fast policies keep deciding. A wasm bundle stuck in a loop is cut by terminating its worker.
 * Timings are bounded with generous margins (a loaded shared box), never tight.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthzCapability } from '../../src/authz/index.ts';
import { createRegoPolicyEngine } from '../../src/policy/engines.ts';
import { EvaluationPool } from '../../src/policy/pool/index.ts';
import { compileWat, packBundle, POLICY_WAT } from '../policy/wasm/fixture.ts';
import { checkRequest, type Harness, SERVICES, startAuthz, yamlDoc } from './helpers.ts';

const BUDGET_MS = 50;
const MARGIN_MS = 500;

const SLOW_REGO = `package envoy.authz
import rego.v1
default allow := false
# Seconds per evaluation without a budget (9 million iterations).
allow if count([1 | some i in numbers.range(1, 3000); some j in numbers.range(1, 3000); i * j > 0]) > 100
`;

const FAST_REGO = `package envoy.authz
import rego.v1
default allow := false
allow if input.attributes.request.http.method == "GET"
`;

/** The fixture policy with entrypoint 2 (`authz/undefined`) turned into a loop that never ends. */
const SPIN_WAT = POLICY_WAT.replace(
  '(local $out i32) (local $p i32)\n',
  '(local $out i32) (local $p i32)\n    local.get $ep\n    i32.const 2\n    i32.eq\n    if\n      loop $spin\n        br $spin\n      end\n    end\n',
);

const TO_WEB = { destination: 'spiffe://cluster.local/ns/shop/sa/web' };

function regoPolicy(name: string, app: string, budgetMs = BUDGET_MS): string {
  return yamlDoc('RegoPolicy', name, 'shop', `selector: { matchLabels: { app: ${app} } }\nmodules: [rego/${name}.rego]\nevaluationBudget: ${budgetMs}ms`);
}

/** A budget long enough that, spent on the event loop, it would stand out of a loaded box's noise (~120 ms pauses seen). */
const HEAVY_BUDGET_MS = 400;
const TO_REPORTS = { destination: 'spiffe://cluster.local/ns/shop/sa/reports' };

async function timed<T>(p: Promise<T>): Promise<{ result?: T; error?: unknown; ms: number }> {
  const t0 = performance.now();
  try {
    const result = await p;
    return { result, ms: performance.now() - t0 };
  } catch (error) {
    return { error, ms: performance.now() - t0 };
  }
}

describe('a slow RegoPolicy', () => {
  let h: Harness;
  const pool = new EvaluationPool({ size: 2 });
  beforeAll(async () => {
    h = await startAuthz({
      'services.yaml': SERVICES,
      'rego/slow.rego': SLOW_REGO,
      'rego/fast.rego': FAST_REGO,
      'rego/heavy.rego': SLOW_REGO,
      'reports.yaml': yamlDoc('Service', 'reports', 'shop', 'serviceAccount: reports\nlabels: { app: reports }\nports:\n  - { name: http, port: 8080 }'),
      'slow.yaml': regoPolicy('slow', 'orders'),
      'heavy.yaml': regoPolicy('heavy', 'reports', HEAVY_BUDGET_MS),
      'fast.yaml': regoPolicy('fast', 'web'),
    }, { configure: (authz: AuthzCapability) => authz.engines.register(createRegoPolicyEngine({ pool })) });
    await pool.ready();
  }, 60_000);
  afterAll(async () => {
    await h.close();
    await pool.close();
  });

  it('is stopped at its budget: the check fails (Envoy failure mode decides) with POLICY_BUDGET_EXCEEDED, and is audited', async () => {
    const { error, ms } = await timed(h.check(checkRequest()));
    expect(error).toMatchObject({ code: status.INTERNAL, details: expect.stringMatching(/shop\/slow: evaluation exceeded its budget of 50 ms/) });
    expect(ms).toBeLessThan(BUDGET_MS + MARGIN_MS);
    const record = h.records.at(-1)!;
    expect(record).toMatchObject({ decision: 'error', status: 403 });
    expect(record.reason).toMatch(/exceeded its budget of 50 ms/);
  });

  it('leaves a fast policy deciding inline: allow and deny', async () => {
    expect((await h.check(checkRequest({ ...TO_WEB, method: 'GET' }))).status.code).toBe(status.OK);
    expect((await h.check(checkRequest({ ...TO_WEB, method: 'POST' }))).status.code).toBe(status.PERMISSION_DENIED);
    expect(h.records.at(-1)).toMatchObject({ decision: 'deny', matchedPolicies: [expect.objectContaining({ kind: 'RegoPolicy', name: 'fast', effect: 'deny' })] });
  });

  it('does not block the event loop while it runs (each evaluation costs the loop a 1 ms slice, not its budget)', async () => {
    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    const heavy = Array.from({ length: 4 }, () => h.check(checkRequest(TO_REPORTS)).catch((err: unknown) => err));
    const fast: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      fast.push(h.check(checkRequest({ ...TO_WEB, method: 'GET' })));
      await new Promise((r) => setTimeout(r, 10));
    }
    const results = await Promise.all(heavy);
    await Promise.all(fast);
    delay.disable();
    for (const r of results) expect(r).toMatchObject({ code: status.INTERNAL, details: expect.stringMatching(/shop\/heavy: evaluation exceeded its budget of 400 ms/) });
    // Unbudgeted, each evaluation would hold the loop for seconds; budgeted but on the event loop,
    // for its 400 ms budget. Here each holds it ~1 ms: what remains is the box's own noise (other
    // test files and jobs share 2 cores), hence the generous bound.
    expect(delay.max / 1e6).toBeLessThan(HEAVY_BUDGET_MS * 0.75);
  });
});

describe('a wasm bundle stuck in a loop', () => {
  let h: Harness;
  const pool = new EvaluationPool({ size: 2 });
  beforeAll(async () => {
    const bundle = await packBundle({ '/policy.wasm': await compileWat(SPIN_WAT), '/data.json': '{}' });
    h = await startAuthz({ 'services.yaml': SERVICES }, { configure: (authz: AuthzCapability) => authz.engines.register(createRegoPolicyEngine({ pool })) });
    writeFileSync(path.join(h.configDir, 'bundle.tar.gz'), bundle);
    h.writeConfig({
      'spin.yaml': yamlDoc('RegoPolicy', 'spin', 'shop', `selector: { matchLabels: { app: orders } }\nwasmBundle: bundle.tar.gz\nentrypoint: authz/undefined\nevaluationBudget: ${BUDGET_MS}ms`),
      'admins.yaml': yamlDoc('RegoPolicy', 'admins', 'shop', 'selector: { matchLabels: { app: web } }\nwasmBundle: bundle.tar.gz\nentrypoint: authz/allow'),
    });
    expect((await h.mw.config.reload()).changed).toBe(true);
    await h.authz.recompile();
    await pool.ready();
  }, 60_000);
  afterAll(async () => {
    await h.close();
    await pool.close();
  });

  it('is cut by terminating its worker, answered as a budget error and audited; other wasm policies keep deciding', async () => {
    const { error, ms } = await timed(h.check(checkRequest()));
    expect(error).toMatchObject({ code: status.INTERNAL, details: expect.stringMatching(/shop\/spin: evaluation exceeded its budget of 50 ms \(its worker was terminated\)/) });
    expect(ms).toBeLessThan(BUDGET_MS + MARGIN_MS);
    expect(pool.terminated).toBe(1);
    expect(h.records.at(-1)).toMatchObject({ decision: 'error' });
    expect(h.records.at(-1)!.reason).toMatch(/exceeded its budget of 50 ms/);
    await pool.ready();
    expect((await h.check(checkRequest({ ...TO_WEB, headers: { role: 'admin' } }))).status.code).toBe(status.OK);
    expect((await h.check(checkRequest({ ...TO_WEB, headers: { role: 'viewer' } }))).status.code).toBe(status.PERMISSION_DENIED);
  });
});
