/**
 * State-of-the-World ADS (StreamAggregatedResources): per type, the subscription (wildcard or
 * names), the latest nonce sent and what it contained. Rules (xDS protocol, "ACK/NACK and
 * resource type instance version"):
 * - a request whose response_nonce is not the latest sent for its type is stale: ignored;
 * - a request with the latest nonce ACKs (no error_detail) or NACKs (error_detail) it;
 * - a NACKed response is recorded and NOT re-sent: only different content is sent again;
 * - LDS/CDS with no names are wildcard; every response carries the full subscribed set
 *   (missing LDS/CDS resources are deleted by Envoy).
 */
import type { EncodedResource, XdsSnapshot } from './resources.ts';
import { type ErrorDetail, Session, type SessionContext } from './session.ts';
import { isWildcardKind, kindOf, PUSH_ORDER, TYPE_URLS, type ResourceKind } from './type-urls.ts';
import { encodeDiscoveryResponse } from './wire.ts';

/** A DiscoveryRequest as decoded. */
export interface DiscoveryRequest {
  version_info?: string;
  node?: unknown;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: ErrorDetail;
}

interface TypeState {
  wildcard: boolean;
  names: Set<string>;
  nonce?: string;
  /**
   * The resources of the last response (what Envoy holds once it ACKs). References to the shared,
   * interned resources, not copies: unchanged content is the same object, so comparing is cheap
   * and a connected proxy costs a pointer per resource.
   */
  sent?: readonly EncodedResource[];
}

export class SotwSession extends Session {
  readonly #types = new Map<ResourceKind, TypeState>();

  constructor(ctx: SessionContext, snapshot: XdsSnapshot) {
    super(ctx, snapshot);
  }

  handle(req: DiscoveryRequest): void {
    const kind = kindOf(req.type_url ?? '');
    if (!kind) {
      this.ctx.logger.debug({ typeUrl: req.type_url }, 'ignoring request for a type meshward does not serve on ADS');
      return;
    }
    const state = this.#types.get(kind);
    const nonce = req.response_nonce ?? '';
    if (state?.nonce !== undefined && nonce !== '' && nonce !== state.nonce) {
      this.recordStale(kind);
      return;
    }
    const isNack = req.error_detail !== undefined && req.error_detail !== null;
    if (state?.nonce !== undefined && nonce === state.nonce) {
      if (isNack) this.recordNack(kind, req.version_info ?? '', req.error_detail!);
      else this.recordAck(kind, req.version_info ?? '');
    }
    const names = req.resource_names ?? [];
    const wildcard = isWildcardKind(kind) && (names.length === 0 || names.includes('*'));
    const next: TypeState = state ?? { wildcard, names: new Set() };
    const namesChanged = !state || state.wildcard !== wildcard || state.names.size !== names.length || names.some((n) => !state.names.has(n));
    next.wildcard = wildcard;
    next.names = new Set(names.filter((n) => n !== '*'));
    this.#types.set(kind, next);
    // A NACK keeps the subscription: answering it would re-send what was just rejected.
    if (namesChanged) this.#respond(kind, this.#select(kind, next), !state);
  }

  push(next: XdsSnapshot, triggeredAt: number): void {
    this.snapshot = next;
    this.beginPush(triggeredAt);
    const clusters = this.#types.get('cluster');
    // Removing a cluster still used by a route drops traffic: keep removed clusters in the first CDS
    // response, update EDS/LDS/RDS, then send the final CDS without them.
    let deferRemoval = false;
    if (clusters?.sent) {
      const current = this.#select('cluster', clusters);
      const currentNames = new Set(current.map((r) => r.name));
      const kept = clusters.sent.filter((r) => !currentNames.has(r.name));
      if (kept.length) {
        this.#respond('cluster', [...current, ...kept], false);
        deferRemoval = true;
      }
    }
    for (const kind of PUSH_ORDER) {
      const state = this.#types.get(kind);
      if (state && !(kind === 'cluster' && deferRemoval)) this.#respond(kind, this.#select(kind, state), false);
    }
    if (clusters && deferRemoval) this.#respond('cluster', this.#select('cluster', clusters), false);
    this.endPush();
  }

  #select(kind: ResourceKind, state: TypeState): EncodedResource[] {
    const all = this.snapshot.resources[kind];
    if (state.wildcard) return [...all.values()];
    const out: EncodedResource[] = [];
    for (const n of state.names) {
      const r = all.get(n);
      if (r) out.push(r);
    }
    return out;
  }

  /** Sends `resources` as the full state of `kind` unless Envoy already has exactly that. */
  #respond(kind: ResourceKind, resources: EncodedResource[], force: boolean): void {
    const state = this.#types.get(kind);
    if (!state) return;
    if (!force && state.sent && sameResources(state.sent, resources)) return;
    const nonce = this.nextNonce();
    this.ctx.send(encodeDiscoveryResponse({ versionInfo: this.snapshot.version, resources, typeUrl: TYPE_URLS[kind], nonce }));
    state.nonce = nonce;
    state.sent = resources;
    this.recordSend(kind, resources.length);
  }
}

function sameResources(a: readonly EncodedResource[], b: readonly EncodedResource[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x !== y && (x.name !== y.name || x.version !== y.version)) return false;
  }
  return true;
}
