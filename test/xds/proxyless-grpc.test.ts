/**
 * Proxyless gRPC: a grpc-js client with @grpc/grpc-js-xds resolves `xds:///orders.shop.svc.cluster.local:8080`
 * through meshward's ADS (real meshward, real CA authentication, real sockets) and is routed by
 * the mesh's Route between two real grpc-js servers. grpc-js-xds cannot send a bearer token (its
 * bootstrap knows only `insecure`/`google_default` channel credentials), so the xDS channel goes
 * through a small forwarder on loopback that adds the workload's token: what the agent's xDS proxy does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Meshward } from '../../src/meshward.ts';
import { renderGrpcBootstrap, type XdsCapability } from '../../src/xds/index.ts';
import { ConfigDir } from './fixtures.ts';
import { answeringServer, call, canaryRoute, grpcServiceYaml, ORDERS_SUBSETS, startMeshward, tokenForwarder, workloadToken } from './proxyless-harness.ts';

const TARGET = 'xds:///orders.shop.svc.cluster.local:8080';

function ordersService(v1Port: number, v2Port: number): string {
  return `${grpcServiceYaml('orders', [{ port: v1Port, version: 'v1' }, { port: v2Port, version: 'v2' }])}---
apiVersion: meshward.io/v1
kind: Service
metadata: { name: web, namespace: shop }
spec:
  serviceAccount: web
  ports: [{ name: http, port: 8080 }]
  endpoints: [{ address: 10.0.1.10 }]
---
${ORDERS_SUBSETS}  loadBalancer: LEAST_REQUEST
`;
}

/** `n` calls, `concurrency` at a time; how many were answered by each version. */
async function callMany(client: grpc.Client, n: number, concurrency = 50): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const one = async () => {
    const v = await call(client);
    counts[v] = (counts[v] ?? 0) + 1;
  };
  let started = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (started < n) {
      started++;
      await one();
    }
  }));
  return counts;
}

const share = (counts: Record<string, number>, version: string) => (counts[version] ?? 0) / Object.values(counts).reduce((a, b) => a + b, 0);

describe('proxyless gRPC (@grpc/grpc-js-xds)', () => {
  let meshward: Meshward;
  let dir: ConfigDir;
  let dataDir: string;
  const servers: grpc.Server[] = [];
  let forwarder: Awaited<ReturnType<typeof tokenForwarder>>;
  let client: grpc.Client;

  beforeAll(async () => {
    const v1 = await answeringServer(() => 'v1');
    const v2 = await answeringServer(() => 'v2');
    servers.push(v1.server, v2.server);
    dir = new ConfigDir({ 'services.yaml': ordersService(v1.port, v2.port), 'route.yaml': canaryRoute(10) });
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'mw-proxyless-'));
    meshward = await startMeshward(dir.dir, dataDir);
    forwarder = await tokenForwarder(meshward.addresses.grpc, await workloadToken(dataDir, 'web'));
    servers.push(forwarder.server);
    process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify(renderGrpcBootstrap({ xdsServer: `127.0.0.1:${forwarder.port}`, nodeId: 'web-7d9f.shop', namespace: 'shop', serviceAccount: 'web' }));
    grpcXds.register();
    client = new grpc.Client(TARGET, grpc.credentials.createInsecure());
  }, 30_000);

  afterAll(async () => {
    client?.close();
    forwarder?.client.close();
    await meshward?.stop();
    for (const s of servers) s.forceShutdown();
    dir?.remove();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('routes 90/10 between v1 and v2 by the Route, then 50/50 after a config reload, without restarting the client', async () => {
    const first = await callMany(client, 2_000);
    expect(share(first, 'v2')).toBeGreaterThan(0.07);
    expect(share(first, 'v2')).toBeLessThan(0.13);
    expect(share(first, 'v1') + share(first, 'v2')).toBe(1);

    const xds = meshward.capability<XdsCapability>('xds')!.server;
    const [proxy] = xds.proxies();
    expect(proxy).toMatchObject({ spiffeId: 'spiffe://cluster.local/ns/shop/sa/web' });
    // grpc-js-xds validates strictly and NACKs what it rejects: everything it got was accepted.
    for (const t of Object.values(proxy!.types)) expect(t?.nacked).toBeUndefined();

    dir.write({ 'route.yaml': canaryRoute(50) });
    const reload = await meshward.config.reload();
    expect(reload).toMatchObject({ changed: true });
    // Wait until the running client has the new routes (100 calls at 10 % never give 30 % v2).
    const deadline = Date.now() + 10_000;
    while (share(await callMany(client, 100), 'v2') < 0.3) expect(Date.now()).toBeLessThan(deadline);

    // 4,000 calls: at 50 % the ±3 % band is 3.8 standard deviations wide (2,000 would give 2.7).
    const second = await callMany(client, 4_000);
    if (process.env.XDS_DEBUG) console.log({ first, second });
    expect(share(second, 'v2')).toBeGreaterThan(0.47);
    expect(share(second, 'v2')).toBeLessThan(0.53);
    for (const t of Object.values(xds.proxies()[0]!.types)) expect(t?.nacked).toBeUndefined();
  }, 50_000);
});
