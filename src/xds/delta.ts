/**
 * Incremental ADS (DeltaAggregatedResources): per type, the subscription and the version of every
 * resource the proxy holds, so only added/changed resources and `removed_resources` are sent.
 * Rules (xDS protocol, "Incremental xDS"):
 * - subscription changes are honoured even on a stale nonce; ACK/NACK bookkeeping is not;
 * - the first request may carry `initial_resource_versions` (reconnect): unchanged ones are not re-sent;
 * - LDS/CDS first requests without names are wildcard; `*` subscribes/unsubscribes the wildcard;
 * - a NACK is recorded and the rejected versions are not re-sent until they change;
 * - upserts go CDS, EDS, LDS, RDS; cluster/endpoint removals go last.
 */
import type { EncodedResource, XdsSnapshot } from './resources.ts';
import { type ErrorDetail, Session, type SessionContext } from './session.ts';
import { isWildcardKind, kindOf, PUSH_ORDER, TYPE_URLS, type ResourceKind } from './type-urls.ts';
import { encodeDeltaDiscoveryResponse } from './wire.ts';

/** A DeltaDiscoveryRequest as decoded. */
export interface DeltaDiscoveryRequest {
  node?: unknown;
  type_url?: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: ErrorDetail;
}

interface TypeState {
  wildcard: boolean;
  names: Set<string>;
  /** name → version the proxy holds (as far as we know: sent, or claimed on reconnect). */
  known: Map<string, string>;
  nonce?: string;
}

type Part = 'upserts' | 'removals' | 'both';

export class DeltaSession extends Session {
  readonly #types = new Map<ResourceKind, TypeState>();

  constructor(ctx: SessionContext, snapshot: XdsSnapshot) {
    super(ctx, snapshot);
  }

  handle(req: DeltaDiscoveryRequest): void {
    const kind = kindOf(req.type_url ?? '');
    if (!kind) {
      this.ctx.logger.debug({ typeUrl: req.type_url }, 'ignoring delta request for a type meshward does not serve on ADS');
      return;
    }
    const subscribe = req.resource_names_subscribe ?? [];
    const unsubscribe = req.resource_names_unsubscribe ?? [];
    let state = this.#types.get(kind);
    const first = !state;
    if (!state) {
      state = { wildcard: isWildcardKind(kind) && subscribe.length === 0, names: new Set(), known: new Map(Object.entries(req.initial_resource_versions ?? {})) };
      this.#types.set(kind, state);
    }
    for (const n of subscribe) {
      if (n === '*') state.wildcard = true;
      else state.names.add(n);
    }
    for (const n of unsubscribe) {
      if (n === '*') state.wildcard = false;
      else {
        state.names.delete(n);
        // Envoy drops an unsubscribed resource itself; it needs no removal notice.
        state.known.delete(n);
      }
    }
    const nonce = req.response_nonce ?? '';
    const isNack = req.error_detail !== undefined && req.error_detail !== null;
    let stale = false;
    if (nonce !== '') {
      if (nonce === state.nonce) {
        if (isNack) this.recordNack(kind, this.snapshot.version, req.error_detail!);
        else this.recordAck(kind, this.snapshot.version);
      } else {
        stale = true;
        this.recordStale(kind);
      }
    }
    const subscriptionChanged = subscribe.length > 0 || unsubscribe.length > 0;
    if (!first && !subscriptionChanged) return;
    if ((isNack || stale) && !subscriptionChanged) return;
    // The first response of a type is sent even when empty: Envoy waits for it to finish initialising.
    this.#respond(kind, 'both', first);
  }

  push(next: XdsSnapshot, triggeredAt: number): void {
    this.snapshot = next;
    this.beginPush(triggeredAt);
    for (const kind of PUSH_ORDER) this.#respond(kind, kind === 'cluster' || kind === 'endpoint' ? 'upserts' : 'both', false);
    this.#respond('cluster', 'removals', false);
    this.#respond('endpoint', 'removals', false);
    this.endPush();
  }

  #respond(kind: ResourceKind, part: Part, sendEmpty: boolean): void {
    const state = this.#types.get(kind);
    if (!state) return;
    const available = this.snapshot.resources[kind];
    const upserts: EncodedResource[] = [];
    if (part !== 'removals') {
      const wanted = state.wildcard ? available.values() : [...state.names].flatMap((n) => available.get(n) ?? []);
      for (const r of wanted) if (state.known.get(r.name) !== r.version) upserts.push(r);
    }
    const removed = part === 'upserts' ? [] : [...state.known.keys()].filter((n) => !available.has(n));
    if (!upserts.length && !removed.length && !sendEmpty) return;
    const nonce = this.nextNonce();
    this.ctx.send(encodeDeltaDiscoveryResponse({ systemVersionInfo: this.snapshot.version, typeUrl: TYPE_URLS[kind], nonce, resources: upserts, removed }));
    state.nonce = nonce;
    for (const r of upserts) state.known.set(r.name, r.version);
    for (const n of removed) state.known.delete(n);
    this.recordSend(kind, state.known.size);
  }
}
