/**
 * Proxyless gRPC with mutual TLS through the agent, end to end: the agent holds the token, writes
 * the workload's SVID files (its key made in its own memory) and proxies ADS; the client's
 * bootstrap is what `meshward proxy grpc-bootstrap --agent-xds SOCKET --certificate-dir DIR`
 * prints, so its file_watcher provider reads the agent's files. meshward generates clusters that
 * present that SVID and accept only the destination Service's SPIFFE ID. Real meshward and CA,
 * real grpc-js servers requiring client certificates from the mesh CA.
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Agent, startAgent } from '../../src/agent/index.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import type { SecretProvider, XdsCapability } from '../../src/xds/index.ts';
import { removeDir, tempDir } from '../helpers/config.ts';
import { call, grpcServiceYaml, mtlsServer } from '../xds/proxyless-harness.ts';
import { grpcBootstrapFromCli, MeshwardProcess, TRUST_DOMAIN } from './harness.ts';

const HOUR = 3_600_000;
const id = (sa: string) => `spiffe://${TRUST_DOMAIN}/ns/shop/sa/${sa}`;

function services(orders: number, billing: number): string {
  return `${grpcServiceYaml('orders', [{ port: orders }])}---
${grpcServiceYaml('billing', [{ port: billing }])}`;
}

describe('proxyless gRPC with mTLS through the agent', () => {
  let mw: MeshwardProcess;
  let agent: Agent;
  let agentDir: string;
  let pump: ReturnType<typeof setInterval>;
  const servers: grpc.Server[] = [];
  const clients: grpc.Client[] = [];

  beforeAll(async () => {
    // Real time on the test's clock: TLS checks certificate validity against the wall clock.
    mw = new MeshwardProcess('', new FakeClock(Date.now()), { 'services.yaml': services(1, 2) });
    await mw.start();
    pump = setInterval(() => mw.clock.advance(50), 50); // meshward's push debounce runs on the test clock
    const ca = mw.meshward!.capability('ca') as unknown as SecretProvider;
    const roots = ca.trustBundle().rootsPem;
    const svidOf = async (sa: string) => {
      const s = await ca.currentSvid(id(sa));
      return { chainPem: s.svid.chainPem, keyPem: s.privateKeyPem };
    };
    const orders = await mtlsServer(await svidOf('orders'), roots);
    // billing's endpoint presents payments' certificate: a valid mesh SVID, not billing's identity.
    const impostor = await mtlsServer(await svidOf('payments'), roots);
    servers.push(orders.server, impostor.server);
    writeFileSync(path.join(mw.configDir, 'services.yaml'), services(orders.port, impostor.port));
    await mw.meshward!.config.reload();

    agentDir = tempDir('mw-proxyless-mtls-agent-');
    const tokenFile = path.join(agentDir, 'token');
    writeFileSync(tokenFile, await mw.token('shop', 'web', HOUR), { mode: 0o600 });
    const svidDir = path.join(agentDir, 'svid');
    const xdsSocket = path.join(agentDir, 'xds.sock');
    agent = await startAgent({ grpcAddress: mw.grpcAddress, apiUrl: mw.apiUrl, tokenFile, plaintext: true, xdsSocket, svidDir, logger: silentLogger(), clock: mw.clock });
    for (const end = Date.now() + 10_000; !existsSync(path.join(svidDir, 'svid_key.pem'));) {
      if (Date.now() > end) throw new Error('the agent wrote no SVID files');
      await new Promise((r) => setTimeout(r, 50));
    }
    process.env.GRPC_XDS_BOOTSTRAP_CONFIG = await grpcBootstrapFromCli(['--node', 'web-1.shop', '--namespace', 'shop', '--service-account', 'web', '--agent-xds', xdsSocket, '--certificate-dir', svidDir]);
    grpcXds.register();
  }, 30_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    clearInterval(pump);
    await agent?.stop();
    await mw?.close();
    for (const s of servers) s.forceShutdown();
    if (agentDir) removeDir(agentDir);
  });

  it('calls a mesh service over mTLS with the SVID the agent wrote, and the ADS stream carries the agent\'s token', async () => {
    const client = new grpc.Client('xds:///orders.shop.svc.cluster.local:8080', new grpcXds.XdsChannelCredentials(grpc.credentials.createInsecure()));
    clients.push(client);
    const replies = await Promise.all(Array.from({ length: 20 }, () => call(client)));
    // The server required a client certificate and saw the workload's SPIFFE ID.
    expect(new Set(replies)).toEqual(new Set([`URI:${id('web')}`]));
    const [proxy] = mw.meshward!.capability<XdsCapability>('xds')!.server.proxies();
    expect(proxy).toMatchObject({ spiffeId: id('web'), nodeId: 'web-1.shop' });
    for (const t of Object.values(proxy!.types)) expect(t?.nacked).toBeUndefined();
  }, 30_000);

  it('refuses a server whose certificate is a mesh SVID of another service', async () => {
    const client = new grpc.Client('xds:///billing.shop.svc.cluster.local:8080', new grpcXds.XdsChannelCredentials(grpc.credentials.createInsecure()));
    clients.push(client);
    const err = await call(client).then(() => undefined, (e: unknown) => e as grpc.ServiceError);
    expect(err).toMatchObject({ code: grpc.status.UNAVAILABLE });
    // Refused for the identity, not for anything else about the certificate.
    expect(err?.details).toMatch(/No matching subject alternative name/);
  }, 30_000);
});
