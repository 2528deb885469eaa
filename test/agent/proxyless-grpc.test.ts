/**
 * Proxyless gRPC through the agent: a grpc-js client with @grpc/grpc-js-xds whose bootstrap is the
 * one `meshward proxy grpc-bootstrap --agent-xds SOCKET` prints (ADS to the agent's xDS proxy Unix
 * socket, `insecure` channel credentials, no token) resolves `xds:///orders.shop.svc.cluster.local:8080`.
 * The agent holds the token file and forwards ADS to a real meshward, which routes the client by
 * the mesh's Route between two real grpc-js servers; a reload reaches the running client, and so
 * does a change after the agent's token expired and was rotated (meshward on the test's clock).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Agent, startAgent } from '../../src/agent/index.ts';
import { runCli } from '../../src/cli/index.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import type { XdsCapability } from '../../src/xds/index.ts';
import { removeDir, tempDir } from '../helpers/config.ts';
import { answeringServer, call, canaryRoute, grpcServiceYaml, ORDERS_SUBSETS } from '../xds/proxyless-harness.ts';
import { grpcBootstrapFromCli, MeshwardProcess, replaceFile, TRUST_DOMAIN } from './harness.ts';

const TARGET = 'xds:///orders.shop.svc.cluster.local:8080';
const HOUR = 3_600_000;
const WEB = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/web`;

function ordersService(v1Port: number, v2Port: number): string {
  return `${grpcServiceYaml('orders', [{ port: v1Port, version: 'v1' }, { port: v2Port, version: 'v2' }])}---
${ORDERS_SUBSETS}`;
}

/** `n` calls, 50 at a time: the share answered by v2. */
async function v2Share(client: grpc.Client, n: number): Promise<number> {
  let started = 0;
  let v2 = 0;
  await Promise.all(Array.from({ length: 50 }, async () => {
    while (started < n) {
      started++;
      if ((await call(client)) === 'v2') v2++;
    }
  }));
  return v2 / n;
}

describe('proxyless gRPC through the agent (@grpc/grpc-js-xds)', () => {
  let mw: MeshwardProcess;
  let agent: Agent;
  let agentDir: string;
  let pump: ReturnType<typeof setInterval>;
  const servers: grpc.Server[] = [];
  let client: grpc.Client;
  let bootstrap: string;
  let tokenFile: string;
  const xds = () => mw.meshward!.capability<XdsCapability>('xds')!.server;
  const reloadWith = async (v2Weight: number) => {
    writeFileSync(path.join(mw.configDir, 'route.yaml'), canaryRoute(v2Weight));
    expect(await mw.meshward!.config.reload()).toMatchObject({ changed: true });
  };

  beforeAll(async () => {
    const v1 = await answeringServer(() => 'v1');
    const v2 = await answeringServer(() => 'v2');
    servers.push(v1.server, v2.server);
    mw = new MeshwardProcess('', undefined, { 'services.yaml': ordersService(v1.port, v2.port), 'route.yaml': canaryRoute(10) });
    await mw.start();
    // meshward runs on the test's clock (to expire a token without waiting): keep it moving for its push debounce.
    pump = setInterval(() => mw.clock.advance(50), 50);
    agentDir = tempDir('mw-proxyless-agent-');
    tokenFile = path.join(agentDir, 'token');
    writeFileSync(tokenFile, await mw.token('shop', 'web', HOUR), { mode: 0o600 });
    const xdsSocket = path.join(agentDir, 'xds.sock');
    agent = await startAgent({ grpcAddress: mw.grpcAddress, tokenFile, plaintext: true, xdsSocket, logger: silentLogger(), clock: mw.clock });
    bootstrap = await grpcBootstrapFromCli(['--node', 'web-7d9f.shop', '--namespace', 'shop', '--service-account', 'web', '--agent-xds', xdsSocket]);
    process.env.GRPC_XDS_BOOTSTRAP_CONFIG = bootstrap;
    grpcXds.register();
    client = new grpc.Client(TARGET, grpc.credentials.createInsecure());
  }, 30_000);

  afterAll(async () => {
    client?.close();
    clearInterval(pump);
    await agent?.stop();
    await mw?.close();
    for (const s of servers) s.forceShutdown();
    if (agentDir) removeDir(agentDir);
  });

  it('the bootstrap sends ADS to the agent\'s socket with insecure channel credentials and holds no token', () => {
    const doc = JSON.parse(bootstrap) as { xds_servers: { server_uri: string; channel_creds: unknown[] }[] };
    expect(doc.xds_servers).toEqual([expect.objectContaining({ server_uri: `unix://${path.join(agentDir, 'xds.sock')}`, channel_creds: [{ type: 'insecure' }] })]);
    expect(bootstrap).not.toMatch(/Bearer|token|authorization/i);
  });

  it('refuses both --agent-xds and --xds-server, and neither', async () => {
    const base = ['proxy', 'grpc-bootstrap', '--node', 'n', '--service-account', 'web'];
    const run = async (extra: string[]) => {
      let err = '';
      const code = await runCli([...base, ...extra], { stdout: () => {}, stderr: (t) => { err += t; }, env: {}, cwd: process.cwd() });
      return { code, err };
    };
    const both = await run(['--agent-xds', '/run/x.sock', '--xds-server', 'localhost:1']);
    expect(both.code).toBe(2);
    expect(both.err).toContain('give one');
    const neither = await run([]);
    expect(neither.code).toBe(2);
    expect(neither.err).toContain('--agent-xds');
  });

  it('routes 90/10 between v1 and v2 by the Route through the agent, then 50/50 after a reload, without restarting the client', async () => {
    const first = await v2Share(client, 2_000);
    expect(first).toBeGreaterThan(0.07);
    expect(first).toBeLessThan(0.13);
    const [proxy] = xds().proxies();
    // meshward authenticated the agent's token (the client sent none) and saw a gRPC node.
    expect(proxy).toMatchObject({ spiffeId: WEB, nodeId: 'web-7d9f.shop' });
    for (const t of Object.values(proxy!.types)) expect(t?.nacked).toBeUndefined();

    await reloadWith(50);
    const deadline = Date.now() + 10_000;
    while ((await v2Share(client, 100)) < 0.3) expect(Date.now()).toBeLessThan(deadline);
    // 4,000 calls: at 50 % the ±3 % band is 3.8 standard deviations wide.
    const second = await v2Share(client, 4_000);
    if (process.env.XDS_DEBUG) console.log({ first, second });
    expect(second).toBeGreaterThan(0.47);
    expect(second).toBeLessThan(0.53);
    for (const t of Object.values(xds().proxies()[0]!.types)) expect(t?.nacked).toBeUndefined();
  }, 50_000);

  it('keeps the running client configured after the agent\'s token expires: meshward ends that stream and the reconnect carries the rotated token', async () => {
    const [before] = xds().proxies();
    replaceFile(tokenFile, await mw.token('shop', 'web', 3 * HOUR));
    mw.clock.advance(2 * HOUR); // the first token (1 h) has expired, with meshward's clock tolerance
    const deadline = Date.now() + 15_000;
    while (xds().proxies().every((p) => p.streamId === before!.streamId)) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(xds().proxies()).toEqual([expect.objectContaining({ spiffeId: WEB, nodeId: 'web-7d9f.shop' })]);

    await reloadWith(100);
    const routed = Date.now() + 10_000;
    while ((await v2Share(client, 50)) < 1) expect(Date.now()).toBeLessThan(routed);
    for (const t of Object.values(xds().proxies()[0]!.types)) expect(t?.nacked).toBeUndefined();
  }, 40_000);
});
