/**
 * Records whose input comes as the CheckRequest bytes: the writer thread rebuilds, masks and
 * serializes the input. What is stored must be what the event loop would have stored.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog, type AuditLogSettings } from '../../src/audit/audit-log.ts';
import { decodeBatch, encodeBatch, BatchEncoder } from '../../src/audit/batch-codec.ts';
import { completeBody, completeRecords } from '../../src/audit/input-bytes.ts';
import { createMasker, MaskerCache } from '../../src/audit/mask.ts';
import type { DecisionRecordV1, InputBytes } from '../../src/audit/record.ts';
import { prepareRecord, type StoredDecisionV1, storedDecision } from '../../src/audit/row.ts';
import { WorkerSqliteAuditStore } from '../../src/audit/sqlite-worker-store.ts';
import { verifyChain } from '../../src/audit/reader.ts';
import { AUDIT_INPUT_DECODER, decodeAuditInput } from '../../src/authz/audit-input.ts';
import { authorizationServiceDefinition } from '../../src/authz/proto.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { decision, resetDecisions } from './fixtures.ts';

const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz';

function checkBytes(http: Record<string, unknown>): Buffer {
  return authorizationServiceDefinition().Check!.requestSerialize({
    attributes: {
      source: { principal: 'spiffe://cluster.local/ns/shop/sa/web', address: { socketAddress: { address: '10.1.2.3', portValue: 41000 } } },
      destination: { principal: 'spiffe://cluster.local/ns/shop/sa/orders' },
      request: { http: { id: 'r', method: 'GET', host: 'orders.shop', path: '/api/orders', ...http } },
      contextExtensions: { route: 'orders' },
    },
  });
}

const REQUESTS: Record<string, Buffer> = {
  'credential headers': checkBytes({ headers: { authorization: `Bearer ${JWT}`, cookie: 'session=abc', 'x-api-key': 'key-123', 'user-agent': 'curl' } }),
  'a JWT in the query string': checkBytes({ path: `/api/orders?token=${JWT}&page=2`, headers: { 'user-agent': 'curl' } }),
  'a JSON body with a secret': checkBytes({ method: 'POST', body: '{"user":"ann","password":"hunter2"}', headers: { 'content-type': 'application/json' } }),
  'a credential under an unusual header case': checkBytes({ headerMap: { headers: [{ key: 'Authorization', value: 'Basic YWxhZGRpbjpvcGVuc2VzYW1l' }] } }),
  'nothing to mask': checkBytes({ headers: { 'user-agent': 'curl', 'x-request-id': 'r' } }),
};

describe('input bytes completed on the writer thread', () => {
  let dir: string;
  let settings: AuditLogSettings;
  const stores: WorkerSqliteAuditStore[] = [];

  beforeEach(() => {
    resetDecisions();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-audit-bytes-'));
    settings = { maskPaths: ['/attributes/request/http/headers/x-api-key', '/attributes/request/http/body', '/parsed_body/password'], recordAllows: true };
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function log(name: string): Promise<{ log: AuditLog; store: WorkerSqliteAuditStore }> {
    const store = await WorkerSqliteAuditStore.open({ file: path.join(dir, `${name}.db`) });
    stores.push(store);
    return { store, log: new AuditLog({ store, clock: new FakeClock(), registry: createRegistry(), logger: silentLogger(), settings: () => settings, flushIntervalMs: 10 }) };
  }

  function recordFor(bytes: Buffer, overrides: Partial<DecisionRecordV1> = {}): DecisionRecordV1 {
    return decision({ input: decodeAuditInput(bytes), ...overrides });
  }

  async function stored(store: WorkerSqliteAuditStore): Promise<StoredDecisionV1[]> {
    return (await store.scan(0, 100)).map(storedDecision);
  }

  const withoutChain = (d: StoredDecisionV1) => ({ ...d, seq: 0, hash: '', prevHash: '' });

  it('stores exactly the record the event loop would have stored, masked the same way', async () => {
    const viaBytes = await log('bytes');
    const viaObject = await log('object');
    for (const bytes of Object.values(REQUESTS)) {
      resetDecisions();
      const input: InputBytes = { decoder: AUDIT_INPUT_DECODER, bytes };
      expect(viaBytes.log.append(recordFor(bytes), input)).toBe(true);
      resetDecisions();
      expect(viaObject.log.append(recordFor(bytes))).toBe(true);
    }
    await Promise.all([viaBytes.log.flush(), viaObject.log.flush()]);
    const a = await stored(viaBytes.store);
    const b = await stored(viaObject.store);
    expect(a).toHaveLength(Object.keys(REQUESTS).length);
    expect(a.map(withoutChain)).toEqual(b.map(withoutChain));
    const text = JSON.stringify(a);
    for (const secret of ['Bearer ', 'session=abc', 'key-123', 'hunter2', 'YWxhZGRpbjpvcGVuc2VzYW1l', JWT]) expect(text).not.toContain(secret);
    expect(a[0]!.masked).toEqual([
      '/input/attributes/request/http/headers/authorization',
      '/input/attributes/request/http/headers/cookie',
      '/input/attributes/request/http/headers/x-api-key',
    ]);
    expect(a[2]!.masked).toEqual(['/input/attributes/request/http/body', '/input/parsed_body/password']);
    expect((await verifyChain(viaBytes.store)).ok).toBe(true);
  });

  it('takes the whole-record route for a record whose path holds a JWT', async () => {
    const { log: l, store } = await log('path');
    const bytes = REQUESTS['a JWT in the query string']!;
    l.append(recordFor(bytes, { path: `/api/orders?token=${JWT}` }), { decoder: AUDIT_INPUT_DECODER, bytes });
    await l.flush();
    const [d] = await stored(store);
    expect(d!.path).toBe('/api/orders?token=[REDACTED-JWT]');
    expect(d!.masked).toContain('/path');
    expect(JSON.stringify(d)).not.toContain(JWT);
  });

  it('masks each record with the mask list in force when it was appended', async () => {
    const { log: l, store } = await log('reload');
    const bytes = REQUESTS['credential headers']!;
    l.append(recordFor(bytes), { decoder: AUDIT_INPUT_DECODER, bytes });
    await new Promise((r) => setImmediate(r));
    settings = { maskPaths: [], recordAllows: true };
    l.append(recordFor(bytes), { decoder: AUDIT_INPUT_DECODER, bytes });
    await l.flush();
    const [first, second] = await stored(store);
    expect(first!.masked).toContain('/input/attributes/request/http/headers/x-api-key');
    expect(second!.masked).not.toContain('/input/attributes/request/http/headers/x-api-key');
    expect(JSON.stringify(second!.input)).toContain('key-123');
  });

  it('still records the decision when the input decoder cannot be loaded', async () => {
    const { log: l, store } = await log('broken');
    const missing = new URL('./no-such-decoder.ts', import.meta.url).href;
    l.append(recordFor(REQUESTS['nothing to mask']!), { decoder: missing, bytes: REQUESTS['nothing to mask']! });
    await l.flush();
    const [d] = await stored(store);
    expect(d!.decision).toBe('deny');
    expect(d!.input).toBeUndefined();
    expect((d as unknown as { inputError: string }).inputError).toMatch(/input decoder unavailable/);
  });
});

describe('completing a record body', () => {
  it('splices the masked input and the masked list into the JSON', () => {
    const masker = createMasker([]);
    const body = completeBody('{"decisionId":"d","status":403}', { attributes: { request: { http: { headers: { authorization: 'x' } } } } }, masker);
    expect(JSON.parse(body)).toEqual({
      decisionId: 'd', status: 403,
      input: { attributes: { request: { http: { headers: { authorization: '[REDACTED]' } } } } },
      masked: ['/input/attributes/request/http/headers/authorization'],
    });
    expect(completeBody('{"decisionId":"d"}', undefined, masker)).toBe('{"decisionId":"d"}');
    expect(completeBody('{}', { a: 1 }, masker)).toBe('{"input":{"a":1}}');
  });

  it('carries input bytes and the batch context through the writer-thread codec', async () => {
    const encoder = new BatchEncoder();
    const plain = prepareRecord(decision(), []);
    const bytes = REQUESTS['nothing to mask']!;
    const withBytes = prepareRecord({ ...decision(), input: undefined }, []);
    encoder.add(plain);
    expect(encoder.addWithInputBytes(withBytes, bytes, { decoder: AUDIT_INPUT_DECODER, maskPaths: [] })).toBe(true);
    expect(encoder.addWithInputBytes(withBytes, bytes, { decoder: AUDIT_INPUT_DECODER, maskPaths: ['/x'] })).toBe(false);
    const batch = encoder.finish();
    expect(batch.input).toEqual({ decoder: AUDIT_INPUT_DECODER, maskPaths: [] });
    const records = decodeBatch(batch);
    expect(records[0]!.input).toBeUndefined();
    expect(Buffer.from(records[1]!.input!).equals(bytes)).toBe(true);
    await completeRecords(records, batch.input!, new MaskerCache());
    const completed = JSON.parse(Buffer.from(records[1]!.body).toString()) as DecisionRecordV1;
    expect(completed.input).toEqual(decodeAuditInput(bytes));
    expect(Buffer.from(records[0]!.body).toString()).toBe(plain.body);
    expect(decodeBatch(encodeBatch([plain]))[0]!.input).toBeUndefined();
  });

  it('completes every body of a large batch exactly, across the chunks the bodies are encoded into', async () => {
    const encoder = new BatchEncoder();
    const context = { decoder: AUDIT_INPUT_DECODER, maskPaths: [] };
    const requests = Object.values(REQUESTS);
    // Non-ASCII reasons of growing length: bodies of every size, some longer than a chunk's remainder.
    const heads = Array.from({ length: 300 }, (_, i) => prepareRecord({ ...decision({ reason: `é🚦${'x'.repeat(i * 37)}` }), input: undefined }, []));
    heads.forEach((h, i) => encoder.addWithInputBytes(h, requests[i % requests.length]!, context));
    const records = decodeBatch(encoder.finish());
    await completeRecords(records, context, new MaskerCache());
    const masker = createMasker([]);
    records.forEach((r, i) => {
      const expected = completeBody(heads[i]!.body, decodeAuditInput(requests[i % requests.length]!), masker);
      expect(Buffer.from(r.body).toString('utf8')).toBe(expected);
      expect(r.input).toBeUndefined();
    });
  });
});
