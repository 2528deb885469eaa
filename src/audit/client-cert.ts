/**
 * Auditor authentication by client certificate: an `ApiAuth` verifier that accepts a TLS peer
 * whose certificate chain the HTTPS server verified (`socket.authorized`) and whose URI SAN is one
 * of the configured auditor SPIFFE IDs (`Mesh.spec.audit.auditorSpiffeIds`). Works once the HTTP
 * server listens with TLS and `requestCert: true` against the mesh trust bundle; on plain HTTP it
 * never matches.
 */
import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import type { ApiPrincipal } from '../api/auth.ts';

/** URI SANs of a certificate's `subjectaltname` string (`URI:spiffe://..., DNS:...`). */
export function uriSans(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  return subjectAltName.split(/,\s*/).filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
}

/** The SPIFFE ID of a verified TLS peer, or undefined (no TLS, no/unverified certificate, no or several SPIFFE URIs). */
export function peerSpiffeId(socket: unknown): string | undefined {
  const tls = socket as Partial<TLSSocket> | undefined;
  if (tls?.encrypted !== true || tls.authorized !== true || typeof tls.getPeerCertificate !== 'function') return undefined;
  const cert = tls.getPeerCertificate();
  const ids = uriSans(cert?.subjectaltname).filter((u) => u.startsWith('spiffe://'));
  // An X509-SVID has exactly one SPIFFE ID (SPIFFE X509-SVID §2).
  return ids.length === 1 ? ids[0] : undefined;
}

/**
 * Builds the verifier; `auditorIds` is read per request so configuration reloads apply.
 *
 * @example
 * apiAuth.addVerifier(clientCertificateVerifier(() => config.current().mesh.audit.auditorSpiffeIds));
 */
export function clientCertificateVerifier(auditorIds: () => readonly string[]): (req: FastifyRequest) => ApiPrincipal | undefined {
  return (req) => {
    const id = peerSpiffeId(req.raw.socket);
    return id !== undefined && auditorIds().includes(id) ? { name: id, role: 'auditor' } : undefined;
  };
}
