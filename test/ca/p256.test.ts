import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateP256 } from '../../src/ca/p256.ts';

describe('hand-encoded P-256 keys', () => {
  it('round-trip through OpenSSL: the PKCS#8 key signs and the SPKI verifies', () => {
    for (let i = 0; i < 20; i++) {
      const { spki, privateKeyPem } = generateP256();
      const priv = createPrivateKey(privateKeyPem);
      const pub = createPublicKey({ key: spki, format: 'der', type: 'spki' });
      expect(priv.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
      // Same bytes as OpenSSL's own encoders produce.
      expect(createPublicKey(priv).export({ type: 'spki', format: 'der' }).equals(spki)).toBe(true);
      expect(priv.export({ type: 'pkcs8', format: 'pem' })).toBe(privateKeyPem);
      const sig = sign('sha256', Buffer.from('m'), priv);
      expect(verify('sha256', Buffer.from('m'), pub, sig)).toBe(true);
    }
  });
});
