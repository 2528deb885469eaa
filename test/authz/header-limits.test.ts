/**
 * Request header limits: the decoder keeps at most MAX_REQUEST_HEADERS headers and
 * MAX_REQUEST_HEADER_BYTES bytes of them (skipping the rest without building them), and a request
 * over either limit is denied with 431 and audited like any denial.
 */
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCheckRequest, headerOverflow, MAX_REQUEST_HEADER_BYTES, MAX_REQUEST_HEADERS } from '../../src/authz/codec.ts';
import { authorizationServiceDefinition } from '../../src/authz/proto.ts';
import { checkRequest, type Harness, ORDERS_FROM_WEB, SERVICES, startAuthz } from './helpers.ts';

const check = authorizationServiceDefinition().Check!;

function manyHeaders(n: number, valueBytes = 8): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let i = 0; i < n; i++) headers[`x-h-${i}`] = 'v'.repeat(valueBytes);
  return headers;
}

/** Encoded as Envoy sends it (camelCase object through the same protos). */
function encoded(headers: Record<string, string>, headerMap = false): Buffer {
  const http = headerMap
    ? { method: 'GET', path: '/', headerMap: { headers: Object.entries(headers).map(([key, value]) => ({ key, value })) } }
    : { method: 'GET', path: '/', headers };
  return check.requestSerialize({ attributes: { request: { http } } });
}

type Http = { headers?: Record<string, string>; headerMap?: { headers?: unknown[] } };
const httpOf = (r: ReturnType<typeof decodeCheckRequest>) => (r.attributes as { request: { http: Http } }).request.http;

describe('request header limits at decode time', () => {
  it('keeps at most MAX_REQUEST_HEADERS headers of a request with 100,000, and reports what it carried', () => {
    const request = decodeCheckRequest(encoded(manyHeaders(100_000)));
    expect(Object.keys(httpOf(request).headers!)).toHaveLength(MAX_REQUEST_HEADERS);
    expect(headerOverflow(request)).toMatchObject({ count: 100_000 });
  });

  it('counts header_map values (raw header encoding) against the same limit', () => {
    const request = decodeCheckRequest(encoded(manyHeaders(MAX_REQUEST_HEADERS + 1), true));
    expect(httpOf(request).headerMap!.headers).toHaveLength(MAX_REQUEST_HEADERS);
    expect(headerOverflow(request)?.count).toBe(MAX_REQUEST_HEADERS + 1);
  });

  it('limits the bytes of the headers too (a few huge headers)', () => {
    const request = decodeCheckRequest(encoded(manyHeaders(5, MAX_REQUEST_HEADER_BYTES / 2)));
    expect(Object.keys(httpOf(request).headers!).length).toBeLessThan(5);
    expect(headerOverflow(request)!.bytes).toBeGreaterThan(MAX_REQUEST_HEADER_BYTES);
  });

  it('leaves a request within the limits untouched (exactly MAX_REQUEST_HEADERS headers)', () => {
    const bytes = encoded(manyHeaders(MAX_REQUEST_HEADERS));
    const request = decodeCheckRequest(bytes);
    expect(headerOverflow(request)).toBeUndefined();
    expect(request).toEqual(check.requestDeserialize(bytes));
  });
});

describe('a check over the header limits', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startAuthz({ 'services.yaml': SERVICES, 'policy.yaml': ORDERS_FROM_WEB });
  });
  afterAll(async () => {
    await h.close();
  });

  it('is denied with 431 and audited as a denial naming the limits; the same request within them is allowed', async () => {
    const over = await h.check(checkRequest({ headers: manyHeaders(MAX_REQUEST_HEADERS + 500) }));
    expect(over.status.code).toBe(status.PERMISSION_DENIED);
    expect(over.denied_response?.status.code).toBe('RequestHeaderFieldsTooLarge');
    expect(h.records.at(-1)).toMatchObject({ decision: 'deny', status: 431 });
    expect(h.records.at(-1)!.reason).toMatch(/request headers exceed the limits \(1501 headers/);
    const within = await h.check(checkRequest({ headers: manyHeaders(50) }));
    expect(within.status.code).toBe(status.OK);
  });
});
