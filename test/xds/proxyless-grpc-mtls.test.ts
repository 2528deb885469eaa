/**
 * Proxyless gRPC with mutual TLS: the client's bootstrap declares the `default` file_watcher
 * certificate provider over the SVID files the agent writes (svid.pem, svid_key.pem, bundle.pem);
 * meshward then generates clusters that present that SVID and accept only the destination
 * Service's SPIFFE ID. Real meshward and CA, real grpc-js servers requiring client certificates.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Meshward } from '../../src/meshward.ts';
import { renderGrpcBootstrap, type SecretProvider, type XdsCapability } from '../../src/xds/index.ts';
import { ConfigDir } from './fixtures.ts';
import { call, canaryRoute, grpcServiceYaml, mtlsServer, ORDERS_SUBSETS, peerSans, startMeshward, tokenForwarder, workloadToken } from './proxyless-harness.ts';

const id = (sa: string) => `spiffe://cluster.local/ns/shop/sa/${sa}`;

function mesh(ports: { v1: number; v2: number; billing: number }): string {
  return `${grpcServiceYaml('orders', [{ port: ports.v1, version: 'v1' }, { port: ports.v2, version: 'v2' }])}---
${grpcServiceYaml('billing', [{ port: ports.billing }])}---
${ORDERS_SUBSETS}---${canaryRoute(10)}`;
}

describe('proxyless gRPC with mTLS from certificate provider files', () => {
  let meshward: Meshward;
  let dir: ConfigDir;
  let dataDir: string;
  let certDir: string;
  const servers: grpc.Server[] = [];
  const clients: grpc.Client[] = [];

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'mw-proxyless-mtls-'));
    dir = new ConfigDir({ 'mesh.yaml': mesh({ v1: 1, v2: 2, billing: 3 }) });
    meshward = await startMeshward(dir.dir, dataDir);
    const ca = meshward.capability('ca') as unknown as SecretProvider;
    const roots = ca.trustBundle().rootsPem;
    const svidOf = async (sa: string) => {
      const s = await ca.currentSvid(id(sa));
      return { chainPem: s.svid.chainPem, keyPem: s.privateKeyPem };
    };
    const orders = await svidOf('orders');
    const v1 = await mtlsServer(orders, roots, (c) => `v1|${peerSans(c)}`);
    const v2 = await mtlsServer(orders, roots, (c) => `v2|${peerSans(c)}`);
    // billing's endpoint presents payments' certificate: a valid mesh SVID, but not billing's identity.
    const impostor = await mtlsServer(await svidOf('payments'), roots, (c) => `impostor|${peerSans(c)}`);
    servers.push(v1.server, v2.server, impostor.server);
    dir.write({ 'mesh.yaml': mesh({ v1: v1.port, v2: v2.port, billing: impostor.port }) });
    await meshward.config.reload();

    // What the agent writes for the workload (web), read by gRPC's file_watcher provider.
    certDir = mkdtempSync(path.join(os.tmpdir(), 'mw-grpc-svid-'));
    const web = await svidOf('web');
    writeFileSync(path.join(certDir, 'svid.pem'), web.chainPem);
    writeFileSync(path.join(certDir, 'svid_key.pem'), web.keyPem, { mode: 0o600 });
    writeFileSync(path.join(certDir, 'bundle.pem'), roots);

    const forwarder = await tokenForwarder(meshward.addresses.grpc, await workloadToken(dataDir, 'web'));
    servers.push(forwarder.server);
    clients.push(forwarder.client);
    process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify(renderGrpcBootstrap({ xdsServer: `127.0.0.1:${forwarder.port}`, nodeId: 'web-1.shop', namespace: 'shop', serviceAccount: 'web', certificateDir: certDir }));
    grpcXds.register();
  }, 30_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await meshward?.stop();
    for (const s of servers) s.forceShutdown();
    dir?.remove();
    for (const d of [dataDir, certDir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('calls the servers over mTLS with the workload SVID, split 90/10 by the Route', async () => {
    const client = new grpc.Client('xds:///orders.shop.svc.cluster.local:8080', new grpcXds.XdsChannelCredentials(grpc.credentials.createInsecure()));
    clients.push(client);
    const replies: string[] = [];
    for (let batch = 0; batch < 40; batch++) replies.push(...await Promise.all(Array.from({ length: 50 }, () => call(client))));
    const v2 = replies.filter((r) => r.startsWith('v2|')).length / replies.length;
    if (process.env.XDS_DEBUG) console.log({ v2, sample: replies[0] });
    expect(v2).toBeGreaterThan(0.07);
    expect(v2).toBeLessThan(0.13);
    // Every server saw the client's SVID.
    expect(new Set(replies.map((r) => r.split('|')[1]))).toEqual(new Set([`URI:${id('web')}`]));
    const [proxy] = meshward.capability<XdsCapability>('xds')!.server.proxies();
    for (const t of Object.values(proxy!.types)) expect(t?.nacked).toBeUndefined();
  });

  it('refuses a server whose certificate is a mesh SVID of another service', async () => {
    const client = new grpc.Client('xds:///billing.shop.svc.cluster.local:8080', new grpcXds.XdsChannelCredentials(grpc.credentials.createInsecure()));
    clients.push(client);
    await expect(call(client)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });
});
