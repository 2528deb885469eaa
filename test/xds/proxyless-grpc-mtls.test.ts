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
import { createCaCapability } from '../../src/ca/index.ts';
import { loadOrCreateBootstrapKey, signBootstrapToken } from '../../src/identity/index.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { createXdsCapability, renderGrpcBootstrap, type SecretProvider, type XdsCapability } from '../../src/xds/index.ts';
import { ConfigDir } from './fixtures.ts';

const METHOD = '/test.Version/Get';
const ADS = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const raw = (b: Buffer) => b;
const id = (sa: string) => `spiffe://cluster.local/ns/shop/sa/${sa}`;

function mesh(ports: { v1: number; v2: number; billing: number }): string {
  return `
apiVersion: meshward.io/v1
kind: Service
metadata: { name: orders, namespace: shop }
spec:
  serviceAccount: orders
  ports: [{ name: grpc, port: 8080, protocol: GRPC }]
  endpoints:
    - { address: 127.0.0.1, port: ${ports.v1}, labels: { version: v1 } }
    - { address: 127.0.0.1, port: ${ports.v2}, labels: { version: v2 } }
---
apiVersion: meshward.io/v1
kind: Service
metadata: { name: billing, namespace: shop }
spec:
  serviceAccount: billing
  ports: [{ name: grpc, port: 8080, protocol: GRPC }]
  endpoints: [{ address: 127.0.0.1, port: ${ports.billing} }]
---
apiVersion: meshward.io/v1
kind: TrafficPolicy
metadata: { name: orders, namespace: shop }
spec:
  host: orders
  subsets:
    - { name: v1, labels: { version: v1 } }
    - { name: v2, labels: { version: v2 } }
---
apiVersion: meshward.io/v1
kind: Route
metadata: { name: orders, namespace: shop }
spec:
  hosts: [orders]
  http:
    - route:
        - { destination: { host: orders, subset: v1 }, weight: 90 }
        - { destination: { host: orders, subset: v2 }, weight: 10 }
`;
}

/** A grpc-js server requiring a client certificate from the mesh CA; answers its version and the caller's SANs. */
async function mtlsServer(version: string, svid: { chainPem: string; keyPem: string }, rootsPem: string): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService({ Get: { path: METHOD, requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } }, {
    Get: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const peer = call.getAuthContext().sslPeerCertificate?.subjectaltname ?? 'none';
      cb(null, Buffer.from(`${version}|${peer}`));
    },
  });
  const creds = grpc.ServerCredentials.createSsl(Buffer.from(rootsPem), [{ cert_chain: Buffer.from(svid.chainPem), private_key: Buffer.from(svid.keyPem) }], true);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))));
  return { server, port };
}

/** The agent's xDS proxy stand-in: forwards ADS bytes to meshward with the workload's token. */
async function tokenForwarder(upstream: string, token: string): Promise<{ server: grpc.Server; port: number; client: grpc.Client }> {
  const client = new grpc.Client(upstream, grpc.credentials.createInsecure());
  const server = new grpc.Server();
  const ads = { path: ADS, requestStream: true, responseStream: true, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw };
  server.addService({ Stream: ads }, {
    Stream: (down: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${token}`);
      const up = client.makeBidiStreamRequest(ADS, raw, raw, md);
      down.on('data', (b: Buffer) => up.write(b));
      down.on('end', () => up.end());
      down.on('cancelled', () => up.cancel());
      up.on('data', (b: Buffer) => down.write(b));
      up.on('error', (e: grpc.ServiceError) => down.emit('error', { code: e.code, details: e.details }));
      up.on('end', () => down.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { server, port, client };
}

function call(client: grpc.Client): Promise<string> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(METHOD, raw, raw, Buffer.alloc(0), { deadline: Date.now() + 5_000 }, (err, reply) => (err ? reject(err) : resolve(String(reply))));
  });
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
    meshward = await createMeshward(
      { configDir: dir.dir, dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false },
      { logger: silentLogger(), registry: createRegistry(), capabilities: [createCaCapability, (ctx) => createXdsCapability(ctx, { debounce: { quietMs: 20, maxMs: 200 } })] },
    );
    await meshward.start();
    const ca = meshward.capability('ca') as unknown as SecretProvider;
    const roots = ca.trustBundle().rootsPem;
    const svidOf = async (sa: string) => {
      const s = await ca.currentSvid(id(sa));
      return { chainPem: s.svid.chainPem, keyPem: s.privateKeyPem };
    };
    const orders = await svidOf('orders');
    const v1 = await mtlsServer('v1', orders, roots);
    const v2 = await mtlsServer('v2', orders, roots);
    // billing's endpoint presents payments' certificate: a valid mesh SVID, but not billing's identity.
    const impostor = await mtlsServer('impostor', await svidOf('payments'), roots);
    servers.push(v1.server, v2.server, impostor.server);
    dir.write({ 'mesh.yaml': mesh({ v1: v1.port, v2: v2.port, billing: impostor.port }) });
    await meshward.config.reload();

    // What the agent writes for the workload (web), read by gRPC's file_watcher provider.
    certDir = mkdtempSync(path.join(os.tmpdir(), 'mw-grpc-svid-'));
    const web = await svidOf('web');
    writeFileSync(path.join(certDir, 'svid.pem'), web.chainPem);
    writeFileSync(path.join(certDir, 'svid_key.pem'), web.keyPem, { mode: 0o600 });
    writeFileSync(path.join(certDir, 'bundle.pem'), roots);

    const token = await signBootstrapToken(await loadOrCreateBootstrapKey(dataDir), { namespace: 'shop', serviceAccount: 'web', ttlMs: 3_600_000, nowMs: Date.now() });
    const forwarder = await tokenForwarder(meshward.addresses.grpc, token);
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
