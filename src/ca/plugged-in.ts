/**
 * Bring-your-own CA, in Istio's `cacerts` layout: ca-cert.pem (the signing CA), ca-key.pem,
 * cert-chain.pem (ca-cert up to the root) and root-cert.pem (the roots to trust). Every way such a
 * set can be wrong gets its own message, naming the file.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pemToDer } from './der.ts';
import { caInvalid } from './errors.ts';
import { fileExists } from './files.ts';
import { KEY_USAGE, OID, readCertificate } from './x509.ts';

export const PLUGGED_IN_FILES = { cert: 'ca-cert.pem', key: 'ca-key.pem', chain: 'cert-chain.pem', root: 'root-cert.pem' } as const;

export interface PluggedInCa {
  caCert: Buffer;
  caKey: KeyObject;
  /** Intermediates strictly between ca-cert and the root. */
  intermediates: Buffer[];
  roots: Buffer[];
}

function readCerts(dir: string, file: string, required: boolean): Buffer[] {
  const full = path.join(dir, file);
  if (!fileExists(full)) {
    if (required) throw caInvalid(`${full} is missing (a plugged-in CA needs ${Object.values(PLUGGED_IN_FILES).join(', ')})`, { file: full });
    return [];
  }
  const ders = pemToDer(readFileSync(full, 'utf8'), 'CERTIFICATE');
  if (required && ders.length === 0) throw caInvalid(`${full} holds no PEM certificate`, { file: full });
  return ders;
}

function parse(der: Buffer, file: string): X509Certificate {
  try {
    return new X509Certificate(der);
  } catch (err) {
    throw caInvalid(`${file}: not a valid X.509 certificate (${(err as Error).message})`, { file });
  }
}

/** Checks the certificate can sign certificates: CA=true and, when it has keyUsage, keyCertSign. */
export function assertSigningCa(der: Buffer, file: string, now: number): X509Certificate {
  const x = parse(der, file);
  if (!x.ca) throw caInvalid(`${file}: "${(x.subject ?? '').replace(/\n/g, ', ')}" is not a CA certificate (basicConstraints CA=false)`, { file });
  const ku = readCertificate(der).extensions.get(OID.keyUsage);
  if (ku) {
    const bits = ku.value[3] ?? 0;
    if (!(bits & (0x80 >> KEY_USAGE.keyCertSign))) throw caInvalid(`${file}: keyUsage lacks keyCertSign`, { file });
  }
  if (Date.parse(x.validTo) <= now) throw caInvalid(`${file}: certificate expired on ${new Date(x.validTo).toISOString()}`, { file, notAfter: x.validTo });
  if (Date.parse(x.validFrom) > now + 5 * 60_000) throw caInvalid(`${file}: certificate is not valid before ${new Date(x.validFrom).toISOString()}`, { file });
  return x;
}

export function readPluggedInCa(dir: string, now: number): PluggedInCa {
  const certFile = path.join(dir, PLUGGED_IN_FILES.cert);
  const keyFile = path.join(dir, PLUGGED_IN_FILES.key);
  const [caCert] = readCerts(dir, PLUGGED_IN_FILES.cert, true);
  const cert = assertSigningCa(caCert!, certFile, now);
  if (!fileExists(keyFile)) throw caInvalid(`${keyFile} is missing`, { file: keyFile });
  let caKey: KeyObject;
  try {
    caKey = createPrivateKey(readFileSync(keyFile));
  } catch (err) {
    throw caInvalid(`${keyFile}: not a readable private key (${(err as Error).message})`, { file: keyFile });
  }
  if (!cert.checkPrivateKey(caKey)) throw caInvalid(`${keyFile} does not match ${certFile} (the key is not the certificate's key)`, { file: keyFile });
  const roots = readCerts(dir, PLUGGED_IN_FILES.root, true);
  roots.forEach((r) => parse(r, path.join(dir, PLUGGED_IN_FILES.root)));
  const chain = readCerts(dir, PLUGGED_IN_FILES.chain, false).filter((d) => !d.equals(caCert!));
  const rootSet = roots.map((r) => new X509Certificate(r));
  const intermediates = chain.filter((d) => !rootSet.some((r) => Buffer.from(r.raw).equals(d)));
  // Walk ca-cert → intermediates → a root, checking each signature.
  let current = cert;
  for (let hops = 0; hops <= intermediates.length; hops++) {
    const root = rootSet.find((r) => current.checkIssued(r) && current.verify(r.publicKey));
    if (root) {
      if (Date.parse(root.validTo) <= now) throw caInvalid(`${PLUGGED_IN_FILES.root}: the root that signs ${PLUGGED_IN_FILES.cert} expired on ${root.validTo}`);
      return { caCert: caCert!, caKey, intermediates, roots };
    }
    const next = intermediates.map((d) => new X509Certificate(d)).find((i) => current.checkIssued(i) && current.verify(i.publicKey));
    if (!next) break;
    assertSigningCa(Buffer.from(next.raw), path.join(dir, PLUGGED_IN_FILES.chain), now);
    current = next;
  }
  throw caInvalid(`${certFile} does not chain to any certificate in ${path.join(dir, PLUGGED_IN_FILES.root)} (through ${PLUGGED_IN_FILES.chain})`, { file: certFile });
}
