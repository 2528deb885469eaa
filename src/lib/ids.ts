import { randomUUID, randomBytes } from 'node:crypto';

/** Decision ids are UUIDv4, as the OPA-Envoy plugin's decision_id. */
export function newDecisionId(): string {
  return randomUUID();
}

/** Opaque nonce for xDS/SDS responses. */
export function newNonce(): string {
  return randomBytes(8).toString('hex');
}
