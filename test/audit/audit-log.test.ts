import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AuditLog, type AuditLogSettings, type AuditStore, type DecisionRecordV1 } from '../../src/audit/index.ts';
import { AuditStoreUnavailableError } from '../../src/audit/errors.ts';
import { SqliteAuditStore } from '../../src/audit/sqlite.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { createLogger } from '../../src/lib/logger.ts';
import { createRegistry, type Registry } from '../../src/lib/metrics.ts';
import { decision, resetDecisions } from './fixtures.ts';

/** A store whose appends can be held back or made to fail. */
function controllable(inner: AuditStore) {
  let failuresLeft = 0;
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;
  const store: AuditStore = Object.assign(Object.create(inner) as AuditStore, {
    async append(records: Parameters<AuditStore['append']>[0]) {
      if (gate) await gate;
      if (failuresLeft > 0) {
        failuresLeft--;
        throw new AuditStoreUnavailableError('disk I/O error');
      }
      return inner.append(records);
    },
    close: () => inner.close(),
  });
  return {
    store,
    failNext(n: number) { failuresLeft = n; },
    hold() { gate = new Promise((r) => { open = r; }); },
    release() { gate = undefined; open?.(); },
  };
}

async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await registry.getSingleMetric(name)!.get();
  return m.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value ?? 0;
}

describe('audit log (batched writer)', () => {
  let dir: string;
  let sqlite: SqliteAuditStore;
  let clock: FakeClock;
  let registry: Registry;
  let logLines: string[];
  let settings: AuditLogSettings;

  beforeEach(() => {
    resetDecisions();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-audit-'));
    sqlite = new SqliteAuditStore({ file: path.join(dir, 'audit.db') });
    clock = new FakeClock();
    registry = createRegistry();
    logLines = [];
    settings = { maskPaths: [], recordAllows: true };
  });
  afterEach(async () => {
    await sqlite.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function makeLog(store: AuditStore = sqlite, extra: { maxQueue?: number; batchSize?: number } = {}): AuditLog {
    const destination = new Writable({ write(chunk, _enc, cb) { logLines.push(String(chunk)); cb(); } });
    return new AuditLog({ store, clock, registry, logger: createLogger({ level: 'info', destination }), settings: () => settings, flushIntervalMs: 10, ...extra });
  }

  it('writes queued records in one batch when the flush interval elapses, not before', async () => {
    const log = makeLog();
    expect(log.append(decision())).toBe(true);
    expect(log.append(decision())).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(await sqlite.scan(0, 10)).toHaveLength(0);
    clock.advance(10);
    await vi.waitFor(() => expect(log.stats().written).toBe(2));
    expect((await sqlite.scan(0, 10)).map((r) => r.seq)).toEqual([1, 2]);
    expect(log.stats()).toMatchObject({ queued: 0, lastSeq: 2 });
    expect(await metric(registry, 'meshward_audit_records_written_total')).toBe(2);
  });

  it('writes at once when a batch fills, without waiting for the timer', async () => {
    const log = makeLog(sqlite, { batchSize: 3 });
    for (let i = 0; i < 3; i++) log.append(decision());
    await vi.waitFor(() => expect(log.stats().written).toBe(3));
  });

  it('masks credentials and configured paths before they reach the store', async () => {
    settings = { maskPaths: ['/attributes/request/http/headers/x-api-key'], recordAllows: true };
    const log = makeLog();
    const d = decision();
    (d.input as { attributes: { request: { http: { headers: Record<string, string> } } } }).attributes.request.http.headers['x-api-key'] = 'key-123';
    log.append(d);
    await log.flush();
    const [row] = await sqlite.scan(0, 1);
    expect(row!.body).not.toContain('secret-token');
    expect(row!.body).not.toContain('key-123');
    expect(JSON.parse(row!.body).masked).toEqual(['/input/attributes/request/http/headers/authorization', '/input/attributes/request/http/headers/x-api-key']);
  });

  it('skips allowed decisions when recordAllows is off but keeps denials and allows a dry-run or AUDIT policy matched', async () => {
    settings = { maskPaths: [], recordAllows: false };
    const log = makeLog();
    expect(log.append(decision({ decision: 'allow', status: 200 }))).toBe(true);
    log.append(decision({ decision: 'deny' }));
    log.append(decision({ decision: 'allow', status: 200, requestId: 'audited', matchedPolicies: [{ kind: 'AuthorizationPolicy', namespace: 'shop', name: 'audit-writes', action: 'AUDIT', effect: 'audit' }] }));
    log.append(decision({ decision: 'allow', status: 200, requestId: 'dry-run', matchedPolicies: [{ kind: 'AuthorizationPolicy', namespace: 'shop', name: 'new-deny', action: 'DENY', dryRun: true, effect: 'deny' }] }));
    await log.flush();
    expect((await sqlite.scan(0, 10)).map((r) => `${r.decision}:${JSON.parse(r.body).requestId}`)).toEqual(['deny:req-1', 'allow:audited', 'allow:dry-run']);
    expect(await metric(registry, 'meshward_audit_records_total', { result: 'skipped' })).toBe(1);
  });

  it('keeps a record that finds the queue full waiting until there is room, in append order, and pauses reading meanwhile (backpressure)', async () => {
    const c = controllable(sqlite);
    c.hold();
    const log = makeLog(c.store, { maxQueue: 3, batchSize: 2 });
    expect(log.readable()).toBeUndefined();
    const records = Array.from({ length: 5 }, () => decision());
    const results = records.map((r) => log.append(r));
    expect(results.slice(0, 3)).toEqual([true, true, true]);
    expect(results[3]).toBeInstanceOf(Promise);
    expect(results[4]).toBeInstanceOf(Promise);
    let queuedLate = 0;
    for (const r of results.slice(3)) void (r as Promise<void>).then(() => queuedLate++);
    const reader = log.readable();
    expect(reader).toBeInstanceOf(Promise);
    let readerReleased = false;
    void reader!.then(() => { readerReleased = true; });
    clock.advance(10);
    await new Promise((r) => setTimeout(r, 20));
    expect(queuedLate).toBe(0);
    expect(readerReleased).toBe(false);
    expect(log.stats()).toMatchObject({ queued: 3, waiting: 2, paused: true, rejected: 0, dropped: 0 });
    expect(await metric(registry, 'meshward_audit_reading_paused')).toBe(1);
    expect(await metric(registry, 'meshward_audit_backpressure_waits_total')).toBe(2);
    expect(logLines.filter((l) => l.includes('onOverload: backpressure'))).toHaveLength(1);
    // flush covers the waiting records too.
    const flushed = log.flush();
    c.release();
    await flushed;
    expect(log.stats().written).toBe(5);
    await Promise.all(results);
    await vi.waitFor(() => expect(readerReleased).toBe(true));
    expect(log.stats()).toMatchObject({ queued: 0, written: 5, waiting: 0, paused: false, rejected: 0 });
    expect((await sqlite.scan(0, 10)).map((r) => r.decisionId)).toEqual(records.map((r) => r.decisionId));
    expect(await metric(registry, 'meshward_audit_records_total', { result: 'rejected' })).toBe(0);
    expect(log.readable()).toBeUndefined();
    expect(log.append(decision())).toBe(true);
  });

  it('holds records while a failing store has filled the queue and writes every one once it recovers (backpressure)', async () => {
    const c = controllable(sqlite);
    c.failNext(3);
    const log = makeLog(c.store, { maxQueue: 2, batchSize: 2 });
    const records = Array.from({ length: 4 }, () => decision());
    const results = records.map((r) => log.append(r));
    expect(results.slice(2).every((r) => r instanceof Promise)).toBe(true);
    let answered = 0;
    for (const r of results.slice(2)) void (r as Promise<void>).then(() => answered++);
    await vi.waitFor(() => expect(log.stats().writeFailures).toBe(1));
    for (const ms of [100, 200]) {
      clock.advance(ms);
      await vi.waitFor(() => expect(log.stats().writeFailures).toBeGreaterThanOrEqual(ms === 100 ? 2 : 3));
    }
    expect(answered).toBe(0);
    expect(log.stats()).toMatchObject({ queued: 2, waiting: 2, written: 0, rejected: 0 });
    clock.advance(400);
    await Promise.all(results);
    await log.flush();
    expect((await sqlite.scan(0, 10)).map((r) => r.decisionId)).toEqual(records.map((r) => r.decisionId));
  });

  it('refuses a record that finds the queue full with AUDIT_OVERLOADED when onOverload is fail, counting it', async () => {
    settings = { maskPaths: [], recordAllows: true, onOverload: 'fail' };
    const c = controllable(sqlite);
    c.hold();
    const log = makeLog(c.store, { maxQueue: 2 });
    expect([log.append(decision()), log.append(decision())]).toEqual([true, true]);
    expect(() => log.append(decision())).toThrow(expect.objectContaining({ code: 'AUDIT_OVERLOADED' }));
    expect(log.readable()).toBeUndefined();
    expect(log.stats()).toMatchObject({ queued: 2, refused: 1, waiting: 0, rejected: 0 });
    expect(await metric(registry, 'meshward_audit_records_total', { result: 'refused' })).toBe(1);
    expect(logLines.filter((l) => l.includes('onOverload: fail'))).toHaveLength(1);
    c.release();
    await log.flush();
    expect(log.append(decision())).toBe(true);
  });

  it('answers false for a record that finds the queue full when onOverload is drop, counting and logging the drops', async () => {
    settings = { maskPaths: [], recordAllows: true, onOverload: 'drop' };
    const c = controllable(sqlite);
    c.hold();
    const log = makeLog(c.store, { maxQueue: 3, batchSize: 2 });
    expect([log.append(decision()), log.append(decision()), log.append(decision())]).toEqual([true, true, true]);
    expect(log.append(decision())).toBe(false);
    expect(log.append(decision())).toBe(false);
    expect(log.stats()).toMatchObject({ queued: 3, dropped: 2, rejected: 0 });
    expect(await metric(registry, 'meshward_audit_records_total', { result: 'dropped' })).toBe(2);
    expect(logLines.filter((l) => l.includes('WITHOUT a record'))).toHaveLength(1);
    c.release();
    await log.flush();
    expect(log.stats()).toMatchObject({ queued: 0, written: 3 });
    expect(log.append(decision())).toBe(true);
  });

  it('close writes the records still waiting for room too, and releases parked readers', async () => {
    const c = controllable(sqlite);
    c.hold();
    const log = makeLog(c.store, { maxQueue: 2, batchSize: 2 });
    const results = Array.from({ length: 5 }, () => log.append(decision()));
    const reader = log.readable();
    const closed = log.close();
    c.release();
    await closed;
    await Promise.all(results);
    await reader;
    expect(log.stats()).toMatchObject({ written: 5, waiting: 0, rejected: 0 });
  });

  it('refuses a record it cannot serialize, counting and logging it, and writes the rest of its batch', async () => {
    const log = makeLog(sqlite);
    const poisoned = decision({ input: { attributes: { size: 10n } } as unknown as DecisionRecordV1['input'] });
    log.append(decision());
    log.append(poisoned);
    log.append(decision());
    await log.flush();
    expect(log.stats()).toMatchObject({ queued: 0, written: 2, rejected: 1 });
    expect(await metric(registry, 'meshward_audit_records_total', { result: 'rejected' })).toBe(1);
    expect(logLines.some((l) => l.includes('cannot serialize') && l.includes(poisoned.decisionId))).toBe(true);
    expect((await sqlite.scan(0, 10)).map((r) => r.decisionId)).not.toContain(poisoned.decisionId);
  });

  it('keeps records queued while the store fails and writes them once it recovers', async () => {
    const c = controllable(sqlite);
    c.failNext(2);
    const log = makeLog(c.store);
    log.append(decision());
    log.append(decision());
    clock.advance(10);
    await vi.waitFor(() => expect(log.stats().writeFailures).toBe(1));
    expect(await metric(registry, 'meshward_audit_store_up')).toBe(0);
    expect(log.stats().queued).toBe(2);
    clock.advance(100);
    await vi.waitFor(() => expect(log.stats().writeFailures).toBe(2));
    clock.advance(200);
    await vi.waitFor(() => expect(log.stats().written).toBe(2));
    expect(await metric(registry, 'meshward_audit_store_up')).toBe(1);
    expect(await metric(registry, 'meshward_audit_write_failures_total', { code: 'AUDIT_STORE_UNAVAILABLE' })).toBe(2);
    expect(logLines.some((l) => l.includes('audit batch write failed'))).toBe(true);
    expect((await sqlite.scan(0, 10)).map((r) => r.seq)).toEqual([1, 2]);
  });

  it('flush rejects with AUDIT_STORE_UNAVAILABLE while the store fails', async () => {
    const c = controllable(sqlite);
    c.failNext(1);
    const log = makeLog(c.store);
    log.append(decision());
    await expect(log.flush()).rejects.toMatchObject({ code: 'AUDIT_STORE_UNAVAILABLE' });
    await log.flush();
    expect(log.stats().written).toBe(1);
  });

  it('keeps two batches in flight for a pipelining store and, after a failure, rewrites in append order', async () => {
    let calls = 0;
    const pipelined: AuditStore = Object.assign(Object.create(sqlite) as AuditStore, {
      maxInFlight: 2,
      async append(records: Parameters<AuditStore['append']>[0]) {
        const call = ++calls;
        await new Promise((r) => setImmediate(r));
        // The first batch fails; the one sent behind it is refused too (as the writer thread does).
        if (call <= 2) throw new AuditStoreUnavailableError('disk I/O error');
        return sqlite.append(records);
      },
      close: () => sqlite.close(),
    });
    const log = makeLog(pipelined, { batchSize: 2 });
    const records = Array.from({ length: 6 }, () => decision());
    for (const d of records) log.append(d);
    const ids = records.map((d) => d.decisionId);
    await expect(log.flush()).rejects.toMatchObject({ code: 'AUDIT_STORE_UNAVAILABLE' });
    expect(calls).toBe(2);
    await log.flush();
    expect((await sqlite.scan(0, 10)).map((r) => r.decisionId)).toEqual(ids);
  });

  it('close retries a failing store before giving up, so a brief outage at shutdown loses nothing', async () => {
    const c = controllable(sqlite);
    c.failNext(2);
    const log = makeLog(c.store);
    for (let i = 0; i < 3; i++) log.append(decision());
    await log.close();
    const reopened = new SqliteAuditStore({ file: path.join(dir, 'audit.db') });
    expect((await reopened.head()).seq).toBe(3);
    await reopened.close();
  });

  it('close writes everything queued and refuses later records', async () => {
    const inner = new SqliteAuditStore({ file: path.join(dir, 'close.db') });
    const log = makeLog(inner);
    for (let i = 0; i < 5; i++) log.append(decision());
    await log.close();
    expect(() => log.append(decision())).toThrow(expect.objectContaining({ code: 'AUDIT_OVERLOADED' }));
    settings = { ...settings, onOverload: 'drop' };
    expect(log.append(decision())).toBe(false);
    const reopened = new SqliteAuditStore({ file: path.join(dir, 'close.db') });
    expect((await reopened.head()).seq).toBe(5);
    await reopened.close();
  });
});
