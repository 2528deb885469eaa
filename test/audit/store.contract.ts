/**
 * The contract every AuditStore implementation passes (SQLite and PostgreSQL run the same suite).
 * A harness gives a fresh store plus raw SQL access (`{p}` = table prefix, `?` placeholders) for
 * the tampering tests.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { chainHash, queryDecisions, verifyChain, type AuditStore, type DecisionRecordV1 } from '../../src/audit/index.ts';
import { encodeCursor } from '../../src/audit/query.ts';
import { prepareRecord } from '../../src/audit/row.ts';
import { decision, resetDecisions, T0 } from './fixtures.ts';

export interface StoreHarness {
  store: AuditStore;
  exec(sql: string, params?: unknown[]): Promise<void>;
  rows<T>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Reopens the store on the same data (restart). */
  reopen(): Promise<AuditStore>;
  cleanup(): Promise<void>;
}

async function appendAll(store: AuditStore, records: DecisionRecordV1[]): Promise<void> {
  await store.append(records.map((r) => prepareRecord(r, [])));
}

export function auditStoreContract(makeHarness: () => Promise<StoreHarness>): void {
  let h: StoreHarness;
  beforeEach(async () => {
    resetDecisions();
    h = await makeHarness();
  });
  afterEach(async () => {
    await h.cleanup();
  });

  it('assigns contiguous seqs and chains each record to the previous one', async () => {
    await appendAll(h.store, [decision(), decision()]);
    await appendAll(h.store, [decision()]);
    const rows = await h.store.scan(0, 10);
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(rows[0]!.prevHash).toBe('0'.repeat(64));
    expect(rows[1]!.prevHash).toBe(rows[0]!.hash);
    expect(rows[2]!.hash).toBe(chainHash(rows[1]!.hash, rows[2]!.body));
    expect(await h.store.head()).toEqual({ seq: 3, hash: rows[2]!.hash });
    const report = await verifyChain(h.store);
    expect(report).toMatchObject({ ok: true, checked: 3, firstSeq: 1, lastSeq: 3, headHash: rows[2]!.hash, findings: [] });
  });

  it('stores a record with NUL characters and non-integer numbers, keeping the exact values in the body', async () => {
    const d = decision({ path: '/a\u0000b', sourcePrincipal: 'spiffe://x/\u0000', time: T0 + 0.5, status: Number.NaN });
    await appendAll(h.store, [d, decision()]);
    const row = await h.store.get(d.decisionId);
    expect(row).toMatchObject({ path: '/a\uFFFDb', time: T0, status: 0 });
    expect(JSON.parse(row!.body).path).toBe('/a\u0000b');
    expect((await verifyChain(h.store)).ok).toBe(true);
  });

  it('keeps records and continues the chain across a reopen', async () => {
    await appendAll(h.store, [decision(), decision()]);
    const reopened = await h.reopen();
    await appendAll(reopened, [decision()]);
    expect((await reopened.head()).seq).toBe(3);
    expect((await verifyChain(reopened)).ok).toBe(true);
  });

  it('finds a record by decision id and nothing for an unknown id', async () => {
    const d = decision({ decision: 'allow', status: 200 });
    await appendAll(h.store, [decision(), d]);
    const row = await h.store.get(d.decisionId);
    expect(row?.seq).toBe(2);
    expect(JSON.parse(row!.body)).toEqual(d);
    expect(await h.store.get('no-such-id')).toBeUndefined();
  });

  it('filters by decision, principal, path prefix, policy, config version and time range', async () => {
    const records = [
      decision({ decision: 'allow', status: 200, path: '/api/v1/items' }),
      decision({ decision: 'deny', sourcePrincipal: 'spiffe://cluster.local/ns/a/sa/x', path: '/api%_/x' }),
      decision({ decision: 'unauthenticated', status: 401, requestPrincipal: 'https://issuer/alice', path: '/API/v1' }),
      decision({ decision: 'deny', configVersion: 'v2', matchedPolicies: [{ kind: 'AuthorizationPolicy', namespace: 'billing', name: 'deny-all', action: 'DENY' }] }),
      decision({ decision: 'rate_limited', status: 429, matchedPolicies: [] }),
    ];
    await appendAll(h.store, records);
    const seqs = async (q: Parameters<typeof queryDecisions>[1]) => (await queryDecisions(h.store, q)).records.map((r) => r.seq).sort();
    expect(await seqs({ decisions: ['deny'] })).toEqual([2, 4]);
    expect(await seqs({ decisions: ['allow', 'rate_limited'] })).toEqual([1, 5]);
    expect(await seqs({ principal: 'spiffe://cluster.local/ns/a/sa/x' })).toEqual([2]);
    expect(await seqs({ principal: 'https://issuer/alice' })).toEqual([3]);
    expect(await seqs({ pathPrefix: '/api' })).toEqual([1, 2]);
    expect(await seqs({ pathPrefix: '/api%_' })).toEqual([2]);
    expect(await seqs({ pathPrefix: '/api/v1/items/more' })).toEqual([]);
    expect(await seqs({ policy: 'billing/deny-all' })).toEqual([4]);
    expect(await seqs({ policy: 'deny-all' })).toEqual([4]);
    expect(await seqs({ policy: 'shop/orders-allow-web' })).toEqual([1, 2, 3]);
    expect(await seqs({ policy: 'orders-allow' })).toEqual([]);
    expect(await seqs({ configVersion: 'v2' })).toEqual([4]);
    expect(await seqs({ from: T0 + 1000, to: T0 + 3000 })).toEqual([2, 3]);
    expect(await seqs({ decisions: ['deny'], configVersion: 'v1' })).toEqual([2]);
  });

  it('pages newest first and oldest first with keyset cursors that never skip or repeat', async () => {
    await appendAll(h.store, Array.from({ length: 7 }, () => decision()));
    const walk = async (order: 'asc' | 'desc') => {
      const seen: number[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await queryDecisions(h.store, { order, limit: 3, ...(cursor ? { afterSeq: Number(Buffer.from(cursor, 'base64url').toString().slice(4)) } : {}) });
        seen.push(...page.records.map((r) => r.seq));
        cursor = page.nextCursor;
        pages++;
        // A record appended mid-walk must not shift the pages already served.
        if (pages === 1) await appendAll(h.store, [decision()]);
      } while (cursor);
      return { seen, pages };
    };
    const desc = await walk('desc');
    expect(desc.seen).toEqual([7, 6, 5, 4, 3, 2, 1]);
    expect(desc.pages).toBe(3);
    const asc = await walk('asc');
    expect(asc.seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(encodeCursor(3)).not.toContain('3');
  });

  it('counts decisions per interval', async () => {
    await appendAll(h.store, [
      decision({ time: T0 + 1_000 }), decision({ time: T0 + 2_000, decision: 'allow', status: 200 }), decision({ time: T0 + 59_000 }),
      decision({ time: T0 + 61_000 }), decision({ time: T0 + 3_600_000 }),
    ]);
    const buckets = await h.store.stats({ from: T0, to: T0 + 120_000 }, 60_000);
    expect(buckets).toEqual([
      { start: T0, decision: 'allow', count: 1 },
      { start: T0, decision: 'deny', count: 2 },
      { start: T0 + 60_000, decision: 'deny', count: 1 },
    ]);
  });

  it('verify reports an edited record body as modified', async () => {
    await appendAll(h.store, [decision(), decision(), decision()]);
    await h.exec(`UPDATE {p}records SET body = replace(body, '"deny"', '"allow"'), decision = 'allow' WHERE seq = 2`);
    const report = await verifyChain(h.store);
    expect(report.ok).toBe(false);
    expect(report.findings).toEqual([expect.objectContaining({ kind: 'modified', seq: 2, message: expect.stringContaining('does not match its hash') })]);
  });

  it('verify reports a record whose filter column alone was edited', async () => {
    await appendAll(h.store, [decision(), decision()]);
    await h.exec(`UPDATE {p}records SET decision = 'allow' WHERE seq = 1`);
    const report = await verifyChain(h.store);
    expect(report.findings).toEqual([expect.objectContaining({ kind: 'modified', seq: 1, message: expect.stringContaining('decision') })]);
  });

  it('verify reports an edited and re-hashed record through the broken link after it', async () => {
    await appendAll(h.store, [decision(), decision(), decision()]);
    const [row] = await h.rows<{ body: string; prev: string }>(`SELECT body, prev_hash AS prev FROM {p}records WHERE seq = 2`);
    const body = row!.body.replace('"deny"', '"allow"');
    await h.exec(`UPDATE {p}records SET body = ?, decision = 'allow', hash = ? WHERE seq = 2`, [body, chainHash(row!.prev, body)]);
    const report = await verifyChain(h.store);
    expect(report.findings).toEqual([expect.objectContaining({ kind: 'modified', seq: 2, message: expect.stringContaining('re-hashed') })]);
  });

  it('verify reports a deleted record', async () => {
    await appendAll(h.store, [decision(), decision(), decision(), decision()]);
    await h.exec(`DELETE FROM {p}records WHERE seq = 3`);
    const report = await verifyChain(h.store);
    expect(report.findings).toEqual([expect.objectContaining({ kind: 'deleted', seq: 3, message: expect.stringContaining('record 3 was deleted') })]);
  });

  it('verify reports a record inserted into the middle of the chain', async () => {
    await appendAll(h.store, [decision(), decision(), decision()]);
    // The forger renumbers to make room and chains the forged record to its predecessor.
    await h.exec(`UPDATE {p}records SET seq = -seq WHERE seq >= 2`);
    await h.exec(`UPDATE {p}records SET seq = 1 - seq WHERE seq < 0`);
    const [prev] = await h.rows<{ hash: string }>(`SELECT hash FROM {p}records WHERE seq = 1`);
    const forged = prepareRecord(decision({ decision: 'allow', status: 200, decisionId: 'forged' }), []);
    await h.exec(
      `INSERT INTO {p}records (seq, decision_id, time, decision, status, source_principal, request_principal, destination, method, path, config_version, policies, body, prev_hash, hash) VALUES (2, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [forged.decisionId, forged.time, forged.decision, forged.status, forged.sourcePrincipal, forged.destination, forged.method, forged.path, forged.configVersion, forged.policies, forged.body, prev!.hash, chainHash(prev!.hash, forged.body)],
    );
    const report = await verifyChain(h.store);
    expect(report.findings).toEqual([expect.objectContaining({ kind: 'inserted', seq: 2, decisionId: 'forged' })]);
  });

  it('retention deletes old records, keeps an anchor, and verification still passes', async () => {
    await appendAll(h.store, [decision({ time: T0 }), decision({ time: T0 + 1000 }), decision({ time: T0 + 5000 }), decision({ time: T0 + 6000 })]);
    const before = await h.store.scan(0, 10);
    const result = await h.store.deleteBefore(T0 + 2000, T0 + 10_000);
    expect(result).toEqual({ deleted: 2, anchor: { seq: 2, hash: before[1]!.hash } });
    expect((await h.store.scan(0, 10)).map((r) => r.seq)).toEqual([3, 4]);
    expect(await h.store.anchor()).toEqual({ seq: 2, hash: before[1]!.hash });
    expect(await verifyChain(h.store)).toMatchObject({ ok: true, checked: 2, firstSeq: 3, anchor: { seq: 2 } });
    expect(await h.store.deleteBefore(T0 + 2000, T0 + 10_000)).toEqual({ deleted: 0 });
  });

  it('continues the chain from the anchor when retention emptied the log', async () => {
    await appendAll(h.store, [decision({ time: T0 }), decision({ time: T0 + 1000 })]);
    const last = (await h.store.head()).hash;
    expect((await h.store.deleteBefore(T0 + 60_000, T0 + 60_000)).deleted).toBe(2);
    expect(await h.store.head()).toEqual({ seq: 2, hash: last });
    await appendAll(h.store, [decision({ time: T0 + 70_000 })]);
    const [row] = await h.store.scan(0, 10);
    expect(row).toMatchObject({ seq: 3, prevHash: last });
    expect((await verifyChain(h.store)).ok).toBe(true);
  });

  it('verify reports records deleted from the start of the log outside retention', async () => {
    await appendAll(h.store, [decision(), decision(), decision()]);
    await h.exec(`DELETE FROM {p}records WHERE seq <= 2`);
    const report = await verifyChain(h.store);
    expect(report.findings).toEqual([expect.objectContaining({ kind: 'deleted', seq: 1, message: expect.stringContaining('records 1-2 were deleted') })]);
  });
}
