/**
 * Rebuilds a check's policy input from the CheckRequest bytes, for the audit writer thread
 * (audit's InputBytes): the audit log imports this module by URL in its worker, so the input is
 * masked and serialized there instead of on the event loop that answers Envoy. Must return
 * exactly what the pipeline built (`buildInput` is pure; tests compare both routes).
 */
import { decodeCheckRequest } from './codec.ts';
import { buildInput } from './input.ts';

/** This module's URL: what ext_authz passes as the decoder of its records' input bytes. */
export const AUDIT_INPUT_DECODER = import.meta.url;

export function decodeAuditInput(bytes: Uint8Array): unknown {
  const message = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return buildInput(decodeCheckRequest(message)).input;
}
