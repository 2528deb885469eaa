import { describe, expect, it } from 'vitest';
import { resolveServeOptions } from '../../src/cli/options.ts';

describe('gRPC port limit options', () => {
  it('reads --grpc-max-streams and --grpc-idle-timeout, flags before environment', () => {
    expect(resolveServeOptions({ 'grpc-max-streams': '50', 'grpc-idle-timeout': '30s' }, { MESHWARD_GRPC_MAX_STREAMS: '9' })).toMatchObject({ grpcMaxConcurrentStreams: 50, grpcIdleTimeoutMs: 30_000 });
    expect(resolveServeOptions({}, { MESHWARD_GRPC_MAX_STREAMS: '9', MESHWARD_GRPC_IDLE_TIMEOUT: '2m' })).toMatchObject({ grpcMaxConcurrentStreams: 9, grpcIdleTimeoutMs: 120_000 });
    const defaults = resolveServeOptions({}, {});
    expect(defaults.grpcMaxConcurrentStreams).toBeUndefined();
    expect(defaults.grpcIdleTimeoutMs).toBeUndefined();
  });

  it('refuses a stream cap that is not a positive integer and an idle timeout that is not a duration, naming the flag', () => {
    for (const bad of ['0', '-1', '1.5', 'lots']) expect(() => resolveServeOptions({ 'grpc-max-streams': bad }, {})).toThrow(/--grpc-max-streams/);
    for (const bad of ['5', 'soon', '0s']) expect(() => resolveServeOptions({ 'grpc-idle-timeout': bad }, {})).toThrow(/--grpc-idle-timeout/);
  });

  it('reads --unary-grpc-addr (off when unset) and refuses an address without a valid port, naming the flag', () => {
    expect(resolveServeOptions({ 'unary-grpc-addr': '0.0.0.0:15011' }, { MESHWARD_UNARY_GRPC_ADDR: '127.0.0.1:1' })).toMatchObject({ unaryGrpcAddress: '0.0.0.0:15011' });
    expect(resolveServeOptions({}, { MESHWARD_UNARY_GRPC_ADDR: '[::1]:15011' })).toMatchObject({ unaryGrpcAddress: '[::1]:15011' });
    expect(resolveServeOptions({}, {}).unaryGrpcAddress).toBeUndefined();
    for (const bad of ['15011', 'host:', 'host:port', 'host:70000', ':123456']) expect(() => resolveServeOptions({ 'unary-grpc-addr': bad }, {})).toThrow(/--unary-grpc-addr/);
  });
});
