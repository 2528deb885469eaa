import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { removeDir, tempDir } from '../helpers/config.ts';
import { reader, SECRET_TYPE, type DiscoveryResponseMsg } from '../sds/harness.ts';
import { type AgentUnderTest, MeshwardProcess, noMetadata, replaceFile, startTestAgent } from './harness.ts';

let mw: MeshwardProcess;
let a: AgentUnderTest;
afterEach(async () => {
  await a?.close();
  await mw?.close();
});

const MIN = 60_000;
const serialOf = (res: DiscoveryResponseMsg) => {
  const chain = res.resources.find((r) => r.name === 'default')!.tls_certificate!.certificate_chain.inline_bytes.toString();
  return new X509Certificate(chain.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/)![0]).serialNumber;
};

async function health(): Promise<{ status: number; body: { state: string; consecutiveFailures: number } }> {
  const res = await fetch(`http://${a.agent.healthAddress}/healthz`);
  return { status: res.status, body: await res.json() as { state: string; consecutiveFailures: number } };
}

async function openDefault() {
  const stream = a.sdsClient().StreamSecrets(noMetadata());
  const r = reader(stream);
  stream.write({ type_url: SECRET_TYPE, resource_names: ['default'] });
  const first = await r.next();
  stream.write({ type_url: SECRET_TYPE, resource_names: ['default'], version_info: first.version_info, response_nonce: first.nonce });
  return { stream, r, first };
}

describe('agent renewal', () => {
  it('re-reads the token file on every renewal: a rotated token works after the old one expired', async () => {
    mw = new MeshwardProcess('ca:\n  workloadCertTTL: 10m');
    await mw.start();
    // The first token expires (with the 30 s tolerance) long before the renewal at 5 min.
    a = await startTestAgent(mw, await mw.token('shop', 'orders', 2 * MIN));
    const { stream, r, first } = await openDefault();
    replaceFile(a.tokenFile, await mw.token('shop', 'orders', 60 * MIN));
    mw.clock.advance(5 * MIN + 1000);
    const renewed = await r.next();
    expect(serialOf(renewed)).not.toBe(serialOf(first));
    expect(a.agent.identity.health()).toMatchObject({ state: 'ready', consecutiveFailures: 0 });
    stream.end();
  });

  it('with the old token left in place after it expired, the renewal is refused and the agent says so', async () => {
    mw = new MeshwardProcess('ca:\n  workloadCertTTL: 10m');
    await mw.start();
    a = await startTestAgent(mw, await mw.token('shop', 'orders', 2 * MIN));
    await a.agent.identity.ready();
    mw.clock.advance(5 * MIN + 1000);
    await vi.waitFor(() => expect(a.agent.identity.health().consecutiveFailures).toBeGreaterThan(0), { timeout: 10_000 });
    expect(a.agent.identity.health()).toMatchObject({ state: 'degraded', lastError: expect.stringContaining('CreateCertificate') });
  });

  it('keeps serving its SVID while meshward is down (degraded), stops at expiry (not ready), and recovers when meshward returns', async () => {
    mw = new MeshwardProcess('ca:\n  workloadCertTTL: 10m');
    await mw.start();
    a = await startTestAgent(mw, await mw.token('shop', 'orders', 24 * 60 * MIN), { healthAddress: '127.0.0.1:0' });
    const { stream, r, first } = await openDefault();
    expect(await health()).toMatchObject({ status: 200, body: { state: 'ready' } });
    await mw.stop();
    mw.clock.advance(5 * MIN + 1000); // renewal due: meshward unreachable
    await vi.waitFor(() => expect(a.agent.identity.health().consecutiveFailures).toBeGreaterThan(0), { timeout: 10_000 });
    expect(await health()).toMatchObject({ status: 200, body: { state: 'degraded' } });
    // A new SDS stream on the socket still gets the current certificate.
    const again = await openDefault();
    expect(serialOf(again.first)).toBe(serialOf(first));
    again.stream.end();
    const metrics = await (await fetch(`http://${a.agent.healthAddress}/metrics`)).text();
    expect(metrics).toMatch(/meshward_agent_renewal_failures_total [1-9]/);
    expect(metrics).toMatch(/meshward_agent_degraded 1/);
    // Past notAfter: nothing valid to serve.
    mw.clock.advance(5 * MIN);
    await vi.waitFor(async () => expect(await health()).toMatchObject({ status: 503, body: { state: 'not_ready' } }), { timeout: 10_000 });
    // meshward back on the same ports: the next retry (backoff capped at 8 s here) gets a new SVID, pushed on the open stream.
    await mw.start();
    // gRPC's own reconnect backoff runs on real time: keep retrying (fake time) until a renewal lands.
    const pump = setInterval(() => mw.clock.advance(8000), 250);
    const renewed = await r.next().finally(() => clearInterval(pump));
    expect(serialOf(renewed)).not.toBe(serialOf(first));
    expect(await health()).toMatchObject({ status: 200, body: { state: 'ready', consecutiveFailures: 0 } });
    stream.end();
  });

  it('writes svid.pem, svid_key.pem (0600) and bundle.pem when asked, and rewrites them on renewal', async () => {
    mw = new MeshwardProcess('ca:\n  workloadCertTTL: 10m');
    await mw.start();
    const dir = path.join(tempDir('mw-agent-svid-'), 'out');
    a = await startTestAgent(mw, await mw.token('shop', 'orders'), { svidDir: dir });
    await a.agent.identity.ready();
    await vi.waitFor(() => expect(statSync(path.join(dir, 'bundle.pem')).size).toBeGreaterThan(0));
    expect(statSync(path.join(dir, 'svid_key.pem')).mode & 0o777).toBe(0o600);
    const cert = new X509Certificate(readFileSync(path.join(dir, 'svid.pem')));
    expect(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(readFileSync(path.join(dir, 'svid_key.pem'))))).toBe(true);
    mw.clock.advance(5 * MIN + 1000);
    await vi.waitFor(() => expect(new X509Certificate(readFileSync(path.join(dir, 'svid.pem'))).serialNumber).not.toBe(cert.serialNumber), { timeout: 10_000 });
    removeDir(path.dirname(dir));
  });
});
