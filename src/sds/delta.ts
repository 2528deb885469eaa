/**
 * Incremental SDS (`DeltaSecrets`): the client subscribes and unsubscribes names; the server sends
 * only resources whose version the client does not have. NACKs are logged, not retried.
 */
import { newNonce } from '../lib/ids.ts';
import { WILDCARD_NAMES } from './names.ts';
import { SECRET_TYPE_URL } from './secrets.ts';
import type { SecretSession } from './session.ts';

export interface DeltaDiscoveryRequest {
  node?: { id?: string };
  type_url?: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string } | null;
}

export interface DeltaDiscoveryResponse {
  system_version_info: string;
  resources: { name: string; version: string; resource: { type_url: string; value: Buffer } }[];
  type_url: string;
  removed_resources: string[];
  nonce: string;
}

export interface DeltaEvents {
  send(response: DeltaDiscoveryResponse): void;
  nack(info: { nonce: string; message: string }): void;
}

export class DeltaStream {
  readonly #session: SecretSession;
  readonly #events: DeltaEvents;
  readonly #subscribed = new Set<string>();
  /** What the client holds, by name. */
  readonly #known = new Map<string, string>();
  #started = false;

  constructor(session: SecretSession, events: DeltaEvents) {
    this.#session = session;
    this.#events = events;
  }

  async onRequest(req: DeltaDiscoveryRequest): Promise<void> {
    if (req.response_nonce && req.error_detail) this.#events.nack({ nonce: req.response_nonce, message: req.error_detail.message ?? '' });
    let subscribe = req.resource_names_subscribe ?? [];
    if (!this.#started) {
      this.#started = true;
      for (const [name, version] of Object.entries(req.initial_resource_versions ?? {})) this.#known.set(name, version);
      if (subscribe.length === 0) subscribe = WILDCARD_NAMES;
    }
    for (const name of req.resource_names_unsubscribe ?? []) {
      this.#subscribed.delete(name);
      this.#known.delete(name);
    }
    if (subscribe.length > 0) {
      await this.#session.watch(subscribe);
      for (const name of subscribe) this.#subscribed.add(name);
    }
    this.onChange();
  }

  /** Sends every subscribed resource whose version the client does not hold. */
  onChange(): void {
    const changed = this.#session.resources([...this.#subscribed]).filter((r) => this.#known.get(r.name) !== r.version);
    if (changed.length === 0) return;
    for (const r of changed) this.#known.set(r.name, r.version);
    this.#events.send({
      system_version_info: changed.map((r) => r.version).join(','),
      resources: changed.map((r) => ({ name: r.name, version: r.version, resource: r.any })),
      type_url: SECRET_TYPE_URL,
      removed_resources: [],
      nonce: newNonce(),
    });
  }
}
