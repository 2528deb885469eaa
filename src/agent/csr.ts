/**
 * A P-256 key pair and a PKCS#10 CSR over it, built by hand (DER): the agent sends only this CSR
 * to meshward. meshward names the certificate after the authenticated caller, so the CSR carries
 * no identity: an empty subject and no extensions.
 */
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';

const SEQUENCE = 0x30;
const INTEGER = 0x02;
const BIT_STRING = 0x03;
const OID = 0x06;

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const n = body.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

/** ecdsa-with-SHA256 (1.2.840.10045.4.3.2), pre-encoded. */
const ECDSA_SHA256 = tlv(SEQUENCE, tlv(OID, Buffer.from([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02])));

export interface KeyAndCsr {
  privateKey: KeyObject;
  csrPem: string;
}

/** A fresh P-256 key (in memory) and a CSR signed with it. */
export function newKeyAndCsr(): KeyAndCsr {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  // CertificationRequestInfo: version 0, empty subject, the key, no attributes ([0] empty).
  const info = tlv(SEQUENCE, tlv(INTEGER, Buffer.from([0])), tlv(SEQUENCE), spki, Buffer.from([0xa0, 0x00]));
  const signature = sign('sha256', info, privateKey); // DER ECDSA-Sig-Value
  const der = tlv(SEQUENCE, info, ECDSA_SHA256, tlv(BIT_STRING, Buffer.from([0]), signature));
  const b64 = der.toString('base64').match(/.{1,64}/g)!.join('\n');
  return { privateKey, csrPem: `-----BEGIN CERTIFICATE REQUEST-----\n${b64}\n-----END CERTIFICATE REQUEST-----\n` };
}
