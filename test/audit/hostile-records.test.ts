/**
 * One request or one stored row must not break the auditor: deep and huge request bodies are
 * answered and recorded (capped, with a marker), and every reader (API list, by id, NDJSON
 * export, `audit export`, `audit query --json`) answers whatever the database holds.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { credentials, type ServiceError, status } from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuditCapability, createAuditCapability, sqliteFile } from '../../src/audit/index.ts';
import { MAX_INPUT_DEPTH, MAX_RECORD_CHARS } from '../../src/audit/record-cap.ts';
import { createAuthzCapability } from '../../src/authz/index.ts';
import { runCli } from '../../src/cli/index.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { envoyService } from '../../src/lib/protos.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { regoPolicyEngine } from '../../src/policy/index.ts';
import { compileRego } from '../../src/policy/rego/index.ts';
import { fromJSON, toJSON } from '../../src/policy/rego/value.ts';
import type { CapabilityContext } from '../../src/server/capability.ts';
import { type CheckResponse, checkRequest, SERVICES, yamlDoc } from '../authz/helpers.ts';

// `conflict` makes the evaluation fail (two values for one complete rule): an INTERNAL answer.
const POLICY = 'package envoy.authz\nimport rego.v1\ndefault allow := false\nallow if input.parsed_body.ok == true\nallow := "other" if input.parsed_body.conflict\n';

/** A JSON body `levels` objects deep with `ok` at the top. */
const deepBody = (levels: number, ok: boolean) => `{"ok":${ok},"d":${'{"a":'.repeat(levels - 1)}1${'}'.repeat(levels - 1)}}`;

describe('deep and huge bodies, and hostile rows, against every audit reader', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-audit-hostile-'));
  const configDir = path.join(root, 'config');
  let mw: Meshward;
  let client: { Check(r: object, cb: (err: ServiceError | null, res: CheckResponse) => void): void; close(): void };
  let get: (url: string) => Promise<LightMyRequestResponse>;

  beforeAll(async () => {
    fs.mkdirSync(path.join(configDir, 'rego'), { recursive: true });
    fs.writeFileSync(path.join(configDir, 'services.yaml'), SERVICES);
    fs.writeFileSync(path.join(configDir, 'rego', 'p.rego'), POLICY);
    fs.writeFileSync(path.join(configDir, 'rego.yaml'), yamlDoc('RegoPolicy', 'p', 'shop', 'selector: { matchLabels: { app: orders } }\nmodules: [rego/p.rego]'));
    const authz = (ctx: CapabilityContext) => {
      const capability = createAuthzCapability(ctx);
      capability.engines.register(regoPolicyEngine({ compileRego, fromJSON, toJSON }));
      return capability;
    };
    mw = await createMeshward(
      { configDir, dataDir: path.join(root, 'data'), grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false },
      { logger: silentLogger(), registry: createRegistry(), clock: new FakeClock(Date.UTC(2026, 0, 1)), capabilities: [createAuditCapability, authz] },
    );
    await mw.start();
    const Client = envoyService('envoy.service.auth.v3.Authorization');
    client = new Client(mw.addresses.grpc, credentials.createInsecure()) as unknown as typeof client;
    const token = mw.apiAuth.createToken('alice', 'auditor');
    get = (url) => mw.http.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
  });
  afterAll(async () => {
    client?.close();
    await mw?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  /** Resolves the gRPC status code and, when answered, the decision id. */
  const check = (body: string) => new Promise<{ code: number; decisionId?: string }>((resolve) => {
    client.Check(checkRequest({ method: 'POST', headers: { 'content-type': 'application/json' }, body }), (err, res) => {
      resolve(err ? { code: err.code! } : { code: res.status.code, decisionId: res.dynamic_metadata?.fields.decision_id?.stringValue });
    });
  });
  const record = async (decisionId: string) => {
    await mw.capability<AuditCapability>('audit')!.flush();
    const res = await get(`/v1/decisions/${decisionId}`);
    expect(res.statusCode).toBe(200);
    return res.json();
  };

  it.each([5_000, 100_000])('answers a body nested %i levels as a bad request (not INTERNAL) and records it', async (levels) => {
    const answer = await check(deepBody(levels, true));
    expect(answer.code).toBe(status.INVALID_ARGUMENT);
    const stored = await record(answer.decisionId!);
    expect(stored).toMatchObject({ decision: 'bad_request', status: 400, reason: expect.stringContaining('nested deeper than 512 levels') });
  });

  it.each([[true, status.OK, 'allow'], [false, status.PERMISSION_DENIED, 'deny']] as const)(
    'decides a body nested 300 levels by policy (ok: %s) and records it cut at the depth cap with a marker',
    async (ok, code, decision) => {
      const answer = await check(deepBody(300, ok));
      expect(answer.code).toBe(code);
      const stored = await record(answer.decisionId!);
      expect(stored.decision).toBe(decision);
      expect(stored.input.parsed_body.ok).toBe(ok);
      expect(JSON.stringify(stored.input.parsed_body)).toContain(`{"$truncated":{"reason":"depth","limit":${MAX_INPUT_DEPTH}}}`);
    },
  );

  it('decides a 1 MiB body by policy and records it cut to the size cap, saying how long it was', async () => {
    const blob = 'z'.repeat(1024 * 1024);
    const answer = await check(`{"ok":true,"blob":"${blob}"}`);
    expect(answer.code).toBe(status.OK);
    const stored = await record(answer.decisionId!);
    expect(stored.decision).toBe('allow');
    expect(JSON.stringify(stored).length).toBeLessThan(MAX_RECORD_CHARS + 2000);
    expect(stored.input.parsed_body).toEqual({ ok: true, blob: { $truncated: { reason: 'size', chars: blob.length, prefix: 'z'.repeat(256) } } });
  });

  it('records a failed check (INTERNAL) too, with its 1 MiB body cut to the size cap', async () => {
    const answer = await check(`{"ok":true,"conflict":true,"blob":"${'q'.repeat(1024 * 1024)}"}`);
    expect(answer.code).toBe(status.INTERNAL);
    await mw.capability<AuditCapability>('audit')!.flush();
    const errors = (await get('/v1/decisions?decision=error')).json().records;
    expect(errors).toHaveLength(1);
    expect(errors[0].input.parsed_body).toMatchObject({ ok: true, conflict: true, blob: { $truncated: { reason: 'size', chars: 1024 * 1024 } } });
  });

  it('answers every reader whatever rows the database holds (older versions, hand edits)', async () => {
    await mw.capability<AuditCapability>('audit')!.flush();
    const hostile: Record<string, string> = {
      'not-json': '{"decisionId":',
      'deep-input': `{"decisionId":"deep-input","time":1,"decision":"deny","reason":"r","status":403,"matchedPolicies":[],"configVersion":"v","latencyUs":1,"input":${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
      'wrong-types': '{"decisionId":7,"time":"soon","decision":"perhaps","status":"x","matchedPolicies":{},"latencyUs":null,"input":{"__proto__":{"x":1}}}',
      array: '[]',
    };
    const db = new Database(sqliteFile(path.join(root, 'data')));
    const head = db.prepare('SELECT max(seq) AS seq FROM audit_records').get() as { seq: number };
    const insert = db.prepare(`INSERT INTO audit_records (seq, decision_id, time, decision, status, config_version, policies, body, prev_hash, hash)
      VALUES (?, ?, ?, 'deny', 403, 'v', '', ?, 'p', 'h')`);
    Object.entries(hostile).forEach(([id, body], i) => insert.run(head.seq + 1 + i, id, Date.UTC(2026, 0, 1) + i, body));
    db.close();
    const total = head.seq + Object.keys(hostile).length;

    const list = await get('/v1/decisions?limit=1000');
    expect(list.statusCode).toBe(200);
    expect(list.json().records).toHaveLength(total);
    for (const id of Object.keys(hostile)) {
      const one = await get(`/v1/decisions/${id}`);
      expect(one.statusCode).toBe(200);
      expect(one.json()).toMatchObject({ decisionId: id, decision: 'deny', status: 403 });
    }
    expect((await get('/v1/decisions/deep-input')).json().unreadable).toBeUndefined();
    expect((await get('/v1/decisions/not-json')).json().unreadable).toMatch(/^body is not JSON/);
    const exported = await get('/v1/decisions/export');
    expect(exported.statusCode).toBe(200);
    expect(exported.body.trim().split('\n').map((l) => JSON.parse(l))).toHaveLength(total);
    const verify = await get('/v1/decisions/verify');
    expect(verify.statusCode).toBe(200);
    expect(verify.json().ok).toBe(false);

    const out: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: () => {}, env: {}, cwd: root };
    expect(await runCli(['audit', 'export', '--data', 'data'], io)).toBe(0);
    expect(out.join('').trim().split('\n')).toHaveLength(total);
    out.length = 0;
    expect(await runCli(['audit', 'query', '--data', 'data', '--json', '--limit', '1000'], io)).toBe(0);
    expect(JSON.parse(out.join('')).records).toHaveLength(total);
    out.length = 0;
    expect(await runCli(['audit', 'query', '--data', 'data', '--limit', '1000'], io)).toBe(0);
    expect(out).toHaveLength(total);
  });
});
