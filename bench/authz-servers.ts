/**
 * The servers the ext_authz benchmark compares, shared by bench/authz.bench.ts (which runs them in
 * its own process for the throughput rounds) and bench/authz-server.ts (which runs one per child
 * process for the latency measurement, so one server's heap and GC do not colour another's).
 */
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { AuthzCapability } from '../src/authz/index.ts';
import { createAuthzCapability } from '../src/authz/index.ts';
import { authorizationServiceDefinition } from '../src/authz/proto.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { createRegistry } from '../src/lib/metrics.ts';
import { createMeshward } from '../src/meshward.ts';
import type { CapabilityFactory } from '../src/server/capability.ts';

export const ISSUER = 'https://auth.bench.example';

export type ServerKind = 'trivial' | 'bare' | 'full' | 'full-grpcjs' | 'full-tls' | 'full-unary';

export const SERVER_NAMES: Record<ServerKind, string> = {
  trivial: 'trivial grpc-js handler',
  bare: 'pipeline without audit (JWT + 50 YAML policies)',
  full: 'full pipeline (JWT + 50 YAML policies + audit to SQLite)',
  'full-grpcjs': 'full pipeline, Check through grpc-js (--no-grpc-fast-path)',
  'full-tls': 'full pipeline over TLS (--grpc-tls-cert/--grpc-tls-key)',
  'full-unary': 'full pipeline on the unary gRPC port (--unary-grpc-addr)',
};

export function grpcFrame(message: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

export async function startTrivial(): Promise<{ port: number; stop(): Promise<void> }> {
  const server = new Server({ 'grpc.max_concurrent_streams': 100_000 });
  server.addService(authorizationServiceDefinition(), { Check: (_call: unknown, cb: (e: null, r: object) => void) => cb(null, { status: { code: 0 }, okResponse: {} }) });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { port, stop: () => new Promise((r) => server.tryShutdown(() => r())) };
}

/** Writes the benchmark configuration (JWT rule + 50 AuthorizationPolicies) into `dir`; returns a valid token. */
export async function pipelineConfig(dir: string): Promise<{ token: string }> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', alg: 'ES256' };
  const token = await new SignJWT({ sub: 'alice', groups: ['admin'] }).setProtectedHeader({ alg: 'ES256', kid: 'bench' })
    .setIssuer(ISSUER).setAudience('shop').setIssuedAt().setExpirationTime('2h').sign(privateKey);
  const doc = (kind: string, name: string, ns: string, spec: object) => JSON.stringify({ apiVersion: 'meshward.io/v1', kind, metadata: { name, namespace: ns }, spec });
  const docs = [
    doc('Mesh', 'mesh', 'default', { audit: { store: 'sqlite' } }),
    doc('Service', 'orders', 'shop', { serviceAccount: 'orders', labels: { app: 'orders' }, ports: [{ name: 'http', port: 8080 }] }),
    doc('RequestAuthentication', 'jwt', 'shop', { selector: { matchLabels: { app: 'orders' } }, jwtRules: [{ issuer: ISSUER, audiences: ['shop'], jwks: JSON.stringify({ keys: [jwk] }), outputPayloadToHeader: 'x-jwt-payload' }] }),
    doc('AuthorizationPolicy', 'deny-debug', 'meshward-system', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/debug/*'] } }] }] }),
    ...Array.from({ length: 48 }, (_, i) => doc('AuthorizationPolicy', `allow-${i}`, 'shop', {
      selector: { matchLabels: { app: 'orders' } },
      rules: [
        { from: [{ source: { principals: [`cluster.local/ns/shop/sa/caller${i}`] } }], to: [{ operation: { methods: ['GET', 'POST'], paths: [`/api/v${i}/*`] } }] },
        { from: [{ source: { requestPrincipals: [`${ISSUER}/*`] } }], to: [{ operation: { paths: [`/api/orders/${i}`] } }], when: [{ key: 'request.auth.claims[groups]', values: ['admin'] }] },
      ],
    })),
    doc('AuthorizationPolicy', 'audit-writes', 'shop', { action: 'AUDIT', rules: [{ to: [{ operation: { methods: ['POST', 'DELETE'] } }] }] }),
  ];
  writeFileSync(path.join(dir, 'bench.yaml'), docs.join('\n---\n'));
  return { token };
}

export function checkRequestBody(token: string): Buffer {
  const request = {
    attributes: {
      source: { principal: 'spiffe://cluster.local/ns/shop/sa/web', address: { socketAddress: { address: '10.1.2.3', portValue: 41000 } } },
      destination: { principal: 'spiffe://cluster.local/ns/shop/sa/orders', address: { socketAddress: { address: '10.0.0.1', portValue: 8080 } } },
      request: { http: { id: 'bench', method: 'GET', path: '/api/orders/47?expand=items', host: 'orders.shop.svc', scheme: 'http', protocol: 'HTTP/1.1', headers: { authorization: `Bearer ${token}`, 'user-agent': 'bench', 'x-request-id': 'bench' } } },
    },
  };
  return authorizationServiceDefinition().Check!.requestSerialize(request);
}

export interface AuditHandle { flush(): Promise<void>; stats(): { written: number; rejected: number; queued: number } }

export async function startPipeline(dir: string, work: string, withAudit: boolean, name: string, grpcFastPath = true, grpcTls?: { certFile: string; keyFile: string }, unary = false): Promise<{ port: number; tls?: boolean; audit?: AuditHandle; authz: AuthzCapability; stop(): Promise<void> }> {
  const capabilities: CapabilityFactory[] = [];
  let audit = false;
  if (withAudit) {
    try {
      const mod = await import('../src/audit/index.ts');
      capabilities.push(mod.createAuditCapability as CapabilityFactory);
      audit = true;
    } catch (err) {
      process.stdout.write(`audit capability not available (${(err as Error).message}); benching without it\n`);
    }
  }
  capabilities.push(createAuthzCapability);
  const mw = await createMeshward(
    { configDir: dir, dataDir: path.join(work, `data-${name}`), grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false, grpcFastPath, ...(grpcTls ? { grpcTls } : {}), ...(unary ? { unaryGrpcAddress: '127.0.0.1:0' } : {}) },
    { logger: silentLogger(), registry: createRegistry(), capabilities },
  );
  await mw.start();
  const handle = audit ? mw.capability('audit') as unknown as AuditHandle : undefined;
  return { port: Number((unary ? mw.addresses.unary! : mw.addresses.grpc).split(':').pop()), ...(grpcTls ? { tls: true } : {}), ...(handle ? { audit: handle } : {}), authz: mw.capability<AuthzCapability>('authz')!, stop: () => mw.stop() };
}

/** Starts one kind of server; `work` holds its data directory. */
export async function startServer(kind: ServerKind, configDir: string, work: string): Promise<{ port: number; tls?: boolean; audit?: AuditHandle; authz?: AuthzCapability; stop(): Promise<void> }> {
  if (kind === 'trivial') return startTrivial();
  return startPipeline(configDir, work, kind !== 'bare', kind, kind !== 'full-grpcjs', kind === 'full-tls' ? selfSignedPair(work) : undefined, kind === 'full-unary');
}

/** A throwaway P-256 certificate for 127.0.0.1, made with the openssl CLI (h2load does not verify it). */
function selfSignedPair(work: string): { certFile: string; keyFile: string } {
  mkdirSync(work, { recursive: true });
  const certFile = path.join(work, 'bench-tls.pem');
  const keyFile = path.join(work, 'bench-tls-key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile,
    '-days', '1', '-subj', '/CN=meshward-bench', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { certFile, keyFile };
}

/** Writes the config and the gRPC-framed CheckRequest body h2load sends; returns the body file. */
export async function prepareBenchInputs(work: string): Promise<{ configDir: string; bodyFile: string; token: string }> {
  const configDir = path.join(work, 'config');
  mkdirSync(configDir, { recursive: true });
  const { token } = await pipelineConfig(configDir);
  const bodyFile = path.join(work, 'check.bin');
  writeFileSync(bodyFile, grpcFrame(checkRequestBody(token)));
  return { configDir, bodyFile, token };
}
