/** The real Rego engine through the `regoPolicyEngine` adapter: Rego written for OPA-Envoy works unchanged. */
import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { regoPolicyEngine } from '../../src/policy/index.ts';
import { compileRego } from '../../src/policy/rego/index.ts';
import { fromJSON, toJSON } from '../../src/policy/rego/value.ts';
import { checkRequest, type Harness, headerOf, SERVICES, startAuthz, yamlDoc } from './helpers.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const MODULE = `package envoy.authz

import rego.v1

default allow := {"allowed": false, "http_status": 402, "body": "approval required"}

allow := {"allowed": true, "headers": {"x-approved-by": input.parsed_path[0]}} if {
  input.attributes.request.http.method == "POST"
  input.parsed_body.amount <= 100
}

allow := {"allowed": true} if input.attributes.request.http.method == "GET"
`;

describe('Rego engine', () => {
  it('evaluates an OPA-Envoy style policy over the real input and maps its object result', async () => {
    h = await startAuthz({
      'services.yaml': SERVICES,
      'rego/payments.rego': MODULE,
      'rego.yaml': yamlDoc('RegoPolicy', 'payments', 'shop', 'selector: { matchLabels: { app: orders } }\nmodules: [rego/payments.rego]'),
    }, { configure: (authz) => authz.engines.register(regoPolicyEngine({ compileRego, fromJSON, toJSON })) });
    const small = await h.check(checkRequest({ method: 'POST', path: '/pay/1', headers: { 'content-type': 'application/json' }, body: '{"amount":50}' }));
    expect(small.status.code).toBe(status.OK);
    expect(headerOf(small.ok_response?.headers, 'x-approved-by')).toBe('pay');
    const large = await h.check(checkRequest({ method: 'POST', path: '/pay/1', headers: { 'content-type': 'application/json' }, body: '{"amount":500}' }));
    expect(large.status.code).toBe(status.PERMISSION_DENIED);
    expect(large.denied_response?.status.code).toBe('PaymentRequired');
    expect(large.denied_response?.body).toBe('approval required');
    expect((await h.check(checkRequest({ method: 'GET' }))).status.code).toBe(status.OK);
  });

  it('gives Rego the service clock: time.now_ns() follows meshward\'s clock, not the wall clock', async () => {
    // Open until 2026-01-01T00:01:00Z; the harness clock starts at 2026-01-01T00:00:00Z.
    const deadline = `package envoy.authz

import rego.v1

default allow := false

allow if time.now_ns() < time.parse_rfc3339_ns("2026-01-01T00:01:00Z")
`;
    h = await startAuthz({
      'services.yaml': SERVICES,
      'rego/deadline.rego': deadline,
      'rego.yaml': yamlDoc('RegoPolicy', 'deadline', 'shop', 'selector: { matchLabels: { app: orders } }\nmodules: [rego/deadline.rego]'),
    }, { configure: (authz) => authz.engines.register(regoPolicyEngine({ compileRego, fromJSON, toJSON })) });
    expect((await h.check(checkRequest({ method: 'GET' }))).status.code).toBe(status.OK);
    h.clock.advance(60_000);
    expect((await h.check(checkRequest({ method: 'GET' }))).status.code).toBe(status.PERMISSION_DENIED);
  });
});
