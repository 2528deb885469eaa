/** Starts meshward with the ca and sds capabilities on loopback, with a fake clock, and SDS clients. */
import { credentials, type ClientDuplexStream, Metadata, type ServiceError } from '@grpc/grpc-js';
import { createCaCapability, type CaCapability } from '../../src/ca/index.ts';
import { signBootstrapToken, loadOrCreateBootstrapKey } from '../../src/identity/index.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { envoyService } from '../../src/lib/protos.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { createSdsCapability } from '../../src/sds/index.ts';
import type { CapabilityFactory } from '../../src/server/capability.ts';
import { doc, removeDir, tempDir, writeConfigDir } from '../helpers/config.ts';

export const TRUST_DOMAIN = 'example.org';

export interface Harness {
  meshward: Meshward;
  clock: FakeClock;
  ca: CaCapability;
  dataDir: string;
  configDir: string;
  /** A bootstrap token for the workload, valid 24 h unless `ttlMs` says otherwise. */
  token(namespace: string, serviceAccount: string, ttlMs?: number): Promise<string>;
  client(): SdsClient;
  close(): Promise<void>;
}

export interface SdsClient {
  StreamSecrets(md: Metadata): ClientDuplexStream<object, DiscoveryResponseMsg>;
  DeltaSecrets(md: Metadata): ClientDuplexStream<object, DeltaResponseMsg>;
  FetchSecrets(req: object, md: Metadata, cb: (err: ServiceError | null, res: DiscoveryResponseMsg) => void): void;
  close(): void;
}

export interface SecretMsg {
  '@type': string;
  name: string;
  tls_certificate?: { certificate_chain: { inline_bytes: Buffer }; private_key: { inline_bytes: Buffer } };
  validation_context?: { trusted_ca: { inline_bytes: Buffer } };
}

export interface DiscoveryResponseMsg {
  version_info: string;
  resources: SecretMsg[];
  type_url: string;
  nonce: string;
}

export interface DeltaResponseMsg {
  system_version_info: string;
  resources: { name: string; version: string; resource: SecretMsg }[];
  nonce: string;
}

export async function startHarness(options: { dataDir?: string; clock?: FakeClock; meshSpec?: string; extraCapabilities?: CapabilityFactory[] } = {}): Promise<Harness> {
  const clock = options.clock ?? new FakeClock();
  const dataDir = options.dataDir ?? tempDir('mw-sds-data-');
  const configDir = writeConfigDir({ 'mesh.yaml': doc('Mesh', 'mesh', options.meshSpec ?? `trustDomain: ${TRUST_DOMAIN}`) });
  const meshward = await createMeshward(
    { configDir, dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false },
    { clock, logger: silentLogger(), registry: createRegistry(), capabilities: [createCaCapability, createSdsCapability, ...(options.extraCapabilities ?? [])] },
  );
  await meshward.start();
  const ca = meshward.capability<CaCapability>('ca')!;
  const clients: SdsClient[] = [];
  return {
    meshward, clock, ca, dataDir, configDir,
    async token(namespace, serviceAccount, ttlMs = 24 * 3_600_000) {
      const key = await loadOrCreateBootstrapKey(dataDir);
      return signBootstrapToken(key, { namespace, serviceAccount, ttlMs, nowMs: clock.now() });
    },
    client() {
      const Ctor = envoyService('envoy.service.secret.v3.SecretDiscoveryService');
      const c = new Ctor(meshward.addresses.grpc, credentials.createInsecure()) as unknown as SdsClient;
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients) c.close();
      await meshward.stop();
      removeDir(dataDir);
      removeDir(configDir);
    },
  };
}

export function bearer(token: string): Metadata {
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
}

/** Reads a stream's messages in order; `next()` resolves with the next one or rejects on error. */
export function reader<T>(stream: ClientDuplexStream<object, T>) {
  const queue: T[] = [];
  const waiters: { resolve: (v: T) => void; reject: (e: unknown) => void }[] = [];
  let failure: unknown;
  stream.on('data', (m: T) => {
    const w = waiters.shift();
    if (w) w.resolve(m);
    else queue.push(m);
  });
  stream.on('error', (err) => {
    failure = err;
    for (const w of waiters.splice(0)) w.reject(err);
  });
  return {
    next(): Promise<T> {
      if (queue.length) return Promise.resolve(queue.shift()!);
      if (failure) return Promise.reject(failure);
      return new Promise<T>((resolve, reject) => waiters.push({ resolve, reject }));
    },
    pending: () => queue.length,
  };
}

export const SECRET_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
