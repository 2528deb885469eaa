import { createPrivateKey, X509Certificate } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import type { DecisionRecordV1 } from '../../src/audit/record.ts';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { bearer, type DiscoveryResponseMsg, type Harness, reader, SECRET_TYPE, type SecretMsg, startHarness, TRUST_DOMAIN } from './harness.ts';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

const ORDERS = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`;

function byName(res: DiscoveryResponseMsg): Map<string, SecretMsg> {
  return new Map(res.resources.map((r) => [r.name, r]));
}

function pemCerts(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map((p) => new X509Certificate(p));
}

/** True when `leaf` (first of chain) verifies through the chain to one of the roots. */
function chainsTo(chain: X509Certificate[], roots: X509Certificate[]): boolean {
  for (let i = 0; i + 1 < chain.length; i++) if (!chain[i]!.verify(chain[i + 1]!.publicKey)) return false;
  const top = chain.at(-1)!;
  return roots.some((r) => top.checkIssued(r) && top.verify(r.publicKey));
}

async function openStream(names: string[], sa = 'orders') {
  const stream = h.client().StreamSecrets(bearer(await h.token('shop', sa)));
  const r = reader(stream);
  stream.write({ type_url: SECRET_TYPE, resource_names: names, node: { id: 'sidecar~10.0.0.1~orders-1.shop~shop.svc.cluster.local' } });
  return { stream, r, first: await r.next() };
}

describe('SDS StreamSecrets', () => {
  it('serves the caller its own certificate as default and the trust bundle as ROOTCA', async () => {
    const { stream, first } = await openStream(['default', 'ROOTCA']);
    expect(first.type_url).toBe(SECRET_TYPE);
    const secrets = byName(first);
    const tls = secrets.get('default')!.tls_certificate!;
    const chain = pemCerts(tls.certificate_chain.inline_bytes.toString());
    expect(chain[0]!.subjectAltName).toBe(`URI:${ORDERS}`);
    // The private key is the certificate's key.
    const key = createPrivateKey(tls.private_key.inline_bytes);
    expect(chain[0]!.checkPrivateKey(key)).toBe(true);
    const roots = pemCerts(secrets.get('ROOTCA')!.validation_context!.trusted_ca.inline_bytes.toString());
    expect(roots.length).toBe(1);
    expect(chainsTo(chain, roots)).toBe(true);
    stream.end();
  });

  it('also serves the certificate under the caller\'s SPIFFE ID and the bundle under its trust domain ID', async () => {
    const { stream, first } = await openStream([ORDERS, `spiffe://${TRUST_DOMAIN}`]);
    const secrets = byName(first);
    expect(secrets.get(ORDERS)!.tls_certificate).toBeDefined();
    expect(secrets.get(`spiffe://${TRUST_DOMAIN}`)!.validation_context).toBeDefined();
    stream.end();
  });

  it('refuses a stream without a token with UNAUTHENTICATED', async () => {
    const stream = h.client().StreamSecrets(bearer('not-a-jwt'));
    const r = reader(stream);
    stream.write({ type_url: SECRET_TYPE, resource_names: ['default'] });
    await expect(r.next()).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
  });

  it('ends a stream with UNAUTHENTICATED when the token it was opened with expires, and a fresh token reconnects', async () => {
    const stream = h.client().StreamSecrets(bearer(await h.token('shop', 'orders', 2 * 3_600_000)));
    const r = reader(stream);
    stream.write({ type_url: SECRET_TYPE, resource_names: ['default'] });
    const first = await r.next();
    stream.write({ type_url: SECRET_TYPE, resource_names: ['default'], version_info: first.version_info, response_nonce: first.nonce });
    // Before expiry (plus the 30 s clock tolerance) the stream stays open and keeps renewing.
    h.clock.advance(2 * 3_600_000 - 60_000);
    const renewed = await r.next();
    expect(renewed.version_info).not.toBe(first.version_info);
    h.clock.advance(2 * 60_000);
    const drain = async () => { for (;;) await r.next(); };
    await expect(drain()).rejects.toMatchObject({ code: status.UNAUTHENTICATED, details: expect.stringContaining('expired') });
    expect(await h.meshward.registry.getSingleMetricAsString('meshward_sds_refused_total')).toContain('code="UNAUTHENTICATED"');
    const again = await openStream(['default']);
    expect(again.first.resources).toHaveLength(1);
    again.stream.end();
  });

  it('refuses a request for another identity\'s secret with PERMISSION_DENIED and records it in the audit store', async () => {
    await h.close();
    const audited: DecisionRecordV1[] = [];
    h = await startHarness({ extraCapabilities: [() => ({ name: 'audit', append: (r: DecisionRecordV1) => audited.push(r) > 0 })] });
    const stream = h.client().StreamSecrets(bearer(await h.token('shop', 'orders')));
    const r = reader(stream);
    stream.write({ type_url: SECRET_TYPE, resource_names: [`spiffe://${TRUST_DOMAIN}/ns/shop/sa/payments`] });
    await expect(r.next()).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
    const metrics = await h.meshward.registry.getSingleMetricAsString('meshward_sds_refused_total');
    expect(metrics).toContain('code="PERMISSION_DENIED"');
    expect(audited).toEqual([expect.objectContaining({ decision: 'deny', status: 403, sourcePrincipal: ORDERS, path: `spiffe://${TRUST_DOMAIN}/ns/shop/sa/payments`, method: 'StreamSecrets' })]);
  });

  it('does not answer an ACK, and pushes the re-issued certificate at the rotation point', async () => {
    const { stream, r, first } = await openStream(['default']);
    stream.write({ type_url: SECRET_TYPE, resource_names: ['default'], version_info: first.version_info, response_nonce: first.nonce });
    await waitForOutcome('ack');
    expect(r.pending()).toBe(0);
    // Half the 1 h lifetime plus at most 5 % jitter: advancing 56 min must renew.
    h.clock.advance(56 * 60_000);
    const pushed = await r.next();
    expect(pushed.version_info).not.toBe(first.version_info);
    const oldLeaf = pemCerts(byName(first).get('default')!.tls_certificate!.certificate_chain.inline_bytes.toString())[0]!;
    const newLeaf = pemCerts(byName(pushed).get('default')!.tls_certificate!.certificate_chain.inline_bytes.toString())[0]!;
    expect(newLeaf.serialNumber).not.toBe(oldLeaf.serialNumber);
    expect(newLeaf.subjectAltName).toBe(`URI:${ORDERS}`);
    expect(Date.parse(newLeaf.validTo)).toBeGreaterThan(Date.parse(oldLeaf.validTo));
    stream.end();
  });

  it('logs a NACK without resending the same content, and ignores stale nonces', async () => {
    const { stream, r, first } = await openStream(['default', 'ROOTCA']);
    // NACK: previous version (none) with error_detail.
    stream.write({ type_url: SECRET_TYPE, resource_names: ['default', 'ROOTCA'], version_info: '', response_nonce: first.nonce, error_detail: { code: 3, message: 'bad key' } });
    // Stale: a nonce that is not the latest.
    stream.write({ type_url: SECRET_TYPE, resource_names: ['default', 'ROOTCA'], version_info: '', response_nonce: 'feedfacefeedface' });
    await vi.waitFor(async () => {
      const outcomes = await h.meshward.registry.getSingleMetricAsString('meshward_sds_requests_total');
      expect(outcomes).toContain('outcome="nack"} 1');
      expect(outcomes).toContain('outcome="stale"} 1');
    });
    // The next message must be the rotation push, not a resend of `first`.
    expect(r.pending()).toBe(0);
    h.clock.advance(56 * 60_000);
    const next = await r.next();
    expect(next.nonce).not.toBe(first.nonce);
    expect(next.version_info).not.toBe(first.version_info);
    stream.end();
  });

  it('answers a changed resource list with a new response', async () => {
    const { stream, r, first } = await openStream(['ROOTCA']);
    expect(byName(first).has('default')).toBe(false);
    stream.write({ type_url: SECRET_TYPE, resource_names: ['ROOTCA', 'default'], version_info: first.version_info, response_nonce: first.nonce });
    const second = await r.next();
    expect([...byName(second).keys()].sort()).toEqual(['ROOTCA', 'default']);
    stream.end();
  });

  it('pushes a bundle with both roots on a root rotation, and new certificates chain to the new root after activation', async () => {
    const { stream, r, first } = await openStream(['default', 'ROOTCA']);
    stream.write({ type_url: SECRET_TYPE, resource_names: ['default', 'ROOTCA'], version_info: first.version_info, response_nonce: first.nonce });
    await waitForOutcome('ack');
    const oldChain = pemCerts(byName(first).get('default')!.tls_certificate!.certificate_chain.inline_bytes.toString());
    const admin = await h.meshward.http.inject({ method: 'POST', url: '/v1/ca/rotate', headers: { authorization: `Bearer ${adminToken(h)}` }, payload: { newRoot: true, activateAfter: '10m' } });
    expect(admin.statusCode).toBe(200);
    const published = await r.next();
    const roots = pemCerts(byName(published).get('ROOTCA')!.validation_context!.trusted_ca.inline_bytes.toString());
    expect(roots.length).toBe(2);
    // The old certificate still validates against the published bundle during the overlap.
    expect(chainsTo(oldChain, roots)).toBe(true);
    // After activation, the next certificate comes from the new CA and chains to the new root only.
    h.clock.advance(11 * 60_000);
    h.clock.advance(45 * 60_000);
    const renewed = await r.next();
    const newChain = pemCerts(byName(renewed).get('default')!.tls_certificate!.certificate_chain.inline_bytes.toString());
    const oldRoot = roots.find((root) => chainsTo(oldChain, [root]))!;
    const newRoot = roots.find((root) => root !== oldRoot)!;
    expect(chainsTo(newChain, [newRoot])).toBe(true);
    expect(chainsTo(newChain, [oldRoot])).toBe(false);
    expect(chainsTo(oldChain, roots)).toBe(true);
    stream.end();
  });
});

describe('SDS FetchSecrets and DeltaSecrets', () => {
  it('fetches default and ROOTCA in one unary call', async () => {
    const res = await new Promise<DiscoveryResponseMsg>((resolve, reject) => {
      h.client().FetchSecrets({ type_url: SECRET_TYPE, resource_names: ['default', 'ROOTCA'] }, bearer(''), (err, out) => (err ? reject(err) : resolve(out)));
    }).catch((err) => err);
    expect(res).toMatchObject({ code: status.UNAUTHENTICATED });
    const token = await h.token('shop', 'orders');
    const ok = await new Promise<DiscoveryResponseMsg>((resolve, reject) => {
      h.client().FetchSecrets({ type_url: SECRET_TYPE, resource_names: ['default', 'ROOTCA'] }, bearer(token), (err, out) => (err ? reject(err) : resolve(out)));
    });
    expect([...byName(ok).keys()].sort()).toEqual(['ROOTCA', 'default']);
  });

  it('sends subscribed resources once over DeltaSecrets and pushes only what changed', async () => {
    const stream = h.client().DeltaSecrets(bearer(await h.token('shop', 'orders')));
    const r = reader(stream);
    stream.write({ type_url: SECRET_TYPE, resource_names_subscribe: ['default', 'ROOTCA'] });
    const first = await r.next();
    expect(first.resources.map((x) => x.name).sort()).toEqual(['ROOTCA', 'default']);
    stream.write({ type_url: SECRET_TYPE, response_nonce: first.nonce });
    h.clock.advance(56 * 60_000);
    const pushed = await r.next();
    expect(pushed.resources.map((x) => x.name)).toEqual(['default']);
    stream.end();
  });
});

async function waitForOutcome(outcome: string): Promise<void> {
  await vi.waitFor(async () => {
    expect(await h.meshward.registry.getSingleMetricAsString('meshward_sds_requests_total')).toContain(`outcome="${outcome}"} 1`);
  });
}

function adminToken(harness: Harness): string {
  return harness.meshward.apiAuth.createToken('test-admin', 'admin');
}

