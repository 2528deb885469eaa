import { describe, expect, it } from 'vitest';
import { resolveServeOptions } from '../../src/cli/options.ts';

describe('serve options', () => {
  it('serves ext_authz Check on the HTTP/2 fast path unless a flag or the environment turns it off', () => {
    expect(resolveServeOptions({}, {}).grpcFastPath).toBe(true);
    expect(resolveServeOptions({ 'no-grpc-fast-path': true }, {}).grpcFastPath).toBe(false);
    expect(resolveServeOptions({}, { MESHWARD_GRPC_FAST_PATH: 'false' }).grpcFastPath).toBe(false);
  });

  it('takes flags over the environment over the defaults', () => {
    expect(resolveServeOptions({ 'grpc-addr': '0.0.0.0:1' }, { MESHWARD_GRPC_ADDR: '0.0.0.0:2' }).grpcAddress).toBe('0.0.0.0:1');
    expect(resolveServeOptions({}, { MESHWARD_GRPC_ADDR: '0.0.0.0:2' }).grpcAddress).toBe('0.0.0.0:2');
    expect(resolveServeOptions({}, {}).grpcAddress).toBe('127.0.0.1:15010');
  });

  it('serves the gRPC port over TLS only with both a certificate and a key, from flags or the environment', () => {
    expect(resolveServeOptions({}, {}).grpcTls).toBeUndefined();
    expect(resolveServeOptions({ 'grpc-tls-cert': 'c.pem', 'grpc-tls-key': 'k.pem' }, {}).grpcTls).toEqual({ certFile: 'c.pem', keyFile: 'k.pem' });
    expect(resolveServeOptions({}, { MESHWARD_GRPC_TLS_CERT: 'c.pem', MESHWARD_GRPC_TLS_KEY: 'k.pem' }).grpcTls).toEqual({ certFile: 'c.pem', keyFile: 'k.pem' });
    expect(() => resolveServeOptions({ 'grpc-tls-cert': 'c.pem' }, {})).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('--grpc-tls-key') }));
  });
});
