import { generateKeyPairSync, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import type { PlainObject, Value } from '../../../../src/policy/rego/value.ts';
import { call, callError, NOW_NS } from './helpers.ts';

const nowSec = Number(NOW_NS / 1_000_000_000n);
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const privateJwk = rsa.privateKey.export({ format: 'jwk' }) as unknown as PlainObject;
const publicPem = rsa.publicKey.export({ format: 'pem', type: 'spki' }).toString();
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ecPrivateJwk = ec.privateKey.export({ format: 'jwk' }) as unknown as PlainObject;
const ecPublicJwk = JSON.stringify(ec.publicKey.export({ format: 'jwk' }));

function rs256(payload: PlainObject, header: PlainObject = { alg: 'RS256', typ: 'JWT' }): string {
  return call('io.jwt.encode_sign', header, payload, privateJwk) as string;
}

let certPem = '';
let chainPem = '';
let leafPem = '';

beforeAll(async () => {
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const notBefore = new Date((nowSec - 3600) * 1000);
  const notAfter = new Date((nowSec + 3600) * 1000);
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=Test Root',
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, 1, true)],
  });
  const leafKeys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: '02',
    subject: 'CN=svc.example.com, O=Example',
    issuer: root.subject,
    notBefore,
    notAfter,
    signingKey: keys.privateKey,
    publicKey: leafKeys.publicKey,
    signingAlgorithm: alg,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'svc.example.com' }, { type: 'url', value: 'spiffe://example.org/svc' }])],
  });
  certPem = root.toString('pem');
  leafPem = leaf.toString('pem');
  chainPem = `${root.toString('pem')}\n${leafPem}`;
});

describe('io.jwt', () => {
  it('decodes header, payload and signature', () => {
    const token = rs256({ sub: 'alice' });
    const [header, payload, sig] = call('io.jwt.decode', token) as [Value, Value, string];
    expect(header).toEqual({ alg: 'RS256', typ: 'JWT' });
    expect(payload).toEqual({ sub: 'alice' });
    expect(sig).toMatch(/^[0-9a-f]+$/);
  });

  it('rejects malformed tokens with OPA messages', () => {
    expect(callError('io.jwt.decode', 'abc').message).toBe('io.jwt.decode: encoded JWT had no period separators');
    expect(callError('io.jwt.decode', 'a.b').message).toBe('io.jwt.decode: encoded JWT must have 3 sections, found 2');
    expect(callError('io.jwt.decode', 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwIiwia/XNzIjoib3BhIn0.XmVo').message).toBe(
      'io.jwt.decode: JWT payload had invalid encoding: illegal base64 data at input byte 17',
    );
  });

  it('verifies RS256 with the right public key and rejects a tampered token', () => {
    const token = rs256({ sub: 'alice' });
    expect(call('io.jwt.verify_rs256', token, publicPem)).toBe(true);
    const [h, , s] = token.split('.');
    const forged = `${h}.${Buffer.from('{"sub":"mallory"}').toString('base64url')}.${s}`;
    expect(call('io.jwt.verify_rs256', forged, publicPem)).toBe(false);
    expect(call('io.jwt.verify_rs384', token, publicPem)).toBe(false);
  });

  it('verifies HS256 and ES256 (JWK) signatures', () => {
    const key = { kty: 'oct', k: Buffer.from('secret').toString('base64url') };
    const hs = call('io.jwt.encode_sign', { alg: 'HS256' }, { a: 1 }, key) as string;
    expect(call('io.jwt.verify_hs256', hs, 'secret')).toBe(true);
    expect(call('io.jwt.verify_hs256', hs, 'wrong')).toBe(false);
    const es = call('io.jwt.encode_sign', { alg: 'ES256' }, { a: 1 }, ecPrivateJwk) as string;
    expect(call('io.jwt.verify_es256', es, ecPublicJwk)).toBe(true);
    expect(call('io.jwt.verify_es256', es, JSON.stringify({ keys: [JSON.parse(ecPublicJwk)] }))).toBe(true);
  });

  it('accepts a valid token in decode_verify and rejects expired, early, wrong-issuer and wrong-audience ones', () => {
    const claims = { iss: 'issuer', aud: 'svc', exp: nowSec + 60, nbf: nowSec - 60 };
    const ok = call('io.jwt.decode_verify', rs256(claims), { cert: publicPem, iss: 'issuer', aud: 'svc' }) as Value[];
    expect(ok[0]).toBe(true);
    expect(ok[2]).toEqual(claims);
    const denied = [
      call('io.jwt.decode_verify', rs256({ ...claims, exp: nowSec - 1 }), { cert: publicPem, iss: 'issuer', aud: 'svc' }),
      call('io.jwt.decode_verify', rs256({ ...claims, nbf: nowSec + 60 }), { cert: publicPem, iss: 'issuer', aud: 'svc' }),
      call('io.jwt.decode_verify', rs256(claims), { cert: publicPem, iss: 'other', aud: 'svc' }),
      call('io.jwt.decode_verify', rs256(claims), { cert: publicPem, iss: 'issuer' }),
      call('io.jwt.decode_verify', rs256(claims), { cert: publicPem, iss: 'issuer', aud: 'svc', alg: 'RS512' }),
      call('io.jwt.decode_verify', rs256(claims), { secret: 'x', iss: 'issuer', aud: 'svc' }),
    ];
    for (const d of denied) expect(d).toEqual([false, {}, {}]);
    expect(callError('io.jwt.decode_verify', rs256({ exp: 'soon' }), { cert: publicPem }).message).toContain('exp value must be a number');
    expect(callError('io.jwt.decode_verify', rs256(claims), { cert: publicPem, bogus: 1 }).message).toContain('unknown token validation constraint');
  });

  it('verifies with a certificate and reports PEM problems', () => {
    expect(callError('io.jwt.verify_rs256', rs256({}), `${certPem}EXTRA`).message).toContain('extra data after a PEM certificate block');
    expect(callError('io.jwt.verify_rs256', rs256({}), '{not json').message).toContain('failed to parse a JWK key (set)');
    expect(call('io.jwt.verify_rs256', rs256({}), certPem)).toBe(false);
  });

  it('rejects encode_sign_raw headers without a known alg', () => {
    const key = JSON.stringify({ kty: 'oct', k: 'c2VjcmV0' });
    expect(callError('io.jwt.encode_sign_raw', '{}', '{}', key).message).toContain('jwsbb: header "alg" not found');
    expect(callError('io.jwt.encode_sign_raw', '{"alg":"dummy"}', '{}', key).message).toContain('unknown JWS algorithm: dummy');
    expect(callError('io.jwt.encode_sign_raw', '{"typ":"JWT","alg":"HS256"}', '', key).message).toContain('type is JWT but payload is not JSON');
  });
});

describe('crypto', () => {
  it('hashes and HMACs as hex', () => {
    expect(call('crypto.sha256', 'abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(call('crypto.md5', '')).toBe('d41d8cd98f00b204e9800998ecf8427e');
    expect(call('crypto.hmac.sha256', 'data', 'key')).toBe('5031fe3d989c6d1537a013fa6e739da23463fdaec3b70137d828e36ace221bd0');
    expect(call('crypto.hmac.equal', 'abc', 'abc')).toBe(true);
    expect(call('crypto.hmac.equal', 'abc', 'abd')).toBe(false);
  });

  it('parses certificates from PEM and base64 PEM', () => {
    const [root, leaf] = call('crypto.x509.parse_certificates', chainPem) as PlainObject[];
    expect((leaf!.Subject as PlainObject).CommonName).toBe('svc.example.com');
    expect(leaf!.DNSNames).toEqual(['svc.example.com']);
    expect(leaf!.URIStrings).toEqual(['spiffe://example.org/svc']);
    expect(root!.IsCA).toBe(true);
    const b64 = Buffer.from(chainPem).toString('base64');
    expect((call('crypto.x509.parse_certificates', b64) as unknown[]).length).toBe(2);
    expect(callError('crypto.x509.parse_certificates', 'not base64!').message).toContain('illegal base64');
  });

  it('verifies a root-first chain, returning it leaf first, and rejects one that does not lead to the root', () => {
    const [valid, certs] = call('crypto.x509.parse_and_verify_certificates', chainPem) as [boolean, PlainObject[]];
    expect(valid).toBe(true);
    expect(certs.map((c) => (c.Subject as PlainObject).CommonName)).toEqual(['svc.example.com', 'Test Root']);
    expect(call('crypto.x509.parse_and_verify_certificates', certPem)).toEqual([false, []]);
    expect(call('crypto.x509.parse_and_verify_certificates', `${leafPem}\n${certPem}`)).toEqual([false, []]);
  });

  it('parses RSA private keys into JWKs', () => {
    const pem = rsa.privateKey.export({ format: 'pem', type: 'pkcs1' }).toString();
    const jwk = call('crypto.x509.parse_rsa_private_key', pem) as PlainObject;
    expect(jwk.kty).toBe('RSA');
    expect(jwk.n).toBe(privateJwk.n);
    expect((call('crypto.parse_private_keys', pem) as unknown[]).length).toBe(1);
    expect(call('crypto.parse_private_keys', '')).toBeNull();
    expect(call('crypto.parse_private_keys', 'nope')).toEqual([]);
  });
});

describe('io.jwt.decode_verify header rules', () => {
  it('rejects a token whose critical header is not understood but accepts understood ones', () => {
    const claims = { iss: 'issuer', exp: nowSec + 60 };
    const unknownCrit = rs256(claims, { alg: 'RS256', crit: ['junk'], junk: 'x' });
    expect(call('io.jwt.decode_verify', unknownCrit, { cert: publicPem })).toEqual([false, {}, {}]);
    const knownCrit = rs256(claims, { alg: 'RS256', crit: ['kid'], kid: 'k1' });
    expect((call('io.jwt.decode_verify', knownCrit, { cert: publicPem }) as unknown[])[0]).toBe(true);
  });

  it('requires the issuer when the constraints name one', () => {
    expect(call('io.jwt.decode_verify', rs256({ sub: 'x' }), { cert: publicPem, iss: 'issuer' })).toEqual([false, {}, {}]);
  });
});
