/**
 * What each connected proxy has been sent and has acknowledged, per type: the data behind
 * `GET /v1/proxies` (like `istioctl proxy-status`) and the convergence metric.
 */
import type { ProxyIdentity } from './node.ts';
import type { ResourceKind } from './type-urls.ts';

export type SyncState = 'SYNCED' | 'STALE' | 'NACKED' | 'NOT_SENT';

export interface TypeStatusV1 {
  state: SyncState;
  /** version_info of the last response sent. */
  sent?: string;
  acked?: string;
  ackedAt?: string;
  /** The last rejected version and Envoy's error; kept after later ACKs so operators see it. */
  nacked?: { version: string; error: string; at: string };
  resources: number;
}

export interface ProxyStatusV1 {
  streamId: string;
  nodeId: string;
  cluster: string;
  namespace: string;
  serviceAccount: string;
  service?: string;
  spiffeId: string;
  authenticatedVia: string;
  userAgent?: string;
  mode: 'sotw' | 'delta';
  connectedAt: string;
  /** The configuration version the proxy was last pushed. */
  configVersion: string;
  types: Record<'sds' | 'cds' | 'eds' | 'lds' | 'rds', TypeStatusV1>;
}

const SHORT: Record<ResourceKind, 'sds' | 'cds' | 'eds' | 'lds' | 'rds'> = { secret: 'sds', cluster: 'cds', endpoint: 'eds', listener: 'lds', route: 'rds' };

interface TypeRecord {
  sent?: string;
  sentNonce?: string;
  acked?: string;
  ackedAt?: number;
  nacked?: { version: string; error: string; at: number };
  lastWasNack: boolean;
  resources: number;
}

/** Mutable per-stream status, written by the session, read by the API. */
export class ProxyStatus {
  readonly streamId: string;
  readonly mode: 'sotw' | 'delta';
  readonly connectedAt: number;
  proxy: ProxyIdentity;
  configVersion = '';
  readonly #types = new Map<ResourceKind, TypeRecord>();

  constructor(streamId: string, mode: 'sotw' | 'delta', proxy: ProxyIdentity, connectedAt: number) {
    this.streamId = streamId;
    this.mode = mode;
    this.proxy = proxy;
    this.connectedAt = connectedAt;
  }

  #record(kind: ResourceKind): TypeRecord {
    let r = this.#types.get(kind);
    if (!r) this.#types.set(kind, (r = { lastWasNack: false, resources: 0 }));
    return r;
  }

  sent(kind: ResourceKind, version: string, resources: number): void {
    const r = this.#record(kind);
    r.sent = version;
    r.resources = resources;
    // A new response awaits its own ACK/NACK; the last NACK stays recorded in `nacked`.
    r.lastWasNack = false;
    this.configVersion = version;
  }

  acked(kind: ResourceKind, version: string, now: number): void {
    const r = this.#record(kind);
    r.acked = version;
    r.ackedAt = now;
    r.lastWasNack = false;
  }

  nacked(kind: ResourceKind, version: string, error: string, now: number): void {
    const r = this.#record(kind);
    r.nacked = { version, error, at: now };
    r.lastWasNack = true;
  }

  /** The last NACK of a type, if any. */
  lastNack(kind: ResourceKind): { version: string; error: string } | undefined {
    return this.#types.get(kind)?.nacked;
  }

  toJSON(): ProxyStatusV1 {
    const types = {} as ProxyStatusV1['types'];
    for (const kind of ['secret', 'cluster', 'endpoint', 'listener', 'route'] as const) {
      const r = this.#types.get(kind);
      const state: SyncState = !r?.sent ? 'NOT_SENT' : r.lastWasNack ? 'NACKED' : r.acked === r.sent ? 'SYNCED' : 'STALE';
      types[SHORT[kind]] = {
        state,
        resources: r?.resources ?? 0,
        ...(r?.sent ? { sent: r.sent } : {}),
        ...(r?.acked ? { acked: r.acked, ackedAt: new Date(r.ackedAt!).toISOString() } : {}),
        ...(r?.nacked ? { nacked: { version: r.nacked.version, error: r.nacked.error, at: new Date(r.nacked.at).toISOString() } } : {}),
      };
    }
    const p = this.proxy;
    return {
      streamId: this.streamId,
      nodeId: p.nodeId,
      cluster: p.cluster,
      namespace: p.namespace,
      serviceAccount: p.serviceAccount,
      ...(p.service ? { service: p.service } : {}),
      spiffeId: p.spiffeId,
      authenticatedVia: p.via,
      ...(p.userAgent ? { userAgent: p.userAgent } : {}),
      mode: this.mode,
      connectedAt: new Date(this.connectedAt).toISOString(),
      configVersion: this.configVersion,
      types,
    };
  }
}
