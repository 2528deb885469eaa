import { describe, expect, it } from 'vitest';
import { buildInput } from '../../src/authz/input.ts';

describe('request path and method', () => {
  const http = (over: { path?: string; method?: string }) => ({ attributes: { request: { http: { method: 'GET', path: '/', ...over } } } });

  it('matches the path as the mesh option forwards it, without query or fragment, and keeps the original in the input', () => {
    const built = buildInput(http({ path: '/a//b/%2e%2e/c\\d?x=1#f' }), { pathNormalization: 'MERGE_SLASHES' });
    expect(built.facts.path).toBe('/a/c/d');
    expect(built.input.attributes.request?.http?.path).toBe('/a//b/%2e%2e/c\\d?x=1#f');
    expect(buildInput(http({ path: '/a//b' })).facts.path).toBe('/a//b');
  });

  it('gives DENY rules the strictest reading of an ambiguous path, and none for a plain one', () => {
    expect(buildInput(http({ path: '/admin;x/y' })).facts.alternatePaths).toEqual(['/admin/y']);
    expect(buildInput(http({ path: '/api/orders/1' })).facts.alternatePaths).toBeUndefined();
  });

  it('refuses a method that is not an upper-case HTTP token as a bad request', () => {
    for (const method of ['delete', 'Delete', 'GET ', 'GE(T', 'DELETE\r\n']) expect(buildInput(http({ method })).badRequest, method).toMatch(/not an upper-case HTTP token/);
    for (const method of ['GET', 'DELETE', 'PROPFIND', 'M-SEARCH']) expect(buildInput(http({ method })).badRequest, method).toBeUndefined();
  });

  it('rejects a NUL byte in the path', () => {
    expect(buildInput(http({ path: '/a%00b' })).badRequest).toMatch(/NUL/);
  });
});

describe('buildInput', () => {
  it('reads headers from header_map when Envoy sends raw headers', () => {
    const { facts } = buildInput({ attributes: { request: { http: { path: '/', headerMap: { headers: [{ key: 'X-A', rawValue: Buffer.from('1').toString('base64') }, { key: 'x-a', value: '2' }] } } } } });
    expect(facts.headers).toEqual({ 'x-a': '1,2' });
  });

  it('strips the port from the host and the spiffe:// scheme from the source principal', () => {
    const { facts } = buildInput({ attributes: { source: { principal: 'spiffe://cluster.local/ns/shop/sa/web' }, request: { http: { host: 'Orders.Shop:8080', path: '/x?y=1' } } } });
    expect(facts).toMatchObject({ host: 'orders.shop', path: '/x', sourcePrincipal: 'cluster.local/ns/shop/sa/web', sourceNamespace: 'shop' });
  });

  it('uses x-envoy-external-address as the remote address when Envoy set it', () => {
    const { facts } = buildInput({ attributes: { source: { address: { socketAddress: { address: '10.0.0.5' } } }, request: { http: { path: '/', headers: { 'x-envoy-external-address': '203.0.113.9' } } } } });
    expect(facts).toMatchObject({ sourceIp: '10.0.0.5', remoteIp: '203.0.113.9' });
  });

  it('reports a bad percent-encoding as a bad request while still building the input', () => {
    const built = buildInput({ attributes: { request: { http: { path: '/a%zz' } } } });
    expect(built.badRequest).toMatch(/percent-encoding/);
    expect(built.input.parsed_path).toEqual([]);
  });
});

describe('protojson rendering of well-known types', () => {
  it('renders the request time as RFC 3339 and filter metadata Structs as plain JSON', () => {
    const { input } = buildInput({
      attributes: {
        request: { time: { seconds: '1700000000', nanos: 5_000_000 }, http: { path: '/' } },
        metadataContext: { filterMetadata: { 'envoy.filters.http.jwt_authn': { fields: { payload: { structValue: { fields: { sub: { stringValue: 'a' }, n: { numberValue: 3 }, l: { listValue: { values: [{ boolValue: true }, { nullValue: 'NULL_VALUE' }] } } } } } } } } },
      },
    } as never);
    expect(input.attributes.request?.time).toBe('2023-11-14T22:13:20.005Z');
    expect(input.attributes.metadataContext).toEqual({ filterMetadata: { 'envoy.filters.http.jwt_authn': { payload: { sub: 'a', n: 3, l: [true, null] } } } });
  });
});

describe('parsed_query', () => {
  it('decodes + and escapes, keeps repeated names in order, and treats __proto__ as data', () => {
    const { input } = buildInput({ attributes: { request: { http: { path: '/s?q=a+b%21&q=c&flag&__proto__=x&bad=%zz' } } } });
    expect({ ...input.parsed_query }).toEqual({ q: ['a b!', 'c'], flag: [''], ['__proto__']: ['x'], bad: ['%zz'] });
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});

describe('building the input twice (error path)', () => {
  it('keeps the rendered metadata', () => {
    const request = { attributes: { request: { http: { path: '/' } }, metadataContext: { filterMetadata: { ns: { fields: { a: { stringValue: 'x' } } } } } } };
    buildInput(request as never);
    const { input } = buildInput(request as never);
    expect(input.attributes.metadataContext).toEqual({ filterMetadata: { ns: { a: 'x' } } });
  });
});
