import { describe, expect, it } from 'vitest';
import { istioCaServiceDefinition } from '../../src/ca/index.ts';
import { decodeIstioRequest, encodeIstioResponse } from '../../src/ca/istio-codec.ts';

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
});
