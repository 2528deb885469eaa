/** A sidecar stand-in: a real grpc-js client on the official ADS protos, with a response queue. */
import { credentials, Metadata, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { envoyService } from '../../src/lib/protos.ts';
import { MeshwardError } from '../../src/lib/errors.ts';
import { generateKeyPairSync } from 'node:crypto';
import type { WorkloadAuthenticator, WorkloadIdentity } from '../../src/xds/identity.ts';
import type { BundleLike, SecretProvider, SvidLike } from '../../src/xds/secrets.ts';

type Json = Record<string, unknown>;

export const TYPE = {
  sds: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
  cds: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  eds: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  lds: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  rds: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
} as const;

/**
 * Accepts `Bearer token:<namespace>:<serviceAccount>[@<validUntil ms>]`; anything else is
 * UNAUTHENTICATED.
 */
export const fakeAuthenticator: WorkloadAuthenticator = {
  async authenticate(metadata: Metadata): Promise<WorkloadIdentity> {
    const header = String(metadata.get('authorization')[0] ?? '');
    const m = /^Bearer token:([a-z0-9-]+):([a-z0-9-]+)(?:@(\d+))?$/.exec(header);
    if (!m) throw new MeshwardError('UNAUTHENTICATED', 'invalid or missing bearer token');
    const identity = { spiffeId: `spiffe://example.org/ns/${m[1]}/sa/${m[2]}`, trustDomain: 'example.org', namespace: m[1]!, serviceAccount: m[2]!, via: 'test-token' };
    return m[3] === undefined ? identity : { ...identity, validUntil: Number(m[3]) };
  },
};

export function node(id: string, meta: Record<string, string> = {}): Json {
  return { id, cluster: 'test', metadata: { fields: Object.fromEntries(Object.entries(meta).map(([k, v]) => [k, { stringValue: v }])) } };
}

export class AdsClient {
  readonly #client: InstanceType<ReturnType<typeof envoyService>>;
  readonly #call: ClientDuplexStream<Json, Json>;
  readonly #queue: Json[] = [];
  readonly #waiters: { resolve: (r: Json) => void; reject: (e: Error) => void }[] = [];
  error?: ServiceError;

  constructor(address: string, mode: 'sotw' | 'delta', token?: string) {
    const Ads = envoyService('envoy.service.discovery.v3.AggregatedDiscoveryService');
    this.#client = new Ads(address, credentials.createInsecure());
    const md = new Metadata();
    if (token) md.set('authorization', `Bearer ${token}`);
    const method = mode === 'sotw' ? 'StreamAggregatedResources' : 'DeltaAggregatedResources';
    this.#call = (this.#client as unknown as Record<string, (md: Metadata) => ClientDuplexStream<Json, Json>>)[method]!.call(this.#client, md);
    this.#call.on('data', (r: Json) => {
      const w = this.#waiters.shift();
      if (w) w.resolve(r);
      else this.#queue.push(r);
    });
    this.#call.on('error', (e: ServiceError) => {
      this.error = e;
      for (const w of this.#waiters.splice(0)) w.reject(e);
    });
  }

  send(req: Json): void {
    this.#call.write(req);
  }

  /** The next response (rejects if the stream fails first). */
  next(): Promise<Json> {
    const r = this.#queue.shift();
    if (r) return Promise.resolve(r);
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Resolves with the stream's error status. */
  failure(): Promise<ServiceError> {
    if (this.error) return Promise.resolve(this.error);
    return new Promise((resolve) => this.#call.on('error', resolve));
  }

  close(): void {
    this.#call.cancel();
    this.#client.close();
  }
}

/** Resource names of a SotW response (decoded Any has the resource fields next to "@type"). */
export function names(res: Json): string[] {
  return ((res.resources as Json[]) ?? []).map((r) => String(r.name ?? r.cluster_name));
}

export function deltaNames(res: Json): string[] {
  return ((res.resources as Json[]) ?? []).map((r) => String(r.name));
}

/** A CA stand-in: one key per identity (generated here), serial bumped on rotate(). */
export class FakeSecrets implements SecretProvider {
  readonly #svids = new Map<string, SvidLike>();
  readonly #listeners = new Map<string, Set<(s: SvidLike) => void>>();
  readonly #bundleListeners = new Set<(b: BundleLike) => void>();
  #bundle: BundleLike = { sequence: 1, rootsPem: '-----BEGIN CERTIFICATE-----\nroot-1\n-----END CERTIFICATE-----\n' };
  #serial = 0;

  #issue(spiffeId: string): SvidLike {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const svid = { svid: { serial: (++this.#serial).toString(16), chainPem: `-----BEGIN CERTIFICATE-----\n${spiffeId}\n-----END CERTIFICATE-----\n` }, privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
    this.#svids.set(spiffeId, svid);
    return svid;
  }

  async currentSvid(spiffeId: string): Promise<SvidLike> {
    return this.#svids.get(spiffeId) ?? this.#issue(spiffeId);
  }

  subscribe(spiffeId: string, listener: (s: SvidLike) => void): () => void {
    const set = this.#listeners.get(spiffeId) ?? new Set();
    set.add(listener);
    this.#listeners.set(spiffeId, set);
    return () => set.delete(listener);
  }

  trustBundle(): BundleLike {
    return this.#bundle;
  }

  onBundleChange(listener: (b: BundleLike) => void): () => void {
    this.#bundleListeners.add(listener);
    return () => this.#bundleListeners.delete(listener);
  }

  rotate(spiffeId: string): SvidLike {
    const svid = this.#issue(spiffeId);
    for (const l of this.#listeners.get(spiffeId) ?? []) l(svid);
    return svid;
  }

  subscribers(spiffeId: string): number {
    return this.#listeners.get(spiffeId)?.size ?? 0;
  }
}
