import { afterEach, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { AdsClient, node, TYPE } from '../xds/ads-client.ts';
import { bearer, reader, SECRET_TYPE, type SdsClient } from '../sds/harness.ts';
import { credentials } from '@grpc/grpc-js';
import { envoyService } from '../../src/lib/protos.ts';
import { SERVICE_ORDERS } from '../helpers/config.ts';
import { MeshwardProcess, noMetadata, startTestAgent, type AgentUnderTest } from './harness.ts';

let mw: MeshwardProcess | undefined;
let a: AgentUnderTest | undefined;
const clients: { close(): void }[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await a?.close();
  await mw?.close();
  a = undefined;
  mw = undefined;
});

function sdsClient(address: string): SdsClient {
  const Ctor = envoyService('envoy.service.secret.v3.SecretDiscoveryService');
  const c = new Ctor(address, credentials.createInsecure()) as unknown as SdsClient;
  clients.push(c);
  return c;
}

async function start(meshSpec: string): Promise<MeshwardProcess> {
  mw = new MeshwardProcess(meshSpec, undefined, { 'orders.yaml': SERVICE_ORDERS });
  await mw.start();
  return mw;
}

/** Every message in a (decoded) response that carries a private key. */
function privateKeysIn(res: Record<string, unknown>): unknown[] {
  const found: unknown[] = [];
  JSON.stringify(res, (k, v) => {
    if (k === 'private_key' && v) found.push(v);
    return v;
  });
  return found;
}

/** Where the TLS contexts in ADS responses take `default`/`ROOTCA` from: `ads` or a cluster name. */
function sdsSourcesIn(responses: Record<string, unknown>[]): Set<string> {
  const found = new Set<string>();
  JSON.stringify(responses, (k, v) => {
    if (k === 'sds_config' && v) found.add(v.ads ? 'ads' : String(v.api_config_source?.grpc_services?.[0]?.envoy_grpc?.cluster_name));
    return v;
  });
  return found;
}

async function adsResponses(m: MeshwardProcess, token: string): Promise<Record<string, unknown>[]> {
  const ads = new AdsClient(m.grpcAddress, 'sotw', token);
  clients.push(ads);
  ads.send({ node: node('orders-1.shop', { NAMESPACE: 'shop', SERVICE_ACCOUNT: 'orders' }), type_url: TYPE.cds, resource_names: [] });
  ads.send({ type_url: TYPE.sds, resource_names: ['default', 'ROOTCA'] });
  const out = [await ads.next()];
  // Whatever else meshward sends within a moment (the secrets, when it serves them).
  for (;;) {
    const more = await Promise.race([ads.next(), new Promise<undefined>((r) => setTimeout(() => r(undefined), 300))]);
    if (!more) return out;
    out.push(more);
  }
}

describe('Mesh.spec.identity.serverKeys', () => {
  it('true (default): meshward serves default with a private key over SDS and ADS', async () => {
    const m = await start('');
    const token = await m.token('shop', 'orders');
    const stream = sdsClient(m.grpcAddress).StreamSecrets(bearer(token));
    const r = reader(stream);
    stream.write({ type_url: SECRET_TYPE, resource_names: ['default'] });
    expect(privateKeysIn((await r.next()) as never)).toHaveLength(1);
    stream.end();
    const responses = await adsResponses(m, token);
    expect(responses.flatMap(privateKeysIn)).toHaveLength(1);
    expect(sdsSourcesIn(responses)).toEqual(new Set(['ads']));
  });

  it('false: meshward refuses SDS requests for default or the SPIFFE ID (FAILED_PRECONDITION), serves ROOTCA, and no SDS or ADS response carries a private key', async () => {
    const m = await start('identity:\n  serverKeys: false');
    const token = await m.token('shop', 'orders');
    const client = sdsClient(m.grpcAddress);
    for (const names of [['default'], ['spiffe://example.org/ns/shop/sa/orders'], ['default', 'ROOTCA']]) {
      const stream = client.StreamSecrets(bearer(token));
      const r = reader(stream);
      stream.write({ type_url: SECRET_TYPE, resource_names: names });
      await expect(r.next()).rejects.toMatchObject({ code: status.FAILED_PRECONDITION, details: expect.stringContaining('serverKeys: false') });
    }
    const delta = client.DeltaSecrets(bearer(token));
    const rd = reader(delta as never);
    delta.write({ type_url: SECRET_TYPE, resource_names_subscribe: ['default'] });
    await expect(rd.next()).rejects.toMatchObject({ code: status.FAILED_PRECONDITION });
    await expect(new Promise((resolve, reject) => client.FetchSecrets({ type_url: SECRET_TYPE, resource_names: ['default'] }, bearer(token), (err, res) => (err ? reject(err) : resolve(res)))))
      .rejects.toMatchObject({ code: status.FAILED_PRECONDITION });
    // The bundle holds no key: still served.
    const roots = client.StreamSecrets(bearer(token));
    const rr = reader(roots);
    roots.write({ type_url: SECRET_TYPE, resource_names: ['ROOTCA'] });
    const bundle = await rr.next();
    expect(bundle.resources.map((s) => s.name)).toEqual(['ROOTCA']);
    expect(privateKeysIn(bundle as never)).toHaveLength(0);
    roots.end();
    // ADS still configures the proxy, without a key.
    const responses = await adsResponses(m, token);
    expect(responses.length).toBeGreaterThan(0);
    expect(responses.flatMap(privateKeysIn)).toHaveLength(0);
    // The generated TLS contexts take their certificates from the agent's socket cluster instead.
    expect(sdsSourcesIn(responses)).toEqual(new Set(['meshward-agent']));
  });

  it('false: the agent still gets its certificate by CSR and serves it locally', async () => {
    const m = await start('identity:\n  serverKeys: false');
    a = await startTestAgent(m, await m.token('shop', 'orders'));
    const stream = a.sdsClient().StreamSecrets(noMetadata());
    const r = reader(stream);
    stream.write({ type_url: SECRET_TYPE, resource_names: ['default'] });
    expect(privateKeysIn((await r.next()) as never)).toHaveLength(1);
    stream.end();
  });
});
