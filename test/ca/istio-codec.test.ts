import { describe, expect, it } from 'vitest';
import { istioCaServiceDefinition } from '../../src/ca/index.ts';
import { randomBytes } from 'node:crypto';
import { derToPem } from '../../src/ca/der.ts';
import { decodeIstioRequest, encodeIstioLeafFrame, encodeIstioResponse } from '../../src/ca/istio-codec.ts';

const method = () => istioCaServiceDefinition().CreateCertificate!;
const CSR = '-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n';

describe('Istio CA codec (by hand) against proto-loader', () => {
  it('reads csr and validity_duration of what proto-loader writes, skipping metadata', () => {
    const wire = method().requestSerialize({ csr: CSR, validity_duration: 1800, metadata: { fields: { ImpersonatedIdentity: { string_value: 'spiffe://x/ns/a/sa/b' } } } });
    expect(decodeIstioRequest(wire)).toEqual({ csr: CSR, validity_duration: 1800 });
    expect(decodeIstioRequest(method().requestSerialize({}))).toEqual({});
  });

  it('writes a response proto-loader reads back', () => {
    const chain = ['leaf\n', 'intermediate\n', 'root ✓\n'.repeat(100)];
    expect(method().responseDeserialize(encodeIstioResponse({ cert_chain: chain }))).toMatchObject({ cert_chain: chain });
  });

  it('refuses a truncated message', () => {
    const wire = method().requestSerialize({ csr: CSR });
    expect(() => decodeIstioRequest(wire.subarray(0, wire.length - 3))).toThrow(/truncated/);
  });

  it('writes the leaf frame byte for byte as the framed message of the PEM strings', () => {
    const rest = encodeIstioResponse({ cert_chain: ['intermediate\n', 'root\n'] });
    for (const size of [1, 2, 3, 47, 48, 49, 200, 479, 480, 481, 2000]) {
      const leaf = randomBytes(size);
      const message = encodeIstioResponse({ cert_chain: [derToPem(leaf, 'CERTIFICATE'), 'intermediate\n', 'root\n'] });
      const frame = encodeIstioLeafFrame(leaf, rest);
      expect(frame.subarray(5).equals(message)).toBe(true);
      expect(frame[0]).toBe(0);
      expect(frame.readUInt32BE(1)).toBe(message.length);
    }
  });

  it('writes PEM as base64 in 64-character lines, every length modulo 3 and 48', () => {
    for (let size = 0; size < 200; size++) {
      const der = randomBytes(size);
      const expected = `-----BEGIN CERTIFICATE-----\n${(der.toString('base64').match(/.{1,64}/g) ?? ['']).join('\n')}\n-----END CERTIFICATE-----\n`;
      expect(derToPem(der, 'CERTIFICATE')).toBe(expected);
    }
  });
});
