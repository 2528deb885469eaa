import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { type Agent, startAgent } from '../../src/agent/index.ts';
import { runCli, type CliIo } from '../../src/cli/index.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { removeDir, SERVICE_ORDERS, tempDir } from '../helpers/config.ts';
import { AdsClient, names, node, TYPE } from '../xds/ads-client.ts';
import { MeshwardProcess, replaceFile } from './harness.ts';
import { writeFileSync } from 'node:fs';

let mw: MeshwardProcess | undefined;
let agent: Agent | undefined;
let dir: string | undefined;
const clients: AdsClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await agent?.stop();
  await mw?.close();
  if (dir) removeDir(dir);
  agent = undefined;
  mw = undefined;
});

const MIN = 60_000;

function ads(socket: string): AdsClient {
  const c = new AdsClient(`unix:${socket}`, 'sotw');
  clients.push(c);
  c.send({ node: node('orders-1.shop', { NAMESPACE: 'shop', SERVICE_ACCOUNT: 'orders' }), type_url: TYPE.cds, resource_names: [] });
  return c;
}

async function setup(tokenTtlMs: number) {
  dir = tempDir('mw-agent-xds-');
  mw = new MeshwardProcess('', undefined, { 'orders.yaml': SERVICE_ORDERS });
  await mw.start();
  const tokenFile = path.join(dir, 'token');
  writeFileSync(tokenFile, await mw.token('shop', 'orders', tokenTtlMs));
  const xdsSocket = path.join(dir, 'xds.sock');
  agent = await startAgent({ grpcAddress: mw.grpcAddress, tokenFile, plaintext: true, xdsSocket, logger: silentLogger(), clock: mw.clock });
  return { tokenFile, xdsSocket };
}

describe('agent xDS proxy', () => {
  it('forwards an ADS stream that carries no token to meshward with the token file\'s token', async () => {
    const { xdsSocket } = await setup(24 * 60 * MIN);
    const first = await ads(xdsSocket).next();
    expect(first.type_url).toBe(TYPE.cds);
    expect(names(first)).toContain('outbound|8080||orders.shop.svc.cluster.local');
  });

  it('when meshward ends the stream because the token expired, the local stream ends too, and Envoy\'s reconnect uses the rotated token', async () => {
    const { tokenFile, xdsSocket } = await setup(2 * MIN);
    const c = ads(xdsSocket);
    await c.next();
    replaceFile(tokenFile, await mw!.token('shop', 'orders', 60 * MIN));
    mw!.clock.advance(3 * MIN);
    expect((await c.failure()).code).toBe(status.UNAUTHENTICATED);
    const again = await ads(xdsSocket).next();
    expect(again.type_url).toBe(TYPE.cds);
  });

  it('ends the local stream with UNAVAILABLE while meshward is down, and serves again when it is back', async () => {
    const { xdsSocket } = await setup(24 * 60 * MIN);
    const c = ads(xdsSocket);
    await c.next();
    await mw!.stop();
    expect((await c.failure()).code).toBe(status.UNAVAILABLE);
    await mw!.start();
    let served: Record<string, unknown> | undefined;
    for (let i = 0; i < 40 && !served; i++) {
      served = await ads(xdsSocket).next().catch(async () => {
        await new Promise((r) => setTimeout(r, 250));
        return undefined;
      });
    }
    expect(served?.type_url).toBe(TYPE.cds);
  });

  it('proxy bootstrap --agent-xds sends ADS to the agent\'s socket and holds no token', async () => {
    const captured = { out: '' };
    const out: CliIo = { stdout: (t) => { captured.out += t; }, stderr: () => {}, env: {}, cwd: process.cwd() };
    expect(await runCli(['proxy', 'bootstrap', '--node', 'n', '--service-account', 'orders', '--namespace', 'shop', '--agent', '/run/meshward/sds.sock', '--agent-xds', '/run/meshward/xds.sock'], out)).toBe(0);
    expect(captured.out).not.toMatch(/MESHWARD_TOKEN|Bearer|initial_metadata/);
    const doc = parse(captured.out) as { dynamic_resources: { ads_config: { grpc_services: unknown[] } }; static_resources: { clusters: { name: string }[] } };
    expect(doc.dynamic_resources.ads_config.grpc_services).toEqual([{ envoy_grpc: { cluster_name: 'meshward-agent-xds' } }]);
    expect(doc.static_resources.clusters.map((c) => c.name)).toEqual(['meshward', 'meshward-agent', 'meshward-agent-xds']);
  });
});

describe('agent xDS proxy cache', () => {
  it('gives an Envoy that (re)starts while meshward is down the last configuration, then the answer of meshward once it is back', async () => {
    const { xdsSocket } = await setup(24 * 60 * MIN);
    const before = await ads(xdsSocket).next();
    await mw!.stop();
    // A restarted Envoy: a new stream, meshward unreachable.
    const restarted = ads(xdsSocket);
    const cached = await restarted.next();
    expect(cached.type_url).toBe(TYPE.cds);
    expect(cached.version_info).toBe(before.version_info);
    expect(names(cached)).toEqual(names(before));
    expect(cached.nonce).not.toBe(before.nonce);
    restarted.send({ type_url: TYPE.cds, version_info: cached.version_info, response_nonce: cached.nonce });
    await mw!.start();
    // The agent retries with backoff and replays the subscription: meshward's own answer arrives
    // (meshward's timers run on the test's clock: keep it moving).
    const pump = setInterval(() => mw!.clock.advance(1000), 100);
    const fresh = await restarted.next().finally(() => clearInterval(pump));
    expect(fresh.type_url).toBe(TYPE.cds);
    expect(String(fresh.nonce)).not.toMatch(/^agent-/);
    expect(names(fresh)).toEqual(names(before));
  });

  it('without a cached configuration, a stream opened while meshward is down ends with UNAVAILABLE', async () => {
    const { xdsSocket } = await setup(24 * 60 * MIN);
    await mw!.stop();
    expect((await ads(xdsSocket).failure()).code).toBe(status.UNAVAILABLE);
  });
});
