import { afterEach, describe, expect, it } from 'vitest';
import { deltaNames, node, TYPE } from './ads-client.ts';
import { ORDERS_V1_ONLY, ordersRouting, SHOP_SERVICES } from './fixtures.ts';
import { type Harness, startHarness } from './harness.ts';

type Json = Record<string, unknown>;
let h: Harness;
afterEach(async () => h?.close());

const ORDERS = 'token:shop:orders';
const ordersNode = node('orders-1', { NAMESPACE: 'shop', SERVICE_ACCOUNT: 'orders', SERVICE: 'orders' });
const V2 = 'outbound|8080|v2|orders.shop.svc.cluster.local';

const ack = (res: Json) => ({ type_url: res.type_url, response_nonce: res.nonce });

describe('ADS Delta (incremental)', () => {
  it('sends every cluster with its own version on a wildcard subscription, then only what changed', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES, 'r.yaml': ordersRouting(10) });
    const c = h.client('delta', ORDERS);
    c.send({ node: ordersNode, type_url: TYPE.cds });
    const first = await c.next();
    expect(first.system_version_info).toBe(h.xds.version);
    expect(deltaNames(first)).toContain(V2);
    const versions = new Map((first.resources as Json[]).map((r) => [r.name, r.version]));
    expect(new Set(versions.values()).size).toBeGreaterThan(1);
    c.send(ack(first));
    h.update({ 'r.yaml': ordersRouting(10).replace('consecutive5xxErrors: 3', 'consecutive5xxErrors: 7') });
    await h.xds.push();
    const next = await c.next();
    expect(next.type_url).toBe(TYPE.cds);
    // only the orders clusters carry the TrafficPolicy: web, payments, db and the inbound cluster are not re-sent
    expect(deltaNames(next).sort()).toEqual(['outbound|8080|v1|orders.shop.svc.cluster.local', 'outbound|8080||orders.shop.svc.cluster.local', V2].sort());
    expect(next.removed_resources ?? []).toEqual([]);
  });

  it('adds and removes resources: a dropped subset is sent as removed_resources after listeners and routes', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES, 'r.yaml': ordersRouting(10) });
    const c = h.client('delta', ORDERS);
    c.send({ node: ordersNode, type_url: TYPE.cds });
    c.send(ack(await c.next()));
    c.send({ type_url: TYPE.eds, resource_names_subscribe: [V2, 'outbound|8080|v1|orders.shop.svc.cluster.local'] });
    const eds = await c.next();
    expect(deltaNames(eds).sort()).toEqual(['outbound|8080|v1|orders.shop.svc.cluster.local', V2]);
    c.send(ack(eds));
    c.send({ type_url: TYPE.rds, resource_names_subscribe: ['8080'] });
    c.send(ack(await c.next()));
    h.update({ 'r.yaml': ORDERS_V1_ONLY });
    await h.xds.push();
    const seq = [await c.next(), await c.next(), await c.next(), await c.next()];
    expect(seq.map((r) => r.type_url)).toEqual([TYPE.cds, TYPE.rds, TYPE.cds, TYPE.eds]);
    expect(seq[0]!.removed_resources ?? []).toEqual([]);
    expect(seq[2]!.removed_resources).toEqual([V2]);
    expect(seq[3]!.removed_resources).toEqual([V2]);
  });

  it('honours subscribe and unsubscribe on named resources', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES, 'r.yaml': ordersRouting(10) });
    const c = h.client('delta', ORDERS);
    c.send({ node: ordersNode, type_url: TYPE.rds, resource_names_subscribe: ['8080'] });
    const first = await c.next();
    expect(deltaNames(first)).toEqual(['8080']);
    c.send({ ...ack(first), resource_names_subscribe: ['9090'], resource_names_unsubscribe: ['8080'] });
    const second = await c.next();
    expect(deltaNames(second)).toEqual(['9090']);
    c.send(ack(second));
    // 8080 is no longer subscribed: a canary change is not pushed
    h.update({ 'r.yaml': ordersRouting(30) });
    await h.xds.push();
    c.send({ type_url: TYPE.lds });
    expect((await c.next()).type_url).toBe(TYPE.lds);
  });

  it('does not re-send resources the proxy already holds when it reconnects with initial_resource_versions', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES, 'r.yaml': ordersRouting(10) });
    const a = h.client('delta', ORDERS);
    a.send({ node: ordersNode, type_url: TYPE.cds });
    const first = await a.next();
    const held = Object.fromEntries((first.resources as Json[]).map((r) => [r.name, r.version]));
    a.close();
    h.update({ 'r.yaml': ordersRouting(10).replace('maxConnections: 100', 'maxConnections: 200') });
    await h.xds.push();
    const b = h.client('delta', ORDERS);
    b.send({ node: ordersNode, type_url: TYPE.cds, initial_resource_versions: { ...held, 'outbound|1|gone|x': 'v0' } });
    const resumed = await b.next();
    expect(deltaNames(resumed).sort()).toEqual(['outbound|8080|v1|orders.shop.svc.cluster.local', 'outbound|8080||orders.shop.svc.cluster.local', V2].sort());
    expect(resumed.removed_resources).toEqual(['outbound|1|gone|x']);
  });

  it('records a NACK and does not re-send; a stale nonce still changes the subscription', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES, 'r.yaml': ordersRouting(10) });
    const c = h.client('delta', ORDERS);
    c.send({ node: ordersNode, type_url: TYPE.rds, resource_names_subscribe: ['8080'] });
    const first = await c.next();
    c.send({ ...ack(first), error_detail: { code: 3, message: 'route 8080: invalid regex' } });
    c.send({ type_url: TYPE.rds, response_nonce: 'stale', resource_names_subscribe: ['9090'] });
    const next = await c.next();
    expect(deltaNames(next)).toEqual(['9090']);
    const rds = h.xds.proxies()[0]!.types.rds;
    expect(rds.state).toBe('STALE');
    expect(rds.nacked).toMatchObject({ error: 'route 8080: invalid regex', version: h.xds.version });
    c.send(ack(next));
    await expect.poll(() => h.xds.proxies()[0]!.types.rds.state).toBe('SYNCED');
    expect(h.xds.proxies()[0]!.types.rds.nacked?.error).toBe('route 8080: invalid regex');
  });

  it('pushes only the changed route when a canary weight changes', async () => {
    h = await startHarness({ 's.yaml': SHOP_SERVICES, 'r.yaml': ordersRouting(10) });
    const c = h.client('delta', ORDERS);
    c.send({ node: ordersNode, type_url: TYPE.cds });
    c.send(ack(await c.next()));
    c.send({ type_url: TYPE.lds });
    c.send(ack(await c.next()));
    c.send({ type_url: TYPE.rds, resource_names_subscribe: ['8080', '9090'] });
    c.send(ack(await c.next()));
    h.update({ 'r.yaml': ordersRouting(25) });
    await h.xds.push();
    const pushed = await c.next();
    expect(pushed.type_url).toBe(TYPE.rds);
    expect(deltaNames(pushed)).toEqual(['8080']);
    c.send({ type_url: TYPE.eds, resource_names_subscribe: [V2] });
    expect((await c.next()).type_url).toBe(TYPE.eds);
  });
});
