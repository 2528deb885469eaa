/**
 * Checks what a signing slot actually produces (SPIRE's credential validator, once per slot rather
 * than per certificate): a probe leaf must parse with OpenSSL, verify under the CA key, name
 * exactly the requested SPIFFE ID and not be a CA. A CA whose template cannot produce a valid
 * X509-SVID is refused before it signs anything.
 */
import { X509Certificate } from 'node:crypto';
import { caInvalid } from './errors.ts';
import { generateP256 } from './p256.ts';
import { type LeafTemplate, signLeaf } from './template.ts';

export function validateLeafTemplate(template: LeafTemplate, caCert: Buffer, trustDomain: string, now: number): void {
  const id = `spiffe://${trustDomain}/meshward/probe`;
  const { spki } = generateP256();
  const notAfter = Math.min(now + 60_000, template.authority.notAfter);
  const { der } = signLeaf(template, { spki, keyKind: 'ec', spiffeId: id, notBefore: now - 60_000, notAfter });
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(der);
  } catch (err) {
    throw caInvalid(`the signing CA produces certificates OpenSSL cannot parse: ${(err as Error).message}`);
  }
  const ca = new X509Certificate(caCert);
  if (!leaf.verify(ca.publicKey)) throw caInvalid('a probe certificate does not verify under the signing CA key');
  if (!leaf.checkIssued(ca)) throw caInvalid('a probe certificate does not name the signing CA as its issuer');
  if (leaf.ca) throw caInvalid('a probe leaf certificate came out as a CA');
  if (leaf.subjectAltName !== `URI:${id}`) throw caInvalid(`a probe certificate carries SAN "${leaf.subjectAltName}" instead of the requested SPIFFE ID`);
}
