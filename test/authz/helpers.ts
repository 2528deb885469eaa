/** In-process meshward with the authz capability, a real grpc-js client on the official protos, and JWT fixtures. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import type { DecisionRecordV1 } from '../../src/audit/record.ts';
import { type AuthzCapability, createAuthzCapability } from '../../src/authz/index.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { envoyService } from '../../src/lib/protos.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import type { Capability, CapabilityContext, CapabilityFactory } from '../../src/server/capability.ts';

export function yamlDoc(kind: string, name: string, namespace: string, spec: string): string {
  const body = spec.trim().split('\n').map((l) => `  ${l}`).join('\n');
  return `apiVersion: meshward.io/v1\nkind: ${kind}\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\nspec:\n${body}\n`;
}

export const SERVICES = [
  yamlDoc('Service', 'orders', 'shop', 'serviceAccount: orders\nlabels: { app: orders }\nports:\n  - { name: http, port: 8080 }'),
  yamlDoc('Service', 'web', 'shop', 'serviceAccount: web\nlabels: { app: web }\nports:\n  - { name: http, port: 8080 }'),
].join('---\n');

/** Lets the `web` service account call the `orders` workload (and nobody else). */
export const ORDERS_FROM_WEB = yamlDoc('AuthorizationPolicy', 'orders-from-web', 'shop', [
  'selector: { matchLabels: { app: orders } }',
  'rules:',
  '  - from:',
  '      - source: { principals: ["cluster.local/ns/shop/sa/web"] }',
].join('\n'));

export interface Harness {
  mw: Meshward;
  authz: AuthzCapability;
  clock: FakeClock;
  records: DecisionRecordV1[];
  configDir: string;
  /** The admin API token created in the data directory. */
  adminToken(): string;
  /** Sends a CheckRequest (snake_case, as Envoy) and resolves the CheckResponse or rejects with the gRPC error. */
  check(request: object): Promise<CheckResponse>;
  writeConfig(files: Record<string, string>): void;
  close(): Promise<void>;
}

export interface CheckResponse {
  status: { code: number; message?: string };
  ok_response?: {
    headers?: { header: { key: string; value: string } }[];
    headers_to_remove?: string[];
    response_headers_to_add?: { header: { key: string; value: string } }[];
    query_parameters_to_set?: { key: string; value: string }[];
    query_parameters_to_remove?: string[];
  };
  denied_response?: { status: { code: string }; headers?: { header: { key: string; value: string } }[]; body: string };
  dynamic_metadata?: { fields: Record<string, { stringValue?: string; structValue?: unknown; numberValue?: number }> };
}

export async function startAuthz(files: Record<string, string>, options: { configure?: (authz: AuthzCapability) => void; audit?: boolean; grpcFastPath?: boolean } = {}): Promise<Harness> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'mw-authz-'));
  const configDir = path.join(root, 'config');
  const writeConfig = (fs: Record<string, string>) => {
    for (const [name, content] of Object.entries(fs)) {
      mkdirSync(path.dirname(path.join(configDir, name)), { recursive: true });
      writeFileSync(path.join(configDir, name), content);
    }
  };
  writeConfig(files);
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const records: DecisionRecordV1[] = [];
  const auditFactory: CapabilityFactory = () => ({ name: 'audit', append: (r: DecisionRecordV1) => records.push(structuredClone(r)) }) as Capability;
  const authzFactory: CapabilityFactory = (ctx: CapabilityContext) => {
    const authz = createAuthzCapability(ctx);
    options.configure?.(authz);
    return authz;
  };
  const mw = await createMeshward(
    { configDir, dataDir: path.join(root, 'data'), grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false, ...(options.grpcFastPath === undefined ? {} : { grpcFastPath: options.grpcFastPath }) },
    { logger: silentLogger(), registry: createRegistry(), clock, capabilities: [...(options.audit === false ? [] : [auditFactory]), authzFactory] },
  );
  await mw.start();
  const Client = envoyService('envoy.service.auth.v3.Authorization');
  const client = new Client(mw.addresses.grpc, credentials.createInsecure());
  const check = (request: object) => new Promise<CheckResponse>((resolve, reject) => {
    (client as unknown as { Check(r: object, cb: (err: ServiceError | null, res: CheckResponse) => void): void }).Check(request, (err, res) => (err ? reject(err) : resolve(res)));
  });
  return {
    mw, authz: mw.capability<AuthzCapability>('authz')!, clock, records, configDir, check, writeConfig,
    adminToken: () => readFileSync(path.join(root, 'data', 'admin.token'), 'utf8').trim(),
    async close() {
      client.close();
      await mw.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A CheckRequest as Envoy sends it (snake_case JSON of the official proto). */
export function checkRequest(over: {
  method?: string; path?: string; host?: string; headers?: Record<string, string>; body?: string;
  source?: string; destination?: string; contextExtensions?: Record<string, string>; sourceIp?: string; port?: number;
} = {}): object {
  return {
    attributes: {
      source: { principal: over.source ?? 'spiffe://cluster.local/ns/shop/sa/web', address: { socket_address: { address: over.sourceIp ?? '10.1.2.3', port_value: 41000 } } },
      destination: { principal: over.destination ?? 'spiffe://cluster.local/ns/shop/sa/orders', address: { socket_address: { address: '10.0.0.1', port_value: over.port ?? 8080 } } },
      request: { http: { id: 'req-1', method: over.method ?? 'GET', path: over.path ?? '/api/orders', host: over.host ?? 'orders.shop.svc', headers: { 'x-request-id': 'req-1', ...(over.headers ?? {}) }, ...(over.body !== undefined ? { body: over.body } : {}) } },
      context_extensions: over.contextExtensions ?? {},
    },
  };
}

export function headerOf(list: { header: { key: string; value: string } }[] | undefined, name: string): string | undefined {
  return list?.find((h) => h.header.key.toLowerCase() === name)?.header.value;
}

export interface Issuer {
  issuer: string;
  kid: string;
  jwks(): { keys: JWK[] };
  sign(claims: JWTPayload, options?: { expiresInS?: number; audience?: string; issuer?: string; kid?: string }): Promise<string>;
  rotate(): Promise<void>;
}

/** An ES256 issuer whose keys are generated per run (never committed). */
export async function createIssuer(issuer: string, clock: { now(): number }): Promise<Issuer> {
  let n = 0;
  let keys = await generateKeyPair('ES256', { extractable: true });
  let kid = `k${n}`;
  const published: JWK[] = [];
  const publish = async () => published.push({ ...(await exportJWK(keys.publicKey)), kid, alg: 'ES256', use: 'sig' });
  await publish();
  return {
    issuer,
    get kid() { return kid; },
    jwks: () => ({ keys: published }),
    async sign(claims, o = {}) {
      const now = Math.floor(clock.now() / 1000);
      return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: o.kid ?? kid }).setIssuer(o.issuer ?? issuer).setIssuedAt(now)
        .setExpirationTime(now + (o.expiresInS ?? 300)).setAudience(o.audience ?? 'shop').sign(keys.privateKey);
    },
    async rotate() {
      n++;
      keys = await generateKeyPair('ES256', { extractable: true });
      kid = `k${n}`;
      await publish();
    },
  };
}

/** Serves a JWKS on 127.0.0.1:0; `fail` makes it answer 500. */
export async function serveJwks(jwks: () => object): Promise<{ url: string; fail: boolean; hits: number; close(): Promise<void> }> {
  const state = { url: '', fail: false, hits: 0, close: async () => {} };
  const server = http.createServer((_req, res) => {
    state.hits++;
    if (state.fail) {
      res.writeHead(500).end('down');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  state.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return state;
}
