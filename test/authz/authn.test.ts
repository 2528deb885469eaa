/** RequestAuthentication over gRPC: JWKS from a local jwksUri, tokens signed per run. */
import { status } from '@grpc/grpc-js';
import { base64url } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { checkRequest, createIssuer, type Harness, headerOf, type Issuer, SERVICES, serveJwks, startAuthz, yamlDoc } from './helpers.ts';

const ISS = 'https://auth.example.com';
let h: Harness | undefined;
let jwksServer: Awaited<ReturnType<typeof serveJwks>> | undefined;
afterEach(async () => {
  await h?.close();
  await jwksServer?.close();
  h = undefined;
  jwksServer = undefined;
});

function requestAuthentication(jwksUri: string, extra = ''): string {
  return yamlDoc('RequestAuthentication', 'web-jwt', 'shop', [
    'selector: { matchLabels: { app: orders } }',
    'jwtRules:',
    `  - issuer: ${ISS}`,
    '    audiences: [shop]',
    `    jwksUri: ${jwksUri}`,
    '    outputPayloadToHeader: x-jwt-payload',
    ...(extra ? [extra] : []),
  ].join('\n'));
}

const REQUIRE_JWT_FOR_ACCOUNT = yamlDoc('AuthorizationPolicy', 'account-needs-jwt', 'shop', [
  'selector: { matchLabels: { app: orders } }',
  'action: DENY',
  'rules:',
  '  - from:',
  '      - source: { notRequestPrincipals: ["*"] }',
  '    to:',
  '      - operation: { paths: ["/account/*"] }',
].join('\n'));

async function setup(extraRule = ''): Promise<{ issuer: Issuer; harness: Harness }> {
  // The issuer signs with the harness clock: create it first with a clock of the same start time.
  const clockNow = { now: () => h?.clock.now() ?? Date.UTC(2026, 0, 1) };
  const issuer = await createIssuer(ISS, clockNow);
  jwksServer = await serveJwks(() => issuer.jwks());
  h = await startAuthz({ 'services.yaml': SERVICES, 'authn.yaml': `${requestAuthentication(jwksServer.url, extraRule)}---\n${REQUIRE_JWT_FOR_ACCOUNT}` });
  return { issuer, harness: h };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('RequestAuthentication', () => {
  it('accepts a valid token: request principal iss/sub, payload header, token stripped before forwarding', async () => {
    const { issuer, harness } = await setup();
    const token = await issuer.sign({ sub: 'alice', groups: ['admin'] });
    const res = await harness.check(checkRequest({ path: '/account/me', headers: bearer(token) }));
    expect(res.status.code).toBe(status.OK);
    expect(res.ok_response?.headers_to_remove).toEqual(['authorization']);
    const payload = JSON.parse(new TextDecoder().decode(base64url.decode(headerOf(res.ok_response?.headers, 'x-jwt-payload')!))) as Record<string, unknown>;
    expect(payload).toMatchObject({ iss: ISS, sub: 'alice', groups: ['admin'] });
    expect(harness.records[0]).toMatchObject({ decision: 'allow', requestPrincipal: `${ISS}/alice` });
    expect(harness.records[0]!.matchedPolicies).toContainEqual({ kind: 'RequestAuthentication', namespace: 'shop', name: 'web-jwt' });
  });

  it('forwards the token when forwardOriginalToken is set', async () => {
    const { issuer, harness } = await setup('    forwardOriginalToken: true');
    const res = await harness.check(checkRequest({ headers: bearer(await issuer.sign({ sub: 'alice' })) }));
    expect(res.status.code).toBe(status.OK);
    expect(res.ok_response?.headers_to_remove ?? []).not.toContain('authorization');
  });

  it('accepts a request without a token with no principal, so a policy requiring one denies with 403', async () => {
    const { harness } = await setup();
    expect((await harness.check(checkRequest({ path: '/api/orders' }))).status.code).toBe(status.OK);
    const res = await harness.check(checkRequest({ path: '/account/me' }));
    expect(res.status.code).toBe(status.PERMISSION_DENIED);
    expect(harness.records[1]!.requestPrincipal).toBeUndefined();
  });

  it('takes the token from the access_token query parameter and removes it', async () => {
    const { issuer, harness } = await setup();
    const res = await harness.check(checkRequest({ path: `/account/me?access_token=${await issuer.sign({ sub: 'bob' })}` }));
    expect(res.status.code).toBe(status.OK);
    expect(res.ok_response?.query_parameters_to_remove).toEqual(['access_token']);
    expect(harness.records[0]!.requestPrincipal).toBe(`${ISS}/bob`);
  });

  const rejected: [string, (i: Issuer) => Promise<string>, RegExp][] = [
    ['an expired token', (i) => i.sign({ sub: 'alice' }, { expiresInS: -120 }), /Jwt is expired/],
    ['a token from another issuer', (i) => i.sign({ sub: 'alice' }, { issuer: 'https://evil.example.com' }), /Jwt issuer is not configured/],
    ['a token for another audience', (i) => i.sign({ sub: 'alice' }, { audience: 'bank' }), /Audiences in Jwt are not allowed/],
    ['an unsigned token (alg none)', async () => `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${base64url.encode(JSON.stringify({ iss: ISS, sub: 'alice', aud: 'shop', exp: 4e9 }))}.`, /Jwt algorithm is not allowed/],
    ['a token with a tampered payload', async (i) => {
      const [head, , sig] = (await i.sign({ sub: 'alice' })).split('.');
      return `${head}.${base64url.encode(JSON.stringify({ iss: ISS, sub: 'root', aud: 'shop', exp: 4e9 }))}.${sig}`;
    }, /Jwt verification fails/],
    ['garbage', async () => 'not-a-jwt', /Jwt is not in the form/],
  ];
  for (const [what, make, message] of rejected) {
    it(`rejects ${what} with 401 and WWW-Authenticate`, async () => {
      const { issuer, harness } = await setup();
      const res = await harness.check(checkRequest({ headers: bearer(await make(issuer)) }));
      expect(res.status.code).toBe(status.UNAUTHENTICATED);
      expect(res.denied_response?.status.code).toBe('Unauthorized');
      expect(headerOf(res.denied_response?.headers, 'www-authenticate')).toMatch(/^Bearer realm="orders.shop.svc", error="invalid_token"/);
      expect(JSON.parse(res.denied_response!.body).message).toMatch(message);
      expect(harness.records[0]).toMatchObject({ decision: 'unauthenticated', status: 401 });
    });
  }

  it('rejects a token that expires while cached', async () => {
    const { issuer, harness } = await setup();
    const token = await issuer.sign({ sub: 'alice' }, { expiresInS: 60 });
    expect((await harness.check(checkRequest({ headers: bearer(token) }))).status.code).toBe(status.OK);
    harness.clock.advance(121_000);
    expect((await harness.check(checkRequest({ headers: bearer(token) }))).status.code).toBe(status.UNAUTHENTICATED);
  });

  it('keeps the last good keys when a JWKS refresh fails', async () => {
    const { issuer, harness } = await setup();
    expect((await harness.check(checkRequest({ headers: bearer(await issuer.sign({ sub: 'a' })) }))).status.code).toBe(status.OK);
    jwksServer!.fail = true;
    const hits = jwksServer!.hits;
    harness.clock.advance(5 * 60_000 + 1);
    await vi.waitFor(() => expect(jwksServer!.hits).toBeGreaterThan(hits), { timeout: 5000 });
    expect((await harness.check(checkRequest({ headers: bearer(await issuer.sign({ sub: 'b' })) }))).status.code).toBe(status.OK);
  });

  it('picks up a rotated signing key on an unknown kid', async () => {
    const { issuer, harness } = await setup();
    expect((await harness.check(checkRequest({ headers: bearer(await issuer.sign({ sub: 'a' })) }))).status.code).toBe(status.OK);
    await issuer.rotate();
    harness.clock.advance(31_000);
    expect((await harness.check(checkRequest({ headers: bearer(await issuer.sign({ sub: 'b' })) }))).status.code).toBe(status.OK);
  });

  it('applies a RequestAuthentication only to the workloads it selects', async () => {
    const { harness } = await setup();
    const res = await harness.check(checkRequest({ destination: 'spiffe://cluster.local/ns/shop/sa/web', headers: bearer('not-a-jwt') }));
    expect(res.status.code).toBe(status.OK);
  });
});

describe('JWKS unavailable from the start', () => {
  it('answers 401 while no key was ever fetched, without fetching once per request, and recovers', async () => {
    const clockNow = { now: () => h?.clock.now() ?? Date.UTC(2026, 0, 1) };
    const issuer = await createIssuer(ISS, clockNow);
    jwksServer = await serveJwks(() => issuer.jwks());
    jwksServer.fail = true;
    h = await startAuthz({ 'services.yaml': SERVICES, 'authn.yaml': requestAuthentication(jwksServer.url) });
    for (let i = 0; i < 3; i++) {
      const res = await h.check(checkRequest({ headers: bearer(await issuer.sign({ sub: `u${i}` })) }));
      expect(res.status.code).toBe(status.UNAUTHENTICATED);
      expect(JSON.parse(res.denied_response!.body).message).toBe('Jwks remote fetch is failed');
    }
    expect(jwksServer.hits).toBe(1);
    jwksServer.fail = false;
    h.clock.advance(30_000);
    await vi.waitFor(() => expect(jwksServer!.hits).toBe(2), { timeout: 5000 });
    expect((await h.check(checkRequest({ headers: bearer(await issuer.sign({ sub: 'ok' })) }))).status.code).toBe(status.OK);
  });
});

describe('configured token locations', () => {
  it('reads a custom header with a prefix and a cookie, outputs claims, strips each token where it was found', async () => {
    const clockNow = { now: () => h?.clock.now() ?? Date.UTC(2026, 0, 1) };
    const issuer = await createIssuer(ISS, clockNow);
    const inline = JSON.stringify(issuer.jwks()).replace(/'/g, "''");
    const ra = yamlDoc('RequestAuthentication', 'custom', 'shop', [
      'selector: { matchLabels: { app: orders } }',
      'jwtRules:',
      `  - issuer: ${ISS}`,
      `    jwks: '${inline}'`,
      '    fromHeaders: [{ name: X-Api-Token, prefix: "Token " }]',
      '    fromCookies: [session]',
      '    outputClaimToHeaders: [{ header: x-user, claim: sub }, { header: x-groups, claim: groups }]',
    ].join('\n'));
    h = await startAuthz({ 'services.yaml': SERVICES, 'authn.yaml': ra });
    const viaHeader = await h.check(checkRequest({ headers: { 'x-api-token': `Token ${await issuer.sign({ sub: 'carol', groups: ['a'] })}` } }));
    expect(viaHeader.status.code).toBe(status.OK);
    expect(viaHeader.ok_response?.headers_to_remove).toEqual(['x-api-token']);
    expect(headerOf(viaHeader.ok_response?.headers, 'x-user')).toBe('carol');
    expect(headerOf(viaHeader.ok_response?.headers, 'x-groups')).toBe('["a"]');
    const viaCookie = await h.check(checkRequest({ headers: { cookie: `theme=dark; session=${await issuer.sign({ sub: 'dave' })}` } }));
    expect(viaCookie.status.code).toBe(status.OK);
    expect(headerOf(viaCookie.ok_response?.headers, 'cookie')).toBe('theme=dark');
    expect(h.records[1]!.requestPrincipal).toBe(`${ISS}/dave`);
    // The default location is not used when locations are configured.
    const bearerOnly = await h.check(checkRequest({ headers: bearer('not-a-jwt') }));
    expect(bearerOnly.status.code).toBe(status.OK);
    const badPrefix = await h.check(checkRequest({ headers: { 'x-api-token': 'Token garbage' } }));
    expect(badPrefix.status.code).toBe(status.UNAUTHENTICATED);
  });
});

describe('verified-token cache', () => {
  it('does not reuse a verification across workloads whose rules require different audiences', async () => {
    const clockNow = { now: () => h?.clock.now() ?? Date.UTC(2026, 0, 1) };
    const issuer = await createIssuer(ISS, clockNow);
    const inline = JSON.stringify(issuer.jwks()).replace(/'/g, "''");
    const rule = (name: string, app: string, audience: string) => yamlDoc('RequestAuthentication', name, 'shop', [
      `selector: { matchLabels: { app: ${app} } }`,
      'jwtRules:',
      `  - issuer: ${ISS}`,
      `    audiences: [${audience}]`,
      `    jwks: '${inline}'`,
    ].join('\n'));
    h = await startAuthz({ 'services.yaml': SERVICES, 'authn.yaml': `${rule('orders-jwt', 'orders', 'shop')}---\n${rule('web-jwt', 'web', 'bank')}` });
    const token = await issuer.sign({ sub: 'alice' }, { audience: 'shop' });
    expect((await h.check(checkRequest({ headers: bearer(token) }))).status.code).toBe(status.OK);
    const onWeb = await h.check(checkRequest({ destination: 'spiffe://cluster.local/ns/shop/sa/web', headers: bearer(token) }));
    expect(onWeb.status.code).toBe(status.UNAUTHENTICATED);
    expect(JSON.parse(onWeb.denied_response!.body).message).toBe('Audiences in Jwt are not allowed');
    expect((await h.check(checkRequest({ headers: bearer(token) }))).status.code).toBe(status.OK);
  });
});

describe('output headers', () => {
  it('removes a client-sent payload header when the request has no token', async () => {
    const { harness } = await setup();
    const res = await harness.check(checkRequest({ headers: { 'x-jwt-payload': 'eyJzdWIiOiJhZG1pbiJ9' } }));
    expect(res.status.code).toBe(status.OK);
    expect(res.ok_response?.headers_to_remove).toEqual(['x-jwt-payload']);
  });

  it('overwrites (does not remove) the payload header when a valid token sets it', async () => {
    const { issuer, harness } = await setup();
    const res = await harness.check(checkRequest({ headers: { ...bearer(await issuer.sign({ sub: 'alice' })), 'x-jwt-payload': 'forged' } }));
    expect(res.ok_response?.headers_to_remove).toEqual(['authorization']);
    expect(headerOf(res.ok_response?.headers, 'x-jwt-payload')).not.toBe('forged');
  });
});
