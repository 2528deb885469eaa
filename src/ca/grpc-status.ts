/** MeshwardError → gRPC error for callbacks and streams (status code + message, never internals). */
import type { ServiceError, status } from '@grpc/grpc-js';
import { MeshwardError, toGrpcStatus } from '../lib/errors.ts';

export function grpcError(err: unknown): Partial<ServiceError> & { code: status; details: string } {
  const code = toGrpcStatus(err);
  const details = err instanceof MeshwardError ? err.message : 'internal error';
  return { code, details, message: details };
}
