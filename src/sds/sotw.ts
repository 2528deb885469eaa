/**
 * State-of-the-world SDS (`StreamSecrets`): per stream, the names last asked for, the last nonce
 * sent and the version Envoy acknowledged. Implements the xDS rules: an ACK echoes the nonce with
 * the new version; a NACK echoes it with `error_detail` (logged, never answered with the same
 * content again); a request with an older nonce is stale and ignored; new content is pushed.
 */
import { newNonce } from '../lib/ids.ts';
import { WILDCARD_NAMES } from './names.ts';
import { combinedVersion, SECRET_TYPE_URL, type SecretResource } from './secrets.ts';
import type { SecretSession } from './session.ts';

export interface DiscoveryRequest {
  version_info?: string;
  node?: { id?: string; cluster?: string };
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string } | null;
}

export interface DiscoveryResponse {
  version_info: string;
  resources: { type_url: string; value: Buffer }[];
  type_url: string;
  nonce: string;
}

export type RequestOutcome = 'initial' | 'ack' | 'nack' | 'stale' | 'resubscribe';

export interface SotwEvents {
  send(response: DiscoveryResponse): void;
  nack(info: { nonce: string; version: string; message: string; names: readonly string[] }): void;
}

export function sotwResponse(resources: readonly SecretResource[]): DiscoveryResponse {
  return { version_info: combinedVersion(resources), resources: resources.map((r) => r.any), type_url: SECRET_TYPE_URL, nonce: newNonce() };
}

const sameNames = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((n, i) => n === b[i]);

export class SotwStream {
  readonly #session: SecretSession;
  readonly #events: SotwEvents;
  #names: string[] = [];
  #lastNonce?: string;
  #lastVersion?: string;
  /** Version of the last response Envoy accepted. */
  ackedVersion?: string;

  constructor(session: SecretSession, events: SotwEvents) {
    this.#session = session;
    this.#events = events;
  }

  async onRequest(req: DiscoveryRequest): Promise<RequestOutcome> {
    const names = [...(req.resource_names?.length ? req.resource_names : WILDCARD_NAMES)].sort();
    let outcome: RequestOutcome = 'initial';
    if (req.response_nonce) {
      if (req.response_nonce !== this.#lastNonce) return 'stale';
      if (req.error_detail) {
        this.#events.nack({ nonce: req.response_nonce, version: this.#lastVersion ?? '', message: req.error_detail.message ?? '', names });
        outcome = 'nack';
      } else {
        this.ackedVersion = this.#lastVersion;
        outcome = 'ack';
      }
      if (sameNames(names, this.#names)) return outcome;
      outcome = 'resubscribe';
    }
    await this.#session.watch(names);
    this.#names = names;
    this.#push();
    return outcome;
  }

  /** The certificate or bundle changed: push if the content differs from the last response. */
  onChange(): void {
    if (this.#names.length === 0) return;
    this.#push(true);
  }

  #push(onlyIfChanged = false): void {
    const response = sotwResponse(this.#session.resources(this.#names));
    if (onlyIfChanged && response.version_info === this.#lastVersion) return;
    this.#lastNonce = response.nonce;
    this.#lastVersion = response.version_info;
    this.#events.send(response);
  }
}
