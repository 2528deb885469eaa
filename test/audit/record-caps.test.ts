/**
 * What a record keeps of its input is capped (depth, size) with a marker saying what was cut, and
 * every stored row reads back as a decision the readers can serialize, whatever it holds.
 */
import { describe, expect, it } from 'vitest';
import { completeBody } from '../../src/audit/input-bytes.ts';
import { createMasker } from '../../src/audit/mask.ts';
import { MAX_INPUT_DEPTH, MAX_RECORD_CHARS } from '../../src/audit/record-cap.ts';
import { type AuditRow, prepareRecord, storedDecision } from '../../src/audit/row.ts';
import { decision } from './fixtures.ts';

const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz';

/** `{"a":{"a":…{"leaf":true}…}}`, `levels` objects deep, parsed (JSON.parse is iterative: any depth). */
function nested(levels: number, leaf = '{"leaf":true}'): unknown {
  return JSON.parse(`${'{"a":'.repeat(levels - 1)}${leaf}${'}'.repeat(levels - 1)}`);
}

/** Follows `a` from `value` until it stops; returns how many objects it passed and where it stopped. */
function follow(value: unknown): { levels: number; end: unknown } {
  let levels = 0;
  let v = value as Record<string, unknown>;
  while (v && typeof v === 'object' && 'a' in v) {
    levels++;
    v = v.a as Record<string, unknown>;
  }
  return { levels, end: v };
}

const withBody = (parsed: unknown, extra: Record<string, unknown> = {}) => decision({ input: { attributes: { request: { http: { method: 'POST', headers: { ...extra } } } }, parsed_body: parsed } });

describe('record caps', () => {
  it.each([5_000, 100_000])('cuts an input nested %i levels at the depth cap and marks the cut', (levels) => {
    const { json, masked } = createMasker().maskAndSerialize(withBody(nested(levels)));
    const stored = JSON.parse(json);
    // input is level 1; parsed_body and the `a` objects under it fill levels 2 to 64, then the marker.
    const { levels: kept, end } = follow(stored.input.parsed_body);
    expect(kept).toBe(MAX_INPUT_DEPTH - 1);
    expect(end).toEqual({ $truncated: { reason: 'depth', limit: MAX_INPUT_DEPTH } });
    expect(masked).toEqual([]);
  });

  it('cuts a deep input before the full masking walk, and still masks what it keeps', () => {
    const { json, masked } = createMasker().maskAndSerialize(withBody({ token: JWT, deep: nested(100_000) }, { authorization: 'Bearer x' }));
    expect(json).not.toContain(JWT);
    expect(masked).toEqual(['/input/attributes/request/http/headers/authorization', '/input/parsed_body/token']);
    expect(json).toContain('"$truncated":{"reason":"depth"');
  });

  it('records an input holding a cycle (a custom producer\'s) cut at the depth cap instead of refusing it', () => {
    const loop: Record<string, unknown> = { name: 'loop' };
    loop.self = loop;
    const { json } = createMasker().maskAndSerialize(withBody(loop));
    expect(json).toContain(`"self":{"$truncated":{"reason":"depth","limit":${MAX_INPUT_DEPTH}}}`);
  });

  it('keeps an input within the caps exactly as it was', () => {
    const record = withBody(nested(MAX_INPUT_DEPTH - 2, '1'));
    const { json, record: out } = createMasker().maskAndSerialize(record);
    expect(out).toBe(record);
    expect(json).toBe(JSON.stringify(record));
    expect(json).not.toContain('$truncated');
  });

  it('cuts a record over the size cap: the large parts become markers with their size and a prefix', () => {
    const big = 'x'.repeat(2 * 1024 * 1024);
    const record = decision({ input: { attributes: { request: { http: { method: 'POST', path: '/upload', body: big, headers: { 'content-type': 'text/plain' } } } }, parsed_path: ['upload'] } });
    const { json } = createMasker().maskAndSerialize(record);
    expect(json.length).toBeLessThanOrEqual(MAX_RECORD_CHARS);
    const http = JSON.parse(json).input.attributes.request.http;
    expect(http.body).toEqual({ $truncated: { reason: 'size', chars: big.length, prefix: 'x'.repeat(256) } });
    expect(http.path).toBe('/upload');
    expect(http.headers).toEqual({ 'content-type': 'text/plain' });
  });

  it('keeps the members of a huge header map that fit and says how many there were', () => {
    const headers = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`x-h-${i}`, `value-${i}`]));
    const { json } = createMasker().maskAndSerialize(withBody(undefined, headers));
    expect(json.length).toBeLessThanOrEqual(MAX_RECORD_CHARS);
    const kept = JSON.parse(json).input.attributes.request.http.headers;
    expect(kept['x-h-0']).toBe('value-0');
    expect(kept.$truncated).toMatchObject({ reason: 'size', members: 100_000 });
    expect(Object.keys(kept).length - 1).toBe(kept.$truncated.kept);
  });

  it('applies both caps when the writer thread completes a record from input bytes', () => {
    const head = JSON.stringify({ ...decision(), input: undefined });
    const body = completeBody(head, { parsed_body: nested(100_000), raw: 'y'.repeat(MAX_RECORD_CHARS) }, createMasker());
    expect(body.length).toBeLessThanOrEqual(MAX_RECORD_CHARS);
    const stored = JSON.parse(body);
    expect(stored.input.raw).toMatchObject({ $truncated: { reason: 'size', chars: MAX_RECORD_CHARS } });
    expect(follow(stored.input.parsed_body).end).toEqual({ $truncated: { reason: 'depth', limit: MAX_INPUT_DEPTH } });
  });
});

describe('reading any stored row', () => {
  const good = prepareRecord(decision({ decisionId: 'good' }), []);
  const row = (body: string, over: Partial<AuditRow> = {}): AuditRow => ({ ...good, body, seq: 7, hash: 'h', prevHash: 'p', ...over });
  /** What every reader does with a decision: the API's serializer and NDJSON both end in JSON text. */
  const readable = (body: string) => {
    const d = storedDecision(row(body));
    expect(() => JSON.stringify(d)).not.toThrow();
    return d;
  };

  it('reads a record as stored, with no unreadable note', () => {
    const d = readable(good.body);
    expect(d).toEqual({ ...JSON.parse(good.body), seq: 7, hash: 'h', prevHash: 'p' });
  });

  it('cuts an input stored 100,000 levels deep (written by an older version or by hand) at the depth cap', () => {
    const d = readable(JSON.stringify({ ...JSON.parse(good.body), input: 'PLACEHOLDER' }).replace('"PLACEHOLDER"', `${'['.repeat(100_000)}${']'.repeat(100_000)}`));
    expect(JSON.stringify(d.input)).toContain('"$truncated":{"reason":"depth"');
    expect(d.unreadable).toBeUndefined();
  });

  it.each([
    ['not JSON', '{"decisionId": "x", '],
    ['a JSON array', '[1,2,3]'],
    ['JSON null', 'null'],
    ['an empty string', ''],
  ])('answers a body that is %s from the row columns, saying why', (_name, body) => {
    const d = readable(body);
    expect(d).toMatchObject({ decisionId: 'good', decision: 'deny', status: 403, time: good.time, seq: 7, matchedPolicies: [], reason: '' });
    expect(d.unreadable).toMatch(/^body is not/);
  });

  it('answers fields of the wrong type from the columns or a neutral value, and names them', () => {
    const d = readable(JSON.stringify({
      decisionId: 5, time: 'yesterday', decision: 'maybe', status: 1.5, reason: { r: 1 }, matchedPolicies: [{ kind: 'X' }, 'y'],
      configVersion: null, latencyUs: 'slow', path: ['/x'], masked: 'all', input: { ok: true }, extra: { deep: [[[]]] },
    }));
    expect(d).toMatchObject({ decisionId: 'good', time: good.time, decision: 'deny', status: 403, reason: '', matchedPolicies: [], configVersion: 'v1', latencyUs: 0, input: { ok: true } });
    expect(d.path).toBeUndefined();
    expect(d.masked).toBeUndefined();
    expect((d as unknown as Record<string, unknown>).extra).toEqual({ deep: [[[]]] });
    expect(d.unreadable!.split('; ').sort()).toEqual(['configVersion', 'decision', 'decisionId', 'latencyUs', 'masked', 'matchedPolicies', 'path', 'reason', 'status', 'time'].map((f) => `${f}: wrong type`));
  });

  it('keeps a `__proto__` key as data, never as the prototype', () => {
    const d = readable(`{"decisionId":"good","__proto__":{"polluted":true},"input":{"__proto__":{"x":1}}}`);
    expect(Object.getPrototypeOf(d)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(JSON.stringify(d)).toContain('"__proto__":{"polluted":true}');
  });
});
