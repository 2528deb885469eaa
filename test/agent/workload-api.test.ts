/**
 * The agent's SPIFFE Workload API on a real Unix socket, called by a client built from the shared
 * upstream proto. The identity source is fed real certificates (a CA per run) and real JWT-SVIDs.
 */
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Metadata, status } from '@grpc/grpc-js';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startWorkloadApi, type WorkloadApiServer } from '../../src/agent/workload-api/index.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import {
  collect, jwtSigner, type JwtSigner, makeSvid, securityHeader, signJwtSvid, splitDer, streamError, TestIdentitySource, TRUST_DOMAIN, unary,
  WORKLOAD_ID, type WorkloadClient, workloadApiClient,
} from './workload-api-fixtures.ts';

const TD_ID = `spiffe://${TRUST_DOMAIN}`;

let dir: string;
let api: WorkloadApiServer | undefined;
let client: WorkloadClient | undefined;
let signer: JwtSigner;

beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mw-wl-'));
  signer = await jwtSigner('jwt-key-1');
});

afterEach(async () => {
  client?.close();
  client = undefined;
  await api?.close();
  api = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function serve(source: TestIdentitySource, socketMode?: number, now?: () => number): Promise<WorkloadClient> {
  api = await startWorkloadApi({ socketPath: `unix://${path.join(dir, 'workload.sock')}`, source, logger: silentLogger(), registry: createRegistry(), socketMode, now });
  client = workloadApiClient(api.socketPath);
  return client;
}

function leafAndRoots(message: { x509_svid: Buffer; bundle: Buffer }) {
  return { chain: splitDer(message.x509_svid).map((d) => new X509Certificate(d)), roots: splitDer(message.bundle).map((d) => new X509Certificate(d)) };
}

describe('Workload API: X.509-SVIDs', () => {
  it('serves the SVID as DER (chain, PKCS#8 key, bundle); the leaf verifies against the bundle and the key matches it', async () => {
    const { svid } = await makeSvid();
    const c = await serve(new TestIdentitySource(signer, svid));
    const stream = collect(c.FetchX509SVID({}, securityHeader()));
    const [first] = await stream.until(1);
    stream.cancel();
    expect(first!.svids).toHaveLength(1);
    const message = first!.svids[0]!;
    expect(message.spiffe_id).toBe(WORKLOAD_ID);
    const { chain, roots } = leafAndRoots(message);
    expect(chain).toHaveLength(1);
    expect(roots).toHaveLength(1);
    expect(chain[0]!.verify(roots[0]!.publicKey)).toBe(true);
    expect(chain[0]!.subjectAltName).toContain(`URI:${WORKLOAD_ID}`);
    const key = createPrivateKey({ key: message.x509_svid_key, format: 'der', type: 'pkcs8' });
    expect(createPublicKey(key).export({ type: 'spki', format: 'der' })).toEqual(chain[0]!.publicKey.export({ type: 'spki', format: 'der' }));
  });

  it('serves the bundle keyed by the trust domain ID on FetchX509Bundles; the leaf verifies against it', async () => {
    const { svid } = await makeSvid();
    const c = await serve(new TestIdentitySource(signer, svid));
    const stream = collect(c.FetchX509Bundles({}, securityHeader()));
    const [first] = await stream.until(1);
    stream.cancel();
    expect(Object.keys(first!.bundles)).toEqual([TD_ID]);
    const root = new X509Certificate(first!.bundles[TD_ID]!);
    expect(new X509Certificate(svid.certChainPem).verify(root.publicKey)).toBe(true);
  });

  it('pushes a rotation (new SVID from a new CA, bundle with both roots) on the open FetchX509SVID and FetchX509Bundles streams', async () => {
    const before = await makeSvid();
    const source = new TestIdentitySource(signer, before.svid);
    const c = await serve(source);
    const svids = collect(c.FetchX509SVID({}, securityHeader()));
    const bundles = collect(c.FetchX509Bundles({}, securityHeader()));
    await svids.until(1);
    await bundles.until(1);
    const after = await makeSvid({ extraRoots: [before.caPem] });
    source.publish(after.svid);
    const [, rotated] = await svids.until(2);
    const [, rotatedBundles] = await bundles.until(2);
    svids.cancel();
    bundles.cancel();
    const { chain, roots } = leafAndRoots(rotated!.svids[0]!);
    expect(chain[0]!.raw).toEqual(new X509Certificate(after.svid.certChainPem).raw);
    expect(roots).toHaveLength(2);
    expect(roots.some((r) => chain[0]!.verify(r.publicKey))).toBe(true);
    expect(splitDer(rotatedBundles!.bundles[TD_ID]!)).toHaveLength(2);
    expect(svids.messages).toHaveLength(2);
  });

  it('pushes a renewal on FetchX509SVID but does not repeat an unchanged bundle on FetchX509Bundles', async () => {
    const first = await makeSvid();
    const source = new TestIdentitySource(signer, first.svid);
    const c = await serve(source);
    const svids = collect(c.FetchX509SVID({}, securityHeader()));
    const bundles = collect(c.FetchX509Bundles({}, securityHeader()));
    await svids.until(1);
    await bundles.until(1);
    source.publish({ ...first.svid, notAfter: new Date(Date.now() + 7_200_000), certChainPem: (await makeSvid()).svid.certChainPem });
    await svids.until(2);
    source.publish(source.current()!);
    await new Promise((r) => setTimeout(r, 200));
    expect(svids.messages).toHaveLength(2);
    expect(bundles.messages).toHaveLength(1);
  });

  it('holds a stream opened before the agent has an SVID and answers it when the first SVID arrives', async () => {
    const source = new TestIdentitySource(signer);
    const c = await serve(source);
    const stream = collect(c.FetchX509SVID({}, securityHeader()));
    await new Promise((r) => setTimeout(r, 200));
    expect(stream.messages).toHaveLength(0);
    source.publish((await makeSvid()).svid);
    const [first] = await stream.until(1);
    stream.cancel();
    expect(first!.svids[0]!.spiffe_id).toBe(WORKLOAD_ID);
  });

  it('stops following the source when the client cancels its stream', async () => {
    const source = new TestIdentitySource(signer, (await makeSvid()).svid);
    const c = await serve(source);
    const idle = source.listenerCount;
    const stream = collect(c.FetchX509SVID({}, securityHeader()));
    await stream.until(1);
    expect(source.listenerCount).toBe(idle + 1);
    stream.cancel();
    await expect.poll(() => source.listenerCount).toBe(idle);
  });
});

describe('Workload API: JWT-SVIDs', () => {
  it('issues a JWT-SVID for audience orders that ValidateJWTSVID accepts, answering the SPIFFE ID and the claims', async () => {
    const c = await serve(new TestIdentitySource(signer, (await makeSvid()).svid));
    const fetched = await unary(c.FetchJWTSVID, c, { audience: ['orders'] });
    expect(fetched.svids).toHaveLength(1);
    expect(fetched.svids[0]!.spiffe_id).toBe(WORKLOAD_ID);
    const validated = await unary(c.ValidateJWTSVID, c, { audience: 'orders', svid: fetched.svids[0]!.svid });
    expect(validated.spiffe_id).toBe(WORKLOAD_ID);
    expect(validated.claims.fields.sub).toMatchObject({ stringValue: WORKLOAD_ID });
    expect(validated.claims.fields.aud).toMatchObject({ listValue: { values: [{ stringValue: 'orders' }] } });
    expect(typeof validated.claims.fields.exp!.numberValue).toBe('number');
  });

  it('refuses (InvalidArgument) a JWT-SVID validated for another audience', async () => {
    const c = await serve(new TestIdentitySource(signer, (await makeSvid()).svid));
    const { svids } = await unary(c.FetchJWTSVID, c, { audience: ['orders'] });
    await expect(unary(c.ValidateJWTSVID, c, { audience: 'payments', svid: svids[0]!.svid })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
  });

  it('refuses (InvalidArgument) a tampered JWT-SVID, one signed by a key outside the bundle, an expired one and one whose sub is not a SPIFFE ID', async () => {
    const c = await serve(new TestIdentitySource(signer, (await makeSvid()).svid));
    const { svids } = await unary(c.FetchJWTSVID, c, { audience: ['orders'] });
    const [header, payload, signature] = svids[0]!.svid.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    const tamperedPayload = Buffer.from(JSON.stringify({ ...claims, sub: `spiffe://${TRUST_DOMAIN}/ns/shop/sa/admin` })).toString('base64url');
    const impostor = await jwtSigner('jwt-key-1');
    const refused = [
      `${header}.${tamperedPayload}.${signature}`,
      await signJwtSvid(impostor, { sub: WORKLOAD_ID, aud: ['orders'] }),
      await signJwtSvid(signer, { sub: WORKLOAD_ID, aud: ['orders'], expSeconds: -120 }),
      await signJwtSvid(signer, { sub: 'orders', aud: ['orders'] }),
      await signJwtSvid(signer, { sub: 'spiffe://other.org/ns/shop/sa/orders', aud: ['orders'] }),
      'not-a-jwt',
    ];
    for (const token of refused) {
      await expect(unary(c.ValidateJWTSVID, c, { audience: 'orders', svid: token }), token).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    }
    // The untampered token still validates: the refusals above are about the token, not the server.
    await expect(unary(c.ValidateJWTSVID, c, { audience: 'orders', svid: svids[0]!.svid })).resolves.toMatchObject({ spiffe_id: WORKLOAD_ID });
  });

  it('refuses FetchJWTSVID without an audience (InvalidArgument) and for a SPIFFE ID the agent does not hold (PermissionDenied)', async () => {
    const c = await serve(new TestIdentitySource(signer, (await makeSvid()).svid));
    await expect(unary(c.FetchJWTSVID, c, { audience: [] })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: 'audience must be specified' });
    await expect(unary(c.FetchJWTSVID, c, { audience: ['orders'], spiffe_id: `spiffe://${TRUST_DOMAIN}/ns/shop/sa/admin` })).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
    await expect(unary(c.FetchJWTSVID, c, { audience: ['orders'], spiffe_id: WORKLOAD_ID })).resolves.toMatchObject({ svids: [{ spiffe_id: WORKLOAD_ID }] });
  });

  it('refuses ValidateJWTSVID without an audience or a token (InvalidArgument)', async () => {
    const c = await serve(new TestIdentitySource(signer, (await makeSvid()).svid));
    const { svids } = await unary(c.FetchJWTSVID, c, { audience: ['orders'] });
    await expect(unary(c.ValidateJWTSVID, c, { audience: '', svid: svids[0]!.svid })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    await expect(unary(c.ValidateJWTSVID, c, { audience: 'orders', svid: '' })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
  });

  it('serves the JWT bundle as a JWKS of the jwt-svid keys keyed by the trust domain ID, which verifies the JWT-SVID; pushes a key rotation', async () => {
    const source = new TestIdentitySource(signer, (await makeSvid()).svid);
    const c = await serve(source);
    const stream = collect(c.FetchJWTBundles({}, securityHeader()));
    const [first] = await stream.until(1);
    expect(Object.keys(first!.bundles)).toEqual([TD_ID]);
    const jwks = JSON.parse(first!.bundles[TD_ID]!.toString('utf8'));
    expect(jwks.keys.map((k: { kid: string; use?: string }) => [k.kid, k.use])).toEqual([['jwt-key-1', undefined]]);
    const { svids } = await unary(c.FetchJWTSVID, c, { audience: ['orders'] });
    await expect(jwtVerify(svids[0]!.svid, createLocalJWKSet(jwks), { audience: 'orders' })).resolves.toBeTruthy();

    source.signers = [await jwtSigner('jwt-key-2'), signer];
    source.publish(source.current()!);
    const [, rotated] = await stream.until(2);
    stream.cancel();
    expect(JSON.parse(rotated!.bundles[TD_ID]!.toString('utf8')).keys.map((k: { kid: string }) => k.kid)).toEqual(['jwt-key-2', 'jwt-key-1']);
  });
});

describe('Workload API: the JWT-SVID cache', () => {
  it('reuses a JWT-SVID for the same audiences (any order) until half its lifetime is gone, then asks meshward again; a renewal empties the cache', async () => {
    let offset = 0;
    const source = new TestIdentitySource(signer, (await makeSvid()).svid);
    const c = await serve(source, undefined, () => Date.now() + offset);
    const first = await unary(c.FetchJWTSVID, c, { audience: ['orders', 'payments'] });
    const again = await unary(c.FetchJWTSVID, c, { audience: ['payments', 'orders', 'orders'] });
    expect(again.svids[0]!.svid).toBe(first.svids[0]!.svid);
    expect(source.jwtSvidCalls).toBe(1);
    await unary(c.FetchJWTSVID, c, { audience: ['orders'] });
    expect(source.jwtSvidCalls).toBe(2);
    offset = 151_000; // the test source's tokens live 300 s
    const later = await unary(c.FetchJWTSVID, c, { audience: ['orders', 'payments'] });
    expect(source.jwtSvidCalls).toBe(3);
    source.publish(source.current()!);
    const afterRenewal = await unary(c.FetchJWTSVID, c, { audience: ['orders', 'payments'] });
    expect(source.jwtSvidCalls).toBe(4);
    expect(afterRenewal.svids[0]!.svid).not.toBe(later.svids[0]!.svid);
  });
});

describe('Workload API: the JWT bundle cache', () => {
  it('asks the source (meshward) for the JWT bundle once for many validations, and again after a source update', async () => {
    const source = new TestIdentitySource(signer, (await makeSvid()).svid);
    const c = await serve(source);
    const token = (await source.fetchJwtSvid(['orders'])).token;
    for (let i = 0; i < 20; i++) await unary(c.ValidateJWTSVID, c, { audience: 'orders', svid: token });
    expect(source.jwtBundleCalls).toBe(1);
    source.publish(source.current()!);
    await unary(c.ValidateJWTSVID, c, { audience: 'orders', svid: token });
    expect(source.jwtBundleCalls).toBe(2);
  });

  it('keeps validating with the last JWT bundle while meshward is unreachable, and refuses when it never had one', async () => {
    let now = 1_000_000;
    const source = new TestIdentitySource(signer, (await makeSvid()).svid);
    const c = await serve(source, undefined, () => now);
    const token = (await source.fetchJwtSvid(['orders'])).token;
    await unary(c.ValidateJWTSVID, c, { audience: 'orders', svid: token });
    source.jwtBundleDown = true;
    now += 3_600_000;
    await expect(unary(c.ValidateJWTSVID, c, { audience: 'orders', svid: token })).resolves.toMatchObject({ spiffe_id: WORKLOAD_ID });
    expect(source.jwtBundleCalls).toBe(2);

    const cold = new TestIdentitySource(signer, (await makeSvid()).svid);
    cold.jwtBundleDown = true;
    await api!.close();
    client!.close();
    const c2 = await serve(cold);
    await expect(unary(c2.ValidateJWTSVID, c2, { audience: 'orders', svid: token })).rejects.toMatchObject({ code: status.UNAVAILABLE });
    await expect(streamError(c2.FetchJWTBundles({}, securityHeader()))).resolves.toMatchObject({ code: status.UNAVAILABLE });
  });

  it('refetches once for a token signed by a key the cached bundle lacks (a JWT key rotation), but not for every such token', async () => {
    let now = 1_000_000;
    const source = new TestIdentitySource(signer, (await makeSvid()).svid);
    const c = await serve(source, undefined, () => now);
    await unary(c.ValidateJWTSVID, c, { audience: 'orders', svid: (await source.fetchJwtSvid(['orders'])).token });
    const next = await jwtSigner('jwt-key-2');
    const byNext = await signJwtSvid(next, { sub: WORKLOAD_ID, aud: ['orders'] });
    const unknown = await signJwtSvid(await jwtSigner('jwt-key-x'), { sub: WORKLOAD_ID, aud: ['orders'] });
    now += 2000;
    await expect(unary(c.ValidateJWTSVID, c, { audience: 'orders', svid: unknown })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    await expect(unary(c.ValidateJWTSVID, c, { audience: 'orders', svid: unknown })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(source.jwtBundleCalls).toBe(2);
    source.signers = [next, signer];
    now += 2000;
    await expect(unary(c.ValidateJWTSVID, c, { audience: 'orders', svid: byNext })).resolves.toMatchObject({ spiffe_id: WORKLOAD_ID });
    expect(source.jwtBundleCalls).toBe(3);
  });
});

describe('Workload API: the security header', () => {
  const withoutHeader = () => new Metadata();
  const wrongHeader = () => {
    const md = new Metadata();
    md.set('workload.spiffe.io', 'false');
    return md;
  };

  for (const [name, metadata] of [['without', withoutHeader], ['with a value other than true in', wrongHeader]] as const) {
    it(`refuses every method (InvalidArgument) ${name} the workload.spiffe.io header`, async () => {
      const source = new TestIdentitySource(signer, (await makeSvid()).svid);
      const c = await serve(source);
      const token = (await source.fetchJwtSvid(['orders'])).token;
      for (const stream of [c.FetchX509SVID({}, metadata()), c.FetchX509Bundles({}, metadata()), c.FetchJWTBundles({}, metadata()), c.FetchWITSVID({}, metadata()), c.FetchWITBundles({}, metadata())]) {
        await expect(streamError(stream)).resolves.toMatchObject({ code: status.INVALID_ARGUMENT, details: 'security header missing from request' });
      }
      await expect(unary(c.FetchJWTSVID, c, { audience: ['orders'] }, metadata())).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
      await expect(unary(c.ValidateJWTSVID, c, { audience: 'orders', svid: token }, metadata())).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    });
  }

  it('answers UNIMPLEMENTED for the WIT-SVID profile when the header is present', async () => {
    const c = await serve(new TestIdentitySource(signer, (await makeSvid()).svid));
    await expect(streamError(c.FetchWITSVID({}, securityHeader()))).resolves.toMatchObject({ code: status.UNIMPLEMENTED });
    await expect(streamError(c.FetchWITBundles({}, securityHeader()))).resolves.toMatchObject({ code: status.UNIMPLEMENTED });
  });
});

describe('Workload API: the socket', () => {
  it('creates the socket with mode 0600 by default and 0660 when asked, and removes it on close', async () => {
    const source = new TestIdentitySource(signer, (await makeSvid()).svid);
    await serve(source);
    const file = api!.socketPath;
    expect(statSync(file).isSocket()).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    await api!.close();
    api = undefined;
    expect(() => statSync(file)).toThrow(/ENOENT/);
    await serve(source, 0o660);
    expect(statSync(api!.socketPath).mode & 0o777).toBe(0o660);
  });

  it('ends open streams with UNAVAILABLE on close so clients reconnect', async () => {
    const c = await serve(new TestIdentitySource(signer, (await makeSvid()).svid));
    const stream = collect(c.FetchX509SVID({}, securityHeader()));
    await stream.until(1);
    await api!.close();
    api = undefined;
    await expect.poll(() => stream.error()?.code).toBe(status.UNAVAILABLE);
  });

  it('refuses a socket path held by a live server (UNAVAILABLE) or by a file that is not a socket, and replaces a stale socket', async () => {
    const source = new TestIdentitySource(signer, (await makeSvid()).svid);
    await serve(source);
    const socketPath = api!.socketPath;
    await expect(startWorkloadApi({ socketPath, source, logger: silentLogger(), registry: createRegistry() })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    const notASocket = path.join(dir, 'file');
    writeFileSync(notASocket, 'x');
    await expect(startWorkloadApi({ socketPath: notASocket, source, logger: silentLogger(), registry: createRegistry() })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(startWorkloadApi({ socketPath: 'tcp://127.0.0.1:1', source, logger: silentLogger(), registry: createRegistry() })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });

    // A socket file nobody listens on any more (an agent killed with SIGKILL leaves one).
    const stale = path.join(dir, 'stale.sock');
    const listener = createServer();
    await new Promise<void>((resolve) => listener.listen(path.join(dir, 'tmp.sock'), resolve));
    renameSync(path.join(dir, 'tmp.sock'), stale);
    await new Promise<void>((resolve) => listener.close(() => resolve()));
    expect(statSync(stale).isSocket()).toBe(true);
    const replaced = await startWorkloadApi({ socketPath: `unix://${stale}`, source, logger: silentLogger(), registry: createRegistry() });
    const other = workloadApiClient(replaced.socketPath);
    const stream = collect(other.FetchX509Bundles({}, securityHeader()));
    await stream.until(1);
    stream.cancel();
    other.close();
    await replaced.close();
  });
});
