/**
 * The last State-of-the-World response meshward sent, per type: what the xDS proxy answers an
 * Envoy that (re)connects while meshward is unreachable, as istio-agent's xDS proxy does. Messages
 * are decoded only to read their type, version and nonce.
 */
import { envoyMessageType } from '../lib/protos.ts';

interface Request { type_url?: string; version_info?: string; response_nonce?: string; resource_names?: string[] }
interface Response { type_url?: string; version_info?: string; nonce?: string }

const requestType = () => envoyMessageType('envoy.service.discovery.v3.DiscoveryRequest');
const responseType = () => envoyMessageType('envoy.service.discovery.v3.DiscoveryResponse');

export function readRequest(bytes: Buffer): Request {
  return requestType().deserialize(bytes) as Request;
}

export class XdsCache {
  readonly #byType = new Map<string, { version: string; message: object }>();

  /** Remembers a response from meshward (SotW: each holds every resource of its type). */
  record(bytes: Buffer): void {
    const message = responseType().deserialize(bytes) as Response & object;
    if (message.type_url) this.#byType.set(message.type_url, { version: message.version_info ?? '', message });
  }

  get size(): number {
    return this.#byType.size;
  }

  /** The cached response of `typeUrl` under a new nonce, or undefined. */
  answer(typeUrl: string, nonce: string): Buffer | undefined {
    const hit = this.#byType.get(typeUrl);
    return hit && Buffer.from(responseType().serialize({ ...hit.message, nonce }));
  }

  version(typeUrl: string): string | undefined {
    return this.#byType.get(typeUrl)?.version;
  }
}
