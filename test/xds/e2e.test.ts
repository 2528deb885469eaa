import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { createCaCapability } from '../../src/ca/index.ts';
import { loadOrCreateBootstrapKey, signBootstrapToken } from '../../src/identity/index.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { createXdsCapability, type XdsCapability } from '../../src/xds/index.ts';
import { AdsClient, names, node, TYPE } from './ads-client.ts';
import { ConfigDir, ordersRouting, SHOP_SERVICES } from './fixtures.ts';

type Json = Record<string, unknown>;
let meshward: Meshward | undefined;
let dir: ConfigDir | undefined;
let dataDir: string | undefined;
const clients: AdsClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await meshward?.stop();
  dir?.remove();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  meshward = dir = dataDir = undefined;
});

describe('xds with the real CA', () => {
  it('authenticates a sidecar by its bootstrap token and serves it configuration and its SVID over ADS; refuses a bad token', async () => {
    dir = new ConfigDir({ 's.yaml': SHOP_SERVICES, 'r.yaml': ordersRouting(10) });
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'mw-xds-e2e-'));
    meshward = await createMeshward(
      { configDir: dir.dir, dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false },
      { logger: silentLogger(), registry: createRegistry(), capabilities: [createCaCapability, (ctx) => createXdsCapability(ctx)] },
    );
    await meshward.start();
    const token = await signBootstrapToken(await loadOrCreateBootstrapKey(dataDir), { namespace: 'shop', serviceAccount: 'orders', ttlMs: 3_600_000, nowMs: Date.now() });
    const c = new AdsClient(meshward.addresses.grpc, 'delta', token);
    clients.push(c);
    c.send({ node: node('orders-1', { NAMESPACE: 'shop', SERVICE: 'orders' }), type_url: TYPE.cds });
    expect(names(await c.next())).toContain('inbound|8080||');
    c.send({ type_url: TYPE.sds, resource_names_subscribe: ['default', 'ROOTCA'] });
    const sds = await c.next();
    const secrets = Object.fromEntries(((sds.resources as Json[]).map((r) => [r.name, (r.resource as Json)])));
    expect(Object.keys(secrets).sort()).toEqual(['ROOTCA', 'default']);
    expect(String((secrets.default as { tls_certificate: { certificate_chain: { inline_bytes: Buffer } } }).tls_certificate.certificate_chain.inline_bytes)).toContain('BEGIN CERTIFICATE');
    expect(meshward.capability<XdsCapability>('xds')!.server.proxies()[0]).toMatchObject({ spiffeId: 'spiffe://cluster.local/ns/shop/sa/orders', authenticatedVia: 'bootstrap-token' });

    const forged = new AdsClient(meshward.addresses.grpc, 'sotw', `${token.slice(0, -4)}AAAA`);
    clients.push(forged);
    forged.send({ node: node('orders-2'), type_url: TYPE.cds });
    expect((await forged.failure()).code).toBe(status.UNAUTHENTICATED);
  });
});
