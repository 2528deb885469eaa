/**
 * No answered decision without a record: a burst of ext_authz checks larger than `maxQueue`
 * through the real gRPC server, while the audit store (real SQLite in its writer thread) is held
 * back, under each `audit.onOverload` mode and on both Check transports.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { credentials, type ServiceError, status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { type AuditCapability, type AuditStore, createAuditCapability, openAuditStore } from '../../src/audit/index.ts';
import { createAuthzCapability } from '../../src/authz/index.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry, type Registry } from '../../src/lib/metrics.ts';
import { envoyService } from '../../src/lib/protos.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { type CheckResponse, checkRequest, ORDERS_FROM_WEB, SERVICES } from '../authz/helpers.ts';

const MAX_QUEUE = 1000; // the smallest the Mesh schema accepts

/** The real store, whose batch writes wait while the gate is held (a stalled disk or a locked database). */
function gated(inner: AuditStore) {
  let gate: Promise<void> | undefined;
  let open = () => {};
  const waitGate = async () => { while (gate) await gate; };
  const overrides: Partial<AuditStore> = {
    append: async (records) => { await waitGate(); return inner.append(records); },
    ...(inner.openBatch ? {
      openBatch: () => {
        const batch = inner.openBatch!();
        return {
          get size() { return batch.size; },
          add: (r) => batch.add(r),
          ...(batch.addWithInputBytes ? { addWithInputBytes: (r, i, m) => batch.addWithInputBytes!(r, i, m) } : {}),
          write: async () => { await waitGate(); return batch.write(); },
        };
      },
    } : {}),
  };
  const store = new Proxy(inner, {
    get(target, prop) {
      if (prop in overrides) return overrides[prop as keyof AuditStore];
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return {
    store,
    hold() { gate = new Promise((r) => { open = r; }); },
    release() { gate = undefined; open(); },
  };
}

interface Served {
  mw: Meshward;
  audit: AuditCapability;
  registry: Registry;
  gate: ReturnType<typeof gated>;
  dataDir: string;
  check(): Promise<CheckResponse>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Where checks arrive: the gRPC port's HTTP/2 fast path, grpc-js alone, or the unary port. */
type Transport = 'HTTP/2 fast path' | 'grpc-js' | 'unary port';

async function serve(onOverload: string, transport: Transport = 'HTTP/2 fast path'): Promise<Served> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-overload-'));
  const configDir = path.join(root, 'config');
  fs.mkdirSync(configDir);
  fs.writeFileSync(path.join(configDir, 'mesh.yaml'), `apiVersion: meshward.io/v1\nkind: Mesh\nmetadata: { name: mesh }\nspec:\n  audit: { maxQueue: ${MAX_QUEUE}, onOverload: ${onOverload} }\n`);
  fs.writeFileSync(path.join(configDir, 'services.yaml'), SERVICES);
  fs.writeFileSync(path.join(configDir, 'authz.yaml'), ORDERS_FROM_WEB);
  let gate: ReturnType<typeof gated> | undefined;
  const registry = createRegistry();
  const mw = await createMeshward(
    {
      configDir, dataDir: path.join(root, 'data'), grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false,
      grpcFastPath: transport !== 'grpc-js', ...(transport === 'unary port' ? { unaryGrpcAddress: '127.0.0.1:0' } : {}),
    },
    {
      logger: silentLogger(), registry,
      capabilities: [(ctx) => createAuditCapability(ctx, { wrapStore: (s) => (gate = gated(s)).store }), createAuthzCapability],
    },
  );
  await mw.start();
  const Client = envoyService('envoy.service.auth.v3.Authorization');
  const client = new Client(transport === 'unary port' ? mw.addresses.unary! : mw.addresses.grpc, credentials.createInsecure());
  cleanups.push(async () => {
    gate?.release();
    client.close();
    await mw.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });
  const check = () => new Promise<CheckResponse>((resolve, reject) => {
    (client as unknown as { Check(r: object, cb: (err: ServiceError | null, res: CheckResponse) => void): void }).Check(checkRequest(), (err, res) => (err ? reject(err) : resolve(res)));
  });
  return { mw, audit: mw.capability<AuditCapability>('audit')!, registry, gate: gate!, dataDir: path.join(root, 'data'), check };
}

interface Tally {
  allowed: Set<string>;
  errors: ServiceError[];
  done: Promise<void>;
}

/** Sends `n` checks at once; tallies decision ids answered OK and the errors. */
function burst(s: Served, n: number): Tally {
  const tally: Tally = { allowed: new Set(), errors: [], done: Promise.resolve() };
  tally.done = Promise.all(Array.from({ length: n }, () => s.check().then(
    (res) => {
      expect(res.status.code).toBe(status.OK);
      tally.allowed.add(res.dynamic_metadata!.fields.decision_id!.stringValue!);
    },
    (err: ServiceError) => { tally.errors.push(err); },
  ))).then(() => {});
  return tally;
}

async function storedIds(audit: AuditCapability): Promise<Set<string>> {
  await audit.flush();
  const rows = await audit.store.scan(0, 100_000);
  return new Set(rows.map((r) => r.decisionId));
}

async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await registry.getSingleMetric(name)!.get();
  return m.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value ?? 0;
}

describe('ext_authz under audit overload', () => {
  for (const transport of ['HTTP/2 fast path', 'grpc-js', 'unary port'] as const) {
    it(`keeps a record of every answered check while the store is blocked, holding checks and pausing reading (backpressure, ${transport})`, async () => {
      const s = await serve('backpressure', transport);
      s.gate.hold();
      const n = 2500;
      const tally = burst(s, n);
      await expect.poll(() => s.audit.stats().paused, { timeout: 10_000 }).toBe(true);
      await new Promise((r) => setTimeout(r, 300));
      const blocked = s.audit.stats();
      // Answered ⇒ queued: nothing is written while the store is blocked, so every answer so far has its record in the queue.
      expect(blocked.written).toBe(0);
      expect(tally.allowed.size).toBeLessThanOrEqual(blocked.queued);
      expect(blocked.queued).toBe(MAX_QUEUE);
      // Reading paused: the pipeline did not run for the rest of the burst (they wait unread, not as records in memory).
      const decided = await metric(s.registry, 'meshward_authz_checks_total', { decision: 'allow' });
      expect(blocked.waiting).toBeLessThan(n - MAX_QUEUE);
      expect(decided).toBeLessThan(n);
      expect(blocked.waiting).toBeLessThanOrEqual(MAX_QUEUE / 2);
      s.gate.release();
      await tally.done;
      expect(tally.errors).toEqual([]);
      expect(tally.allowed.size).toBe(n);
      const stored = await storedIds(s.audit);
      expect([...tally.allowed].filter((id) => !stored.has(id))).toEqual([]);
      expect(await metric(s.registry, 'meshward_audit_records_total', { result: 'rejected' })).toBe(0);
      expect(s.audit.stats()).toMatchObject({ rejected: 0, dropped: 0, waiting: 0, paused: false });
    });
  }

  for (const transport of ['HTTP/2 fast path', 'unary port'] as const) it(`writes the record of every check answered, including those still waiting, when stopped gracefully under backpressure (${transport})`, async () => {
    const s = await serve('backpressure', transport);
    s.gate.hold();
    const n = 1500;
    const tally = burst(s, n);
    await expect.poll(() => s.audit.stats().paused, { timeout: 10_000 }).toBe(true);
    const stopped = s.mw.stop();
    await new Promise((r) => setTimeout(r, 100));
    s.gate.release();
    await stopped;
    await tally.done;
    const store = await openAuditStore({ dataDir: s.dataDir, readonly: true });
    try {
      const stored = new Set((await store.scan(0, 100_000)).map((r) => r.decisionId));
      expect(tally.allowed.size).toBeGreaterThan(MAX_QUEUE);
      expect([...tally.allowed].filter((id) => !stored.has(id))).toEqual([]);
      expect(tally.allowed.size + tally.errors.length).toBe(n);
    } finally {
      await store.close();
    }
  });

  it('answers UNAVAILABLE (AUDIT_OVERLOADED), never allow, to checks whose record does not fit (fail)', async () => {
    const s = await serve('fail');
    s.gate.hold();
    const n = 1500;
    const tally = burst(s, n);
    await expect.poll(() => tally.allowed.size + tally.errors.length, { timeout: 10_000 }).toBe(n);
    expect(tally.allowed.size).toBe(MAX_QUEUE);
    expect(tally.errors).toHaveLength(n - MAX_QUEUE);
    for (const err of tally.errors) {
      expect(err.code).toBe(status.UNAVAILABLE);
      expect(err.metadata.get('meshward-error-code')).toEqual(['AUDIT_OVERLOADED']);
    }
    s.gate.release();
    const stored = await storedIds(s.audit);
    expect([...tally.allowed].filter((id) => !stored.has(id))).toEqual([]);
    expect(await metric(s.registry, 'meshward_audit_records_total', { result: 'refused' })).toBe(n - MAX_QUEUE);
  });

  it('answers every check and counts those left without a record (drop)', async () => {
    const s = await serve('drop');
    s.gate.hold();
    const n = 1500;
    const tally = burst(s, n);
    await tally.done;
    expect(tally.allowed.size).toBe(n);
    expect(await metric(s.registry, 'meshward_audit_records_total', { result: 'dropped' })).toBe(n - MAX_QUEUE);
    s.gate.release();
    expect((await storedIds(s.audit)).size).toBe(MAX_QUEUE);
    expect(s.audit.stats()).toMatchObject({ dropped: n - MAX_QUEUE, rejected: 0 });
  });
});
