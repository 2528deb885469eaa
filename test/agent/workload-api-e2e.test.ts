/**
 * End to end: a real meshward (CA on loopback), the real agent getting its SVID by CSR, and a
 * Workload API client built from the shared upstream proto on the agent's socket.
 */
import { X509Certificate } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Agent, startAgent } from '../../src/agent/index.ts';
import type { CaCapability } from '../../src/ca/index.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { removeDir, tempDir } from '../helpers/config.ts';
import { MeshwardProcess, ORDERS, TRUST_DOMAIN } from './harness.ts';
import { collect, securityHeader, splitDer, unary, type WorkloadClient, workloadApiClient } from './workload-api-fixtures.ts';

const TD_ID = `spiffe://${TRUST_DOMAIN}`;
let mw: MeshwardProcess;
let agent: Agent;
let client: WorkloadClient;
let dir: string;

beforeEach(async () => {
  // JWT-SVIDs are checked against the real time by the validator: meshward's clock starts now.
  mw = new MeshwardProcess('ca:\n  workloadCertTTL: 10m', new FakeClock(Date.now()));
  await mw.start();
  dir = tempDir('mw-agent-wl-');
  const tokenFile = path.join(dir, 'token');
  writeFileSync(tokenFile, await mw.token('shop', 'orders'));
  agent = await startAgent({
    grpcAddress: mw.grpcAddress, apiUrl: mw.apiUrl, tokenFile, plaintext: true, workloadSocket: `unix://${path.join(dir, 'workload.sock')}`,
    logger: silentLogger(), clock: mw.clock, identity: { random: () => 0, bundleRefreshMs: 60_000 },
  });
  client = workloadApiClient(path.join(dir, 'workload.sock'));
});

afterEach(async () => {
  client.close();
  await agent.stop();
  await mw.close();
  removeDir(dir);
});

describe('Workload API through the real agent and meshward', () => {
  it('serves the agent\'s CSR-issued SVID (verifies against meshward\'s bundle), JWT-SVIDs that validate for their audience only, and pushes a CA rotation', async () => {
    expect(statSync(path.join(dir, 'workload.sock')).mode & 0o777).toBe(0o600);
    const svids = collect(client.FetchX509SVID({}, securityHeader()));
    const [first] = await svids.until(1);
    const svid = first!.svids[0]!;
    expect(svid.spiffe_id).toBe(ORDERS);
    const leaf = new X509Certificate(splitDer(svid.x509_svid)[0]!);
    const published = (await (await fetch(`${mw.apiUrl}/v1/bundle.pem`)).text()).match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)!;
    expect(splitDer(svid.bundle).map((d) => new X509Certificate(d).fingerprint256)).toEqual(published.map((p) => new X509Certificate(p).fingerprint256));
    expect(splitDer(svid.x509_svid).concat(splitDer(svid.bundle)).map((d) => new X509Certificate(d)).some((ca) => leaf.verify(ca.publicKey))).toBe(true);

    const { svids: jwts } = await unary(client.FetchJWTSVID, client, { audience: ['orders'] });
    expect(jwts[0]!.spiffe_id).toBe(ORDERS);
    await expect(unary(client.ValidateJWTSVID, client, { audience: 'orders', svid: jwts[0]!.svid })).resolves.toMatchObject({ spiffe_id: ORDERS });
    await expect(unary(client.ValidateJWTSVID, client, { audience: 'payments', svid: jwts[0]!.svid })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    const jwtBundles = collect(client.FetchJWTBundles({}, securityHeader()));
    const [jwks] = await jwtBundles.until(1);
    jwtBundles.cancel();
    expect(JSON.parse(jwks!.bundles[TD_ID]!.toString()).keys.length).toBeGreaterThan(0);

    // A CA rotation with a new root: the agent follows the published bundle and pushes it.
    mw.meshward!.capability<CaCapability>('ca')!.authority.rotate({ newRoot: true });
    mw.clock.advance(60_000);
    const rotated = await svids.until(2);
    svids.cancel();
    expect(splitDer(rotated[1]!.svids[0]!.bundle)).toHaveLength(2);
  });
});
