/**
 * Fixtures for the Workload API tests: an identity source fed with real certificates (a CA made
 * per run) and real JWT-SVIDs (jose, ES256), and a client built from the shared upstream proto.
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials, type GrpcObject, loadPackageDefinition, Metadata, type ServiceClientConstructor } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { exportJWK, SignJWT } from 'jose';
import type { AgentIdentitySource, AgentSvid } from '../../src/agent/index.ts';
import { createTestCa } from '../helpers/tls.ts';

export const TRUST_DOMAIN = 'example.org';
export const WORKLOAD_ID = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const sharedProto = path.resolve(repoRoot, '..', 'shared', 'protos', 'spiffe', 'workload', 'workload.proto');
const projectProto = path.join(repoRoot, 'proto', 'spiffe', 'workload', 'workload.proto');

/** The upstream proto (../shared); the project's copy only when ../shared is absent (said once). */
export function upstreamProtoFile(): string {
  if (existsSync(sharedProto)) return sharedProto;
  console.warn(`${sharedProto} is absent: the Workload API client is built from the project's proto/ copy instead`);
  return projectProto;
}

/** A Workload API client the way a third party builds one: the upstream file, proto-loader defaults. */
export function workloadApiClient(socketPath: string): WorkloadClient {
  const definition = protoLoader.loadSync(upstreamProtoFile(), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const grpc = loadPackageDefinition(definition) as GrpcObject & { SpiffeWorkloadAPI: ServiceClientConstructor };
  return new grpc.SpiffeWorkloadAPI(`unix://${socketPath}`, credentials.createInsecure()) as unknown as WorkloadClient;
}

/** The metadata every Workload API client sends. */
export function securityHeader(): Metadata {
  const md = new Metadata();
  md.set('workload.spiffe.io', 'true');
  return md;
}

type Callback<T> = (err: (Error & { code?: number }) | null, response: T) => void;
export interface Readable<T> {
  on(event: 'data', listener: (message: T) => void): Readable<T>;
  on(event: 'error', listener: (err: Error & { code?: number }) => void): Readable<T>;
  on(event: string, listener: (...args: unknown[]) => void): Readable<T>;
  cancel(): void;
}
export interface X509SvidMessage { spiffe_id: string; x509_svid: Buffer; x509_svid_key: Buffer; bundle: Buffer; hint: string }
export interface WorkloadClient {
  FetchX509SVID(request: object, md: Metadata): Readable<{ svids: X509SvidMessage[]; federated_bundles: Record<string, Buffer> }>;
  FetchX509Bundles(request: object, md: Metadata): Readable<{ bundles: Record<string, Buffer> }>;
  FetchJWTBundles(request: object, md: Metadata): Readable<{ bundles: Record<string, Buffer> }>;
  FetchWITSVID(request: object, md: Metadata): Readable<unknown>;
  FetchWITBundles(request: object, md: Metadata): Readable<unknown>;
  FetchJWTSVID(request: { audience: string[]; spiffe_id?: string }, md: Metadata, cb: Callback<{ svids: { spiffe_id: string; svid: string }[] }>): void;
  ValidateJWTSVID(request: { audience: string; svid: string }, md: Metadata, cb: Callback<{ spiffe_id: string; claims: { fields: Record<string, Record<string, unknown>> } }>): void;
  close(): void;
}

/** Promisified unary call: resolves with the response or rejects with the gRPC error. */
export function unary<Req, Res>(fn: (req: Req, md: Metadata, cb: Callback<Res>) => void, client: WorkloadClient, request: Req, md = securityHeader()): Promise<Res> {
  return new Promise((resolve, reject) => fn.call(client, request, md, (err, res) => (err ? reject(err) : resolve(res))));
}

/** Collects a stream's messages; `next()` waits for the next one. */
export function collect<T>(stream: Readable<T>) {
  const messages: T[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  let failure: (Error & { code?: number }) | undefined;
  const failed: { reject?: (err: Error) => void }[] = [];
  stream.on('data', (m) => {
    messages.push(m);
    for (const w of waiters.splice(0)) if (messages.length >= w.count) w.resolve(); else waiters.push(w);
  });
  stream.on('error', (err) => {
    failure = err;
    for (const f of failed) f.reject?.(err);
  });
  return {
    messages,
    error: () => failure,
    /** Resolves when `count` messages have arrived; rejects on a stream error or after 10 s. */
    until(count: number): Promise<T[]> {
      if (messages.length >= count) return Promise.resolve(messages);
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`stream: ${messages.length} of ${count} messages after 10 s`)), 10_000);
        waiters.push({ count, resolve: () => { clearTimeout(timer); resolve(messages); } });
        failed.push({ reject: (err) => { clearTimeout(timer); reject(err); } });
      });
    },
    cancel: () => stream.cancel(),
  };
}

/** Waits for a stream to end in error (its gRPC status). */
export function streamError(stream: Readable<unknown>): Promise<Error & { code?: number }> {
  return new Promise((resolve, reject) => {
    stream.on('error', resolve);
    stream.on('data', () => reject(new Error('the stream answered instead of failing')));
  });
}

export interface JwtSigner {
  kid: string;
  privateKey: KeyObject;
  publicJwk: Record<string, unknown>;
}

export async function jwtSigner(kid: string): Promise<JwtSigner> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256' } };
}

export function signJwtSvid(signer: JwtSigner, claims: { sub: string; aud: string[]; expSeconds?: number }): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: signer.kid, typ: 'JWT' })
    .setSubject(claims.sub).setAudience(claims.aud).setIssuedAt(now).setExpirationTime(now + (claims.expSeconds ?? 300))
    .sign(signer.privateKey);
}

/** An SVID of WORKLOAD_ID from a fresh CA; `bundleRoots` are the trusted roots (default: that CA). */
export async function makeSvid(options: { extraRoots?: string[] } = {}): Promise<{ svid: AgentSvid; caPem: string }> {
  const ca = await createTestCa(`test CA ${Math.random().toString(16).slice(2, 8)}`);
  const leaf = await ca.sign({ uri: WORKLOAD_ID });
  return {
    caPem: ca.certPem,
    svid: {
      spiffeId: WORKLOAD_ID,
      certChainPem: leaf.certPem,
      privateKey: createPrivateKey(leaf.keyPem),
      notAfter: new Date(Date.now() + 3_600_000),
      bundlePem: [...(options.extraRoots ?? []), ca.certPem].join(''),
      trustDomain: TRUST_DOMAIN,
    },
  };
}

/**
 * An AgentIdentitySource driven by the test: `publish` plays a renewal or rotation. Its JWT bundle
 * is a SPIFFE bundle as meshward publishes it (an x509-svid root entry next to the jwt-svid keys).
 */
export class TestIdentitySource implements AgentIdentitySource {
  #svid: AgentSvid | undefined;
  readonly #listeners = new Set<(svid: AgentSvid) => void>();
  signers: JwtSigner[];
  /** Calls of jwtBundle() (each is a request to meshward in the real agent). */
  jwtBundleCalls = 0;
  /** Calls of fetchJwtSvid() (each is a request to meshward in the real agent). */
  jwtSvidCalls = 0;
  /** Plays meshward unreachable for jwtBundle(). */
  jwtBundleDown = false;

  constructor(signer: JwtSigner, svid?: AgentSvid) {
    this.signers = [signer];
    this.#svid = svid;
  }

  current(): AgentSvid | undefined {
    return this.#svid;
  }

  subscribe(listener: (svid: AgentSvid) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }

  publish(svid: AgentSvid): void {
    this.#svid = svid;
    for (const listener of this.#listeners) listener(svid);
  }

  async fetchJwtSvid(audiences: string[]) {
    this.jwtSvidCalls++;
    const token = await signJwtSvid(this.signers[0]!, { sub: WORKLOAD_ID, aud: audiences });
    return { spiffeId: WORKLOAD_ID, token, expiresAt: new Date(Date.now() + 300_000) };
  }

  async jwtBundle() {
    this.jwtBundleCalls++;
    if (this.jwtBundleDown) throw new Error('connect ECONNREFUSED 127.0.0.1:8080');
    const x509Root = { kty: 'EC', crv: 'P-256', use: 'x509-svid', x: this.signers[0]!.publicJwk.x, y: this.signers[0]!.publicJwk.y, x5c: ['AA=='] };
    const keys = [x509Root, ...this.signers.map((s) => ({ ...s.publicJwk, use: 'jwt-svid' }))];
    return { trustDomain: TRUST_DOMAIN, jwks: Buffer.from(JSON.stringify({ keys, spiffe_sequence: 1 })) };
  }
}

/** Splits concatenated DER certificates (each an ASN.1 SEQUENCE with a definite length). */
export function splitDer(der: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset < der.length) {
    if (der[offset] !== 0x30) throw new Error(`not a DER SEQUENCE at byte ${offset}`);
    let length = der[offset + 1]!;
    let header = 2;
    if (length & 0x80) {
      const bytes = length & 0x7f;
      length = der.subarray(offset + 2, offset + 2 + bytes).reduce((acc, b) => acc * 256 + b, 0);
      header += bytes;
    }
    parts.push(der.subarray(offset, offset + header + length));
    offset += header + length;
  }
  return parts;
}
