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
});
