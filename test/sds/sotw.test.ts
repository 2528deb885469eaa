import { describe, expect, it } from 'vitest';
import { bundleVersion, type TrustBundle, type WorkloadSvid } from '../../src/ca/index.ts';
import type { WorkloadIdentity } from '../../src/identity/index.ts';
import { DeltaStream, type DeltaDiscoveryResponse } from '../../src/sds/delta.ts';
import { SecretSession } from '../../src/sds/session.ts';
import { type DiscoveryResponse, SotwStream } from '../../src/sds/sotw.ts';
import type { SecretSource } from '../../src/sds/source.ts';

const IDENTITY: WorkloadIdentity = { spiffeId: 'spiffe://example.org/ns/shop/sa/orders', trustDomain: 'example.org', namespace: 'shop', serviceAccount: 'orders', via: 'bootstrap-token' };

/** A CA stand-in whose SVID and bundle the test replaces by hand. */
function fakeSource() {
  let serial = 1;
  let sequence = 1;
  const svid = (): WorkloadSvid => ({ svid: { serial: String(serial), chainPem: `chain-${serial}`, spiffeId: IDENTITY.spiffeId } as WorkloadSvid['svid'], privateKeyPem: `key-${serial}`, renewAt: 0 });
  const bundle = (): TrustBundle => ({ sequence, roots: [], rootsPem: `roots-${sequence}`, jwtKeys: [] });
  let current = svid();
  const svidListeners = new Set<(s: WorkloadSvid) => void>();
  const bundleListeners = new Set<(b: TrustBundle) => void>();
  const source: SecretSource = {
    authenticator: { authenticate: async () => IDENTITY },
    trustBundle: bundle,
    onBundleChange: (l) => {
      bundleListeners.add(l);
      return () => bundleListeners.delete(l);
    },
    currentSvid: async () => current,
    subscribe: (_id, l) => {
      svidListeners.add(l);
      return () => svidListeners.delete(l);
    },
  };
  return {
    source,
    renew() {
      serial++;
      current = svid();
      for (const l of svidListeners) l(current);
    },
    rotateBundle() {
      sequence++;
      for (const l of bundleListeners) l(bundle());
    },
    listeners: () => svidListeners.size + bundleListeners.size,
  };
}

function sotw() {
  const fake = fakeSource();
  const sent: DiscoveryResponse[] = [];
  const nacks: string[] = [];
  const stream = new SotwStream(new SecretSession(IDENTITY, fake.source, () => stream.onChange()), {
    send: (r) => sent.push(r),
    nack: (n) => nacks.push(n.message),
  });
  return { fake, sent, nacks, stream };
}

describe('state-of-the-world SDS protocol', () => {
  it('answers the first request, then only changes', async () => {
    const { fake, sent, stream } = sotw();
    expect(await stream.onRequest({ resource_names: ['default', 'ROOTCA'] })).toBe('initial');
    expect(sent).toHaveLength(1);
    expect(await stream.onRequest({ resource_names: ['default', 'ROOTCA'], version_info: sent[0]!.version_info, response_nonce: sent[0]!.nonce })).toBe('ack');
    expect(stream.ackedVersion).toBe(sent[0]!.version_info);
    expect(sent).toHaveLength(1);
    fake.renew();
    expect(sent).toHaveLength(2);
    expect(sent[1]!.version_info).not.toBe(sent[0]!.version_info);
    expect(sent[1]!.nonce).not.toBe(sent[0]!.nonce);
  });

  it('does not resend after a NACK, and pushes the next change', async () => {
    const { fake, sent, nacks, stream } = sotw();
    await stream.onRequest({ resource_names: ['default'] });
    expect(await stream.onRequest({ resource_names: ['default'], version_info: '', response_nonce: sent[0]!.nonce, error_detail: { message: 'bad chain' } })).toBe('nack');
    expect(nacks).toEqual(['bad chain']);
    expect(sent).toHaveLength(1);
    expect(stream.ackedVersion).toBeUndefined();
    fake.renew();
    expect(sent).toHaveLength(2);
  });

  it('ignores a request with a nonce older than the last response, even with new names', async () => {
    const { fake, sent, stream } = sotw();
    await stream.onRequest({ resource_names: ['default'] });
    fake.renew();
    expect(sent).toHaveLength(2);
    expect(await stream.onRequest({ resource_names: ['default', 'ROOTCA'], response_nonce: sent[0]!.nonce })).toBe('stale');
    expect(sent).toHaveLength(2);
  });

  it('answers a request with changed names at once', async () => {
    const { sent, stream } = sotw();
    await stream.onRequest({ resource_names: ['ROOTCA'] });
    expect(await stream.onRequest({ resource_names: ['ROOTCA', 'default'], version_info: sent[0]!.version_info, response_nonce: sent[0]!.nonce })).toBe('resubscribe');
    expect(sent[1]!.resources).toHaveLength(2);
  });

  it('does not push a bundle change to a stream that only watches its certificate', async () => {
    const { fake, sent, stream } = sotw();
    await stream.onRequest({ resource_names: ['default'] });
    fake.rotateBundle();
    expect(sent).toHaveLength(1);
  });

  it('stops watching when the session closes', async () => {
    const fake = fakeSource();
    const session = new SecretSession(IDENTITY, fake.source, () => {});
    await session.watch(['default', 'ROOTCA']);
    expect(fake.listeners()).toBe(2);
    session.close();
    expect(fake.listeners()).toBe(0);
  });
});

describe('incremental SDS protocol', () => {
  it('sends only resources the client lacks, honouring initial_resource_versions', async () => {
    const fake = fakeSource();
    const sent: DeltaDiscoveryResponse[] = [];
    const stream = new DeltaStream(new SecretSession(IDENTITY, fake.source, () => stream.onChange()), { send: (r) => sent.push(r), nack: () => {} });
    await stream.onRequest({ resource_names_subscribe: ['default', 'ROOTCA'], initial_resource_versions: { ROOTCA: bundleVersion({ sequence: 1, rootsPem: 'roots-1' }) } });
    expect(sent.map((r) => r.resources.map((x) => x.name))).toEqual([['default']]);
    fake.rotateBundle();
    expect(sent[1]!.resources.map((x) => [x.name, x.version])).toEqual([['ROOTCA', bundleVersion({ sequence: 2, rootsPem: 'roots-2' })]]);
    await stream.onRequest({ resource_names_unsubscribe: ['ROOTCA'] });
    fake.rotateBundle();
    expect(sent).toHaveLength(2);
  });
});
