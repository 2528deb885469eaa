/** Test PKI for HTTPS/mTLS tests: a CA and leaf certificates generated per run with @peculiar/x509. */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

export interface TestCert {
  certPem: string;
  keyPem: string;
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

export async function createTestCa(name = 'meshward test CA'): Promise<TestCert & { sign(opts: { dns?: string[]; uri?: string; ip?: string[] }): Promise<TestCert> }> {
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']) as CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01', name: `CN=${name}`, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000), signingAlgorithm: alg, keys,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  return {
    certPem: ca.toString('pem'),
    keyPem: await keyPem(keys.privateKey),
    async sign({ dns = [], uri, ip = [] }) {
      const leafKeys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']) as CryptoKeyPair;
      const names = [...dns.map((d) => ({ type: 'dns' as const, value: d })), ...ip.map((i) => ({ type: 'ip' as const, value: i })), ...(uri ? [{ type: 'url' as const, value: uri }] : [])];
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: Date.now().toString(16), subject: 'CN=leaf', issuer: ca.subject, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000),
        signingAlgorithm: alg, publicKey: leafKeys.publicKey, signingKey: keys.privateKey,
        extensions: [new x509.BasicConstraintsExtension(false), new x509.SubjectAlternativeNameExtension(names), new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth])],
      });
      return { certPem: leaf.toString('pem'), keyPem: await keyPem(leafKeys.privateKey) };
    },
  };
}
