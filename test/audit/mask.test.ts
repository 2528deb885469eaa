import { describe, expect, it } from 'vitest';
import { createMasker, REDACTED, REDACTED_JWT } from '../../src/audit/index.ts';
import { decision } from './fixtures.ts';

const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz';

function headersOf(input: unknown): Record<string, unknown> {
  return (input as { attributes: { request: { http: { headers: Record<string, unknown> } } } }).attributes.request.http.headers;
}

describe('masking', () => {
  it('redacts authorization, proxy-authorization, cookie and set-cookie headers whatever their case', () => {
    const rec = decision();
    Object.assign(headersOf(rec.input), { 'Proxy-Authorization': 'Basic abc', cookie: 'session=1', 'set-cookie': 'a=b', 'x-keep': 'visible' });
    const { record, masked } = createMasker().mask(rec);
    const h = headersOf(record.input);
    expect(h.authorization).toBe(REDACTED);
    expect(h['Proxy-Authorization']).toBe(REDACTED);
    expect(h.cookie).toBe(REDACTED);
    expect(h['set-cookie']).toBe(REDACTED);
    expect(h['x-keep']).toBe('visible');
    expect(masked).toContain('/input/attributes/request/http/headers/authorization');
    expect(JSON.stringify(record)).not.toContain('secret-token');
  });

  it("redacts credential entries of Envoy's raw header map (encode_raw_headers), not their names", () => {
    const rec = decision({ input: { attributes: { request: { http: { headerMap: { headers: [
      { key: 'Authorization', rawValue: 'QmVhcmVyIHNlY3JldA==' },
      { key: 'cookie', value: 'session=1' },
      { key: 'x-keep', value: 'visible' },
    ] } } } } } });
    const { record, masked } = createMasker().mask(rec);
    const entries = (record.input as { attributes: { request: { http: { headerMap: { headers: Record<string, string>[] } } } } }).attributes.request.http.headerMap.headers;
    expect(entries).toEqual([
      { key: 'Authorization', rawValue: REDACTED },
      { key: 'cookie', value: REDACTED },
      { key: 'x-keep', value: 'visible' },
    ]);
    expect(masked).toEqual([
      '/input/attributes/request/http/headerMap/headers/0/rawValue',
      '/input/attributes/request/http/headerMap/headers/1/value',
    ]);
  });

  it('never mutates the caller record', () => {
    const rec = decision();
    createMasker(['/parsed_path']).mask(rec);
    expect(headersOf(rec.input).authorization).toBe('Bearer secret-token');
    expect((rec.input as { parsed_path: string[] }).parsed_path).toEqual(['orders', '1']);
  });

  it('redacts JWT-looking values in query parameters and in the recorded path', () => {
    const rec = decision({
      path: `/callback?id_token=${JWT}&state=x`,
      input: { parsed_query: { id_token: [JWT], state: ['x'] }, attributes: { request: { http: { path: `/callback?id_token=${JWT}`, headers: {} } } } },
    });
    const { record, masked } = createMasker().mask(rec);
    expect(record.path).toBe(`/callback?id_token=${REDACTED_JWT}&state=x`);
    expect((record.input as { parsed_query: Record<string, string[]> }).parsed_query).toEqual({ id_token: [REDACTED_JWT], state: ['x'] });
    expect(JSON.stringify(record)).not.toContain(JWT);
    expect(masked).toEqual(['/input/attributes/request/http/path', '/input/parsed_query/id_token/0', '/path']);
  });

  it('keeps strings that only resemble part of a JWT', () => {
    const rec = decision({ path: '/eyJ/docs', input: { parsed_query: { q: ['eyJhbGci'] } } });
    const { record, masked } = createMasker().mask(rec);
    expect(record).toBe(rec);
    expect(masked).toEqual([]);
  });

  it('removes configured JSON pointers, including escaped tokens and array indexes', () => {
    const rec = decision({ input: { attributes: { request: { http: { headers: { 'x-api-key': 'k1' } } } }, parsed_body: { 'a/b': 1, list: ['keep', 'drop'] } } });
    const masker = createMasker(['/attributes/request/http/headers/x-api-key', '/parsed_body/a~1b', '/parsed_body/list/1', '/absent/path']);
    const { record, masked } = masker.mask(rec);
    expect(record.input).toEqual({ attributes: { request: { http: { headers: {} } } }, parsed_body: { list: ['keep'] } });
    expect(masked).toEqual(['/input/attributes/request/http/headers/x-api-key', '/input/parsed_body/a~1b', '/input/parsed_body/list/1']);
  });

  it('leaves a record without secrets untouched (same object)', () => {
    const rec = decision({ input: { attributes: { request: { http: { headers: { accept: '*/*' } } } } } });
    expect(createMasker().mask(rec).record).toBe(rec);
  });
});

describe('masking fast path (maskAndSerialize)', () => {
  const JWT2 = 'eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln';
  const inputs: [string, Parameters<typeof decision>[0]][] = [
    ['credential headers only', {}],
    ['no headers at all', { input: { parsed_path: ['a'] } }],
    ['a cookie header in mixed case', { input: { attributes: { request: { http: { headers: { Cookie: 'a=1', accept: '*/*' } } } } } }],
    ['a JWT in a query parameter', { path: `/cb?t=${JWT2}`, input: { parsed_query: { t: [JWT2] }, attributes: { request: { http: { headers: { authorization: 'Bearer x' } } } } } }],
    ['a credential key outside the request headers', { input: { context_extensions: { authorization: 'secret' }, attributes: { request: { http: { headers: {} } } } } }],
    ['an upper-case credential key outside the request headers', { input: { metadata_context: { 'PROXY-AUTHORIZATION': 'secret' } } }],
    ['a JWT in a parsed body', { input: { parsed_body: { token: JWT2 } } }],
    ['a set-cookie array', { input: { attributes: { request: { http: { headers: { 'set-cookie': ['a=1', 'b=2'] } } } } } }],
    ['a mixed-case credential key inside an array', { input: { parsed_body: { items: [{ 'Set-Cookie': 'secret' }] } } }],
    ['a numeric authorization value', { input: { attributes: { request: { http: { headers: { authorization: 7 } } } } } }],
    ['credentials in the raw header map', { input: { attributes: { request: { http: { headerMap: { headers: [{ key: 'Authorization', rawValue: 'c2VjcmV0' }, { key: 'cookie', value: 'secret' }] } } } } } }],
  ];

  it.each(inputs)('gives the same record, pointers and JSON as the full walk: %s', (_name, overrides) => {
    const masker = createMasker(['/attributes/request/http/headers/x-api-key', '/parsed_body/password']);
    const rec = decision(overrides);
    const reference = masker.mask(rec);
    const fast = masker.maskAndSerialize(rec);
    expect(fast.masked).toEqual(reference.masked);
    expect(fast.record).toEqual(reference.record);
    expect(JSON.parse(fast.json)).toEqual(JSON.parse(JSON.stringify(reference.record)));
    expect(fast.json).not.toContain('secret');
    expect(fast.json).not.toContain(JWT2);
  });
});
