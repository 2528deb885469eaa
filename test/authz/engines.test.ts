/**
 * Policy engine plumbing with a fake Rego engine (the real one plugs in the same way): OPA-Envoy
 * input, object results mapped into the response, CUSTOM providers, dry-run, failures, and a
 * stage added by another capability.
 */
import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuthzCapability, AuthzInput } from '../../src/authz/index.ts';
import { regoPolicyEngine } from '../../src/policy/index.ts';
import { checkRequest, type Harness, headerOf, SERVICES, startAuthz, yamlDoc } from './helpers.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** A fake compileRego: each module's text names a behaviour; inputs seen are kept for assertions. */
function fakeRego(seen: AuthzInput[] = []) {
  const behaviours: Record<string, (input: AuthzInput) => unknown> = {
    allow: () => true,
    deny: () => false,
    undefined: () => undefined,
    throws: () => { throw new Error('boom'); },
    mutate: (input) => ({
      allowed: true,
      headers: { 'x-user': 'alice', 'x-multi': ['a', 'b'] },
      response_headers_to_add: { 'x-policy': 'mutate' },
      request_headers_to_remove: ['x-internal'],
      query_parameters_to_set: { debug: 'false' },
      query_parameters_to_remove: ['token'],
      dynamic_metadata: { tenant: 'acme', amount: (input.parsed_body as { amount?: number } | undefined)?.amount },
    }),
    big: (input) => {
      const amount = (input.parsed_body as { amount?: number } | undefined)?.amount ?? 0;
      return amount <= 100 ? true : { allowed: false, http_status: 402, body: '{"error":"approval required"}', headers: { 'content-type': 'application/json', 'x-reason': 'amount' } };
    },
  };
  return {
    compileRego(modules: Record<string, string>) {
      const [source = ''] = Object.values(modules);
      const fn = behaviours[source.trim()];
      if (!fn) throw new Error(`1:1: rego_parse_error: unexpected ${source.trim()}`);
      return {
        evaluate(entrypoint: string, input: unknown) {
          if (entrypoint !== 'envoy/authz/allow') return undefined;
          seen.push(input as AuthzInput);
          return fn(input as AuthzInput);
        },
      };
    },
  };
}

function rego(name: string, behaviour: string, extra = ''): Record<string, string> {
  return {
    [`rego/${name}.rego`]: behaviour,
    [`${name}.yaml`]: yamlDoc('RegoPolicy', name, 'shop', `selector: { matchLabels: { app: orders } }\nmodules: [rego/${name}.rego]${extra ? `\n${extra}` : ''}`),
  };
}

const withRego = (seen?: AuthzInput[]) => (authz: AuthzCapability) => { authz.engines.register(regoPolicyEngine(fakeRego(seen))); };

describe('document policy engines', () => {
  it('gives the engine the OPA-Envoy input', async () => {
    const seen: AuthzInput[] = [];
    h = await startAuthz({ 'services.yaml': SERVICES, ...rego('p', 'allow') }, { configure: withRego(seen) });
    await h.check(checkRequest({ path: '/api/v1%2Forders/42?a=1&a=2&b=x%20y', contextExtensions: { route: 'orders-api' } }));
    const input = seen[0]!;
    expect(input.version).toEqual({ ext_authz: 'v3', encoding: 'protojson' });
    expect(input.parsed_path).toEqual(['api', 'v1', 'orders', '42']);
    expect(input.parsed_query).toEqual({ a: ['1', '2'], b: ['x y'] });
    expect(input.source_principal).toBe('spiffe://cluster.local/ns/shop/sa/web');
    expect(input.truncated_body).toBe(false);
    expect(input.attributes).toMatchObject({
      source: { principal: 'spiffe://cluster.local/ns/shop/sa/web', address: { socketAddress: { address: '10.1.2.3', portValue: 41000 } } },
      request: { http: { method: 'GET', host: 'orders.shop.svc', headers: { 'x-request-id': 'req-1' } } },
      contextExtensions: { route: 'orders-api' },
    });
  });

  it('parses JSON and form bodies into parsed_body', async () => {
    const seen: AuthzInput[] = [];
    h = await startAuthz({ 'services.yaml': SERVICES, ...rego('p', 'allow') }, { configure: withRego(seen) });
    await h.check(checkRequest({ method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"amount":5,"items":[1]}' }));
    await h.check(checkRequest({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1&a=2&b=3' }));
    await h.check(checkRequest({ method: 'POST', headers: { 'content-type': 'application/json', 'x-envoy-auth-partial-body': 'true' }, body: '{"amount":' }));
    expect(seen.map((i) => i.parsed_body)).toEqual([{ amount: 5, items: [1] }, { a: ['1', '2'], b: ['3'] }, undefined]);
    expect(seen[2]!.truncated_body).toBe(true);
  });

  it('denies a malformed JSON body with 400 before any policy runs', async () => {
    const seen: AuthzInput[] = [];
    h = await startAuthz({ 'services.yaml': SERVICES, ...rego('p', 'allow') }, { configure: withRego(seen) });
    const res = await h.check(checkRequest({ method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"amount":' }));
    expect(res.status.code).toBe(status.INVALID_ARGUMENT);
    expect(res.denied_response?.status.code).toBe('BadRequest');
    expect(JSON.parse(res.denied_response!.body).message).toMatch(/not valid JSON/);
    expect(seen).toHaveLength(0);
    expect(h.records[0]).toMatchObject({ decision: 'bad_request', status: 400 });
  });

  it('maps every field of an allowing object result into ok_response and dynamic_metadata', async () => {
    h = await startAuthz({ 'services.yaml': SERVICES, ...rego('p', 'mutate') }, { configure: withRego() });
    const res = await h.check(checkRequest({ method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"amount":7}' }));
    expect(res.status.code).toBe(status.OK);
    const ok = res.ok_response!;
    expect(ok.headers?.map((x) => [x.header.key, x.header.value, (x as { append?: { value: boolean } }).append?.value ?? false])).toEqual([['x-user', 'alice', false], ['x-multi', 'a', false], ['x-multi', 'b', true]]);
    expect(headerOf(ok.response_headers_to_add, 'x-policy')).toBe('mutate');
    expect(ok.headers_to_remove).toEqual(['x-internal']);
    expect(ok.query_parameters_to_set).toEqual([{ key: 'debug', value: 'false' }]);
    expect(ok.query_parameters_to_remove).toEqual(['token']);
    expect(res.dynamic_metadata?.fields.tenant?.stringValue).toBe('acme');
    expect(res.dynamic_metadata?.fields.amount?.numberValue).toBe(7);
    expect(res.dynamic_metadata?.fields.decision_id?.stringValue).toBe(h.records[0]!.decisionId);
  });

  it('maps a denying object result: status, body and headers', async () => {
    h = await startAuthz({ 'services.yaml': SERVICES, ...rego('p', 'big') }, { configure: withRego() });
    const small = await h.check(checkRequest({ method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"amount":50}' }));
    expect(small.status.code).toBe(status.OK);
    const large = await h.check(checkRequest({ method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"amount":500}' }));
    expect(large.status.code).toBe(status.PERMISSION_DENIED);
    expect(large.denied_response?.status.code).toBe('PaymentRequired');
    expect(large.denied_response?.body).toBe('{"error":"approval required"}');
    expect(headerOf(large.denied_response?.headers, 'x-reason')).toBe('amount');
    expect(h.records[1]).toMatchObject({ decision: 'deny', status: 402, matchedPolicies: [{ kind: 'RegoPolicy', name: 'p', action: 'envoy.authz.allow', effect: 'deny' }] });
  });

  it('answers an undefined decision with a gRPC error (Envoy failure mode decides) and records it', async () => {
    h = await startAuthz({ 'services.yaml': SERVICES, ...rego('p', 'undefined') }, { configure: withRego() });
    await expect(h.check(checkRequest())).rejects.toMatchObject({ code: status.INTERNAL, details: expect.stringMatching(/POLICY_UNDEFINED_DECISION|undefined/) });
    expect(h.records[0]).toMatchObject({ decision: 'error', status: 403 });
    expect(h.records[0]!.reason).toMatch(/^AUTHZ_STAGE_FAILED: stage authorize failed: shop\/p: the decision is undefined/);
  });

  it('fails closed for workloads selected by a policy whose kind has no engine', async () => {
    h = await startAuthz({ 'services.yaml': SERVICES, ...rego('p', 'allow') });
    await expect(h.check(checkRequest())).rejects.toMatchObject({ code: status.INTERNAL });
    const other = await h.check(checkRequest({ destination: 'spiffe://cluster.local/ns/shop/sa/web' }));
    expect(other.status.code).toBe(status.OK);
  });

  it('does not start when the policies cannot compile (no port opens to answer UNAVAILABLE)', async () => {
    await expect(startAuthz({ 'services.yaml': SERVICES, ...rego('p', 'syntax error here') }, { configure: withRego() })).rejects.toMatchObject({ code: 'POLICY_COMPILE_FAILED' });
  });

  it('records a dry-run policy denial without enforcing it', async () => {
    h = await startAuthz({ 'services.yaml': SERVICES, ...rego('p', 'deny', 'dryRun: true') }, { configure: withRego() });
    expect((await h.check(checkRequest())).status.code).toBe(status.OK);
    expect(h.records[0]!.matchedPolicies).toEqual([{ kind: 'RegoPolicy', namespace: 'shop', name: 'p', action: 'envoy.authz.allow', effect: 'deny', dryRun: true }]);
  });

  it('applies a RegoPolicy with contextExtensions only on that route', async () => {
    h = await startAuthz({ 'services.yaml': SERVICES, ...rego('p', 'deny', 'contextExtensions: { route: admin }') }, { configure: withRego() });
    expect((await h.check(checkRequest({ contextExtensions: { route: 'admin' } }))).status.code).toBe(status.PERMISSION_DENIED);
    expect((await h.check(checkRequest({ contextExtensions: { route: 'public' } }))).status.code).toBe(status.OK);
  });

  it('consults a CUSTOM provider only for requests its rules match', async () => {
    const custom = yamlDoc('AuthorizationPolicy', 'ext', 'shop', [
      'selector: { matchLabels: { app: orders } }',
      'action: CUSTOM',
      'provider: { name: p }',
      'rules:',
      '  - to:',
      '      - operation: { paths: ["/admin/*"] }',
    ].join('\n'));
    const seen: AuthzInput[] = [];
    h = await startAuthz({ 'services.yaml': SERVICES, ...rego('p', 'deny', 'providerOnly: true'), 'custom.yaml': custom }, { configure: withRego(seen) });
    expect((await h.check(checkRequest({ path: '/api/orders' }))).status.code).toBe(status.OK);
    expect(seen).toHaveLength(0);
    expect((await h.check(checkRequest({ path: '/admin/users' }))).status.code).toBe(status.PERMISSION_DENIED);
    expect(h.records[1]).toMatchObject({ decision: 'deny', reason: 'denied by CUSTOM policy shop/ext (provider shop/p)' });
  });
});

describe('stages added by other capabilities', () => {
  it('runs a limits stage after authorize and answers 429 with Retry-After and its headers', async () => {
    let calls = 0;
    h = await startAuthz({ 'services.yaml': SERVICES, 'deny.yaml': yamlDoc('AuthorizationPolicy', 'no-delete', 'shop', 'action: DENY\nrules:\n  - to:\n      - operation: { methods: [DELETE] }') }, {
      configure: (authz) => authz.addStage({
        name: 'limits',
        compile: () => ({
          name: 'limits',
          run: async (ctx) => {
            calls++;
            if (calls === 1) {
              ctx.mutations.responseHeaders.push({ name: 'ratelimit-remaining', value: '0' });
              return undefined;
            }
            return { outcome: 'rate_limited', reason: 'over limit', retryAfterSeconds: 1.2, limit: 'shop/orders-per-caller', headers: [{ name: 'ratelimit-limit', value: '1' }] };
          },
        }),
      }, { after: 'authorize' }),
    });
    const first = await h.check(checkRequest());
    expect(headerOf(first.ok_response?.response_headers_to_add, 'ratelimit-remaining')).toBe('0');
    const second = await h.check(checkRequest());
    expect(second.status.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(second.denied_response?.status.code).toBe('TooManyRequests');
    expect(headerOf(second.denied_response?.headers, 'retry-after')).toBe('2');
    expect(headerOf(second.denied_response?.headers, 'ratelimit-limit')).toBe('1');
    expect(h.records[1]).toMatchObject({ decision: 'rate_limited', status: 429, limit: 'shop/orders-per-caller' });
    // Denied requests never reach the limits stage.
    expect((await h.check(checkRequest({ method: 'DELETE' }))).status.code).toBe(status.PERMISSION_DENIED);
    expect(calls).toBe(2);
  });
});
