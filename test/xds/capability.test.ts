import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, type CliIo } from '../../src/cli/index.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { createXdsCapability, type XdsCapability } from '../../src/xds/index.ts';
import { AdsClient, fakeAuthenticator, names, node, TYPE } from './ads-client.ts';
import { ConfigDir, ordersRouting, SHOP_SERVICES } from './fixtures.ts';

let meshward: Meshward | undefined;
let dir: ConfigDir | undefined;
let dataDir: string | undefined;
let client: AdsClient | undefined;
afterEach(async () => {
  client?.close();
  await meshward?.stop();
  dir?.remove();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  meshward = dir = dataDir = client = undefined;
});

async function start(clock = new FakeClock()) {
  dir = new ConfigDir({ 's.yaml': SHOP_SERVICES, 'r.yaml': ordersRouting(10) });
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'mw-xds-data-'));
  meshward = await createMeshward(
    { configDir: dir.dir, dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false },
    { logger: silentLogger(), registry: createRegistry(), clock, capabilities: [(ctx) => createXdsCapability(ctx, { authenticator: fakeAuthenticator })] },
  );
  await meshward.start();
  return { meshward, clock, xds: meshward.capability<XdsCapability>('xds')! };
}

function io(env: Record<string, string> = {}): CliIo & { out: string; err: string } {
  const captured = { out: '', err: '' };
  return Object.assign(captured, { stdout: (t: string) => { captured.out += t; }, stderr: (t: string) => { captured.err += t; }, env, cwd: process.cwd() });
}

describe('xds capability in meshward', () => {
  it('serves ADS on the shared gRPC port and pushes a reloaded configuration after the debounce', async () => {
    const { meshward: m, clock, xds } = await start();
    client = new AdsClient(m.addresses.grpc, 'sotw', 'token:shop:orders');
    client.send({ node: node('orders-1', { SERVICE: 'orders' }), type_url: TYPE.rds, resource_names: ['8080'] });
    const first = await client.next();
    expect(first.version_info).toBe(m.config.current().version);
    client.send({ type_url: TYPE.rds, resource_names: ['8080'], response_nonce: first.nonce, version_info: first.version_info });
    dir!.write({ 'r.yaml': ordersRouting(50) });
    const reload = await m.config.reload();
    expect(reload.changed).toBe(true);
    expect(xds.version()).toBe(first.version_info);
    clock.advance(100);
    const pushed = await client.next();
    expect(pushed.version_info).toBe(reload.version);
    expect(xds.version()).toBe(reload.version);
    expect(names(pushed)).toEqual(['8080']);
  });

  it('lists connected proxies and shows their configuration (never secrets) to operators and auditors, not without a token', async () => {
    const { meshward: m } = await start();
    client = new AdsClient(m.addresses.grpc, 'delta', 'token:shop:orders');
    client.send({ node: node('orders-1', { SERVICE: 'orders' }), type_url: TYPE.cds });
    const cds = await client.next();
    client.send({ type_url: TYPE.cds, response_nonce: cds.nonce });
    const operator = m.apiAuth.createToken('ops', 'operator');
    const auditor = m.apiAuth.createToken('audit', 'auditor');
    await expect.poll(async () => (await m.http.inject({ url: '/v1/proxies', headers: { authorization: `Bearer ${operator}` } })).json().proxies[0]?.types.cds.state).toBe('SYNCED');
    const res = await m.http.inject({ url: '/v1/proxies', headers: { authorization: `Bearer ${auditor}` } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      version: m.config.current().version,
      proxies: [{ nodeId: 'orders-1', namespace: 'shop', serviceAccount: 'orders', service: 'orders', mode: 'delta', configVersion: m.config.current().version, types: { cds: { state: 'SYNCED', acked: m.config.current().version }, lds: { state: 'NOT_SENT' } } }],
    });
    const config = await m.http.inject({ url: '/v1/proxies/orders-1/config', headers: { authorization: `Bearer ${operator}` } });
    expect(config.statusCode).toBe(200);
    const body = config.json();
    expect(body.version).toBe(m.config.current().version);
    expect(body.clusters.map((c: { resource: { name: string } }) => c.resource.name)).toContain('outbound|8080|v2|orders.shop.svc.cluster.local');
    expect(body.listeners.map((l: { resource: { name: string } }) => l.resource.name)).toContain('virtualInbound');
    expect(JSON.stringify(body)).not.toContain('PRIVATE KEY');
    expect(body.secrets).toBeUndefined();
    expect((await m.http.inject({ url: '/v1/proxies/nobody/config', headers: { authorization: `Bearer ${operator}` } })).statusCode).toBe(404);
    expect((await m.http.inject({ url: '/v1/proxies/orders-1/config' })).statusCode).toBe(401);
    expect((await m.http.inject({ url: '/v1/proxies' })).statusCode).toBe(401);
    expect((await m.http.inject({ url: '/v1/proxies', headers: { authorization: 'Bearer mw_nope' } })).statusCode).toBe(401);
  });

  it('`meshward proxy status` prints each proxy and its sync state per type', async () => {
    const { meshward: m } = await start();
    client = new AdsClient(m.addresses.grpc, 'sotw', 'token:shop:orders');
    client.send({ node: node('orders-1', { SERVICE: 'orders' }), type_url: TYPE.cds });
    const cds = await client.next();
    client.send({ type_url: TYPE.cds, response_nonce: cds.nonce, version_info: cds.version_info });
    const token = m.apiAuth.createToken('ops', 'operator');
    await expect.poll(() => m.capability<XdsCapability>('xds')!.server.proxies()[0]?.types.cds.state).toBe('SYNCED');
    const out = io({ MESHWARD_API_TOKEN: token });
    expect(await runCli(['proxy', 'status', '--api', `http://${m.addresses.http}`], out)).toBe(0);
    expect(out.out).toMatch(/^NAME\s+NAMESPACE\s+SERVICE\s+CDS\s+LDS\s+EDS\s+RDS\s+VERSION\s+MODE/);
    expect(out.out).toMatch(new RegExp(`orders-1\\s+shop\\s+orders\\s+SYNCED\\s+NOT SENT\\s+NOT SENT\\s+NOT SENT\\s+${m.config.current().version}\\s+sotw`));
    const denied = io({ MESHWARD_API_TOKEN: 'mw_wrong' });
    expect(await runCli(['proxy', 'status', '--api', `http://${m.addresses.http}`], denied)).toBe(77);
    expect(denied.err).toContain('401');
  });
});
