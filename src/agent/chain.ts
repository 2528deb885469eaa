/** Reading what CreateCertificate answers (pure apart from node:crypto parsing). */
import { type KeyObject, X509Certificate } from 'node:crypto';
import { AgentError } from './errors.ts';

export const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

export function pemBlocks(text: string): string[] {
  return text.match(PEM_CERT) ?? [];
}

/** Joins PEM certificates one per block, newline-terminated (stable text for comparisons). */
export const joinPem = (blocks: readonly string[]): string => blocks.map((b) => `${b.trim()}\n`).join('');

export interface IssuedChain {
  spiffeId: string;
  /** Leaf first, without the root. */
  chainPem: string;
  /** The root the chain ended with, if meshward sent one. */
  rootPem?: string;
  leaf: X509Certificate;
  notAfter: number;
}

const selfIssued = (c: X509Certificate) => c.checkIssued(c) && c.verify(c.publicKey);

/**
 * Checks the chain meshward answered: the leaf is for our key, names exactly one SPIFFE ID, and
 * each certificate is signed by the next. The trailing self-signed root is split off.
 */
export function readIssuedChain(pems: readonly string[], privateKey: KeyObject): IssuedChain {
  const blocks = pems.flatMap((p) => pemBlocks(p));
  if (blocks.length === 0) throw new AgentError('AGENT_UPSTREAM', 'CreateCertificate answered no certificate');
  const certs = blocks.map((b) => new X509Certificate(b));
  const leaf = certs[0]!;
  if (!leaf.checkPrivateKey(privateKey)) throw new AgentError('AGENT_UPSTREAM', 'the certificate meshward issued is not for the key the agent sent');
  const uris = (leaf.subjectAltName ?? '').split(', ').filter((s) => s.startsWith('URI:spiffe://'));
  if (uris.length !== 1) throw new AgentError('AGENT_UPSTREAM', `the issued certificate names ${uris.length} SPIFFE IDs (exactly one expected)`);
  for (let i = 0; i + 1 < certs.length; i++) {
    if (!certs[i]!.verify(certs[i + 1]!.publicKey)) throw new AgentError('AGENT_UPSTREAM', `certificate ${i} of the issued chain is not signed by the next one`);
  }
  const hasRoot = certs.length > 1 && selfIssued(certs.at(-1)!);
  return {
    spiffeId: uris[0]!.slice('URI:'.length),
    chainPem: joinPem(hasRoot ? blocks.slice(0, -1) : blocks),
    ...(hasRoot ? { rootPem: joinPem([blocks.at(-1)!]) } : {}),
    leaf,
    notAfter: Date.parse(leaf.validTo),
  };
}

/** True when the chain's last certificate is signed by one of the roots (or is one of them). */
export function chainsToBundle(chainPem: string, bundlePem: string): boolean {
  const chain = pemBlocks(chainPem).map((b) => new X509Certificate(b));
  const top = chain.at(-1);
  if (!top) return false;
  return pemBlocks(bundlePem).some((r) => {
    const root = new X509Certificate(r);
    return root.fingerprint256 === top.fingerprint256 || (top.checkIssued(root) && top.verify(root.publicKey));
  });
}
