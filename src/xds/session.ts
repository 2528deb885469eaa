/**
 * What SotW and Delta sessions share: the proxy's current snapshot, its status record, sending,
 * and convergence tracking (a push converges when every type it sent is ACKed or NACKed).
 */
import type { Clock } from '../lib/clock.ts';
import { newNonce } from '../lib/ids.ts';
import type { Logger } from '../lib/logger.ts';
import type { XdsMetrics } from './metrics.ts';
import type { XdsSnapshot } from './resources.ts';
import type { ProxyStatus } from './status.ts';
import type { ResourceKind } from './type-urls.ts';

export interface SessionContext {
  readonly status: ProxyStatus;
  readonly clock: Clock;
  readonly metrics: XdsMetrics;
  readonly logger: Logger;
  /** Writes one response on the stream, already in protobuf wire format (see wire.ts). */
  send(response: Buffer): void;
  /** Nonce source (tests may make it deterministic). */
  nonce?(): string;
}

/** error_detail as decoded (google.rpc.Status). */
export interface ErrorDetail {
  code?: number;
  message?: string;
}

export abstract class Session {
  protected snapshot: XdsSnapshot;
  protected readonly ctx: SessionContext;
  readonly #outstanding = new Set<ResourceKind>();
  #pushStartedAt?: number;

  constructor(ctx: SessionContext, snapshot: XdsSnapshot) {
    this.ctx = ctx;
    this.snapshot = snapshot;
  }

  get currentSnapshot(): XdsSnapshot {
    return this.snapshot;
  }

  /** Sends what changed between the current snapshot and `next`, in Envoy's safe order. */
  abstract push(next: XdsSnapshot, triggeredAt: number): void;

  protected beginPush(triggeredAt: number): void {
    this.#pushStartedAt ??= triggeredAt;
  }

  /** A push that sent nothing has nothing to converge. */
  protected endPush(): void {
    if (this.#outstanding.size === 0) this.#pushStartedAt = undefined;
  }

  protected nextNonce(): string {
    return this.ctx.nonce?.() ?? newNonce();
  }

  protected recordSend(kind: ResourceKind, resources: number): void {
    this.#outstanding.add(kind);
    this.ctx.status.sent(kind, this.snapshot.version, resources);
    this.ctx.metrics.responses.inc({ type: kind });
  }

  protected recordAck(kind: ResourceKind, version: string): void {
    this.ctx.status.acked(kind, version, this.ctx.clock.now());
    this.#answered(kind);
  }

  protected recordNack(kind: ResourceKind, version: string, error: ErrorDetail): void {
    const message = error.message ?? `error code ${error.code ?? 'unknown'}`;
    this.ctx.status.nacked(kind, version, message, this.ctx.clock.now());
    this.ctx.metrics.nacks.inc({ type: kind });
    this.ctx.logger.warn({ nodeId: this.ctx.status.proxy.nodeId, type: kind, version, error: message }, 'proxy rejected configuration (NACK)');
    this.#answered(kind);
  }

  protected recordStale(kind: ResourceKind): void {
    this.ctx.metrics.staleNonces.inc({ type: kind });
  }

  /** Convergence: only counted for pushes (a config change), not for the initial sync. */
  #answered(kind: ResourceKind): void {
    this.#outstanding.delete(kind);
    if (this.#outstanding.size === 0 && this.#pushStartedAt !== undefined) {
      this.ctx.metrics.convergence.observe(Math.max(0, this.ctx.clock.now() - this.#pushStartedAt) / 1000);
      this.#pushStartedAt = undefined;
    }
  }
}
