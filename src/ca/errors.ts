/** Error codes of the certificate authority. */
import { status } from '@grpc/grpc-js';
import { MeshwardError, registerErrorCodes } from '../lib/errors.ts';

registerErrorCodes({
  CA_NOT_INITIALIZED: { grpc: status.FAILED_PRECONDITION, http: 409, exit: 78, description: 'The data directory holds no CA (run `meshward ca init`).' },
  CA_INVALID: { grpc: status.FAILED_PRECONDITION, http: 409, exit: 78, description: 'A CA certificate or key is missing, expired, not a CA, or does not match.' },
  CA_ROTATION_UNSUPPORTED: { grpc: status.FAILED_PRECONDITION, http: 409, exit: 78, description: 'The CA cannot rotate itself (a plugged-in CA is rotated by replacing its files).' },
  SERVER_KEYS_DISABLED: { grpc: status.FAILED_PRECONDITION, http: 409, exit: 78, description: 'meshward does not generate or serve workload private keys (Mesh.spec.identity.serverKeys: false): run `meshward agent` next to the workload.' },
  CSR_INVALID: { grpc: status.INVALID_ARGUMENT, http: 400, exit: 2, description: 'A certificate signing request is malformed, uses an unsupported algorithm or has a bad signature.' },
});

export class CaError extends MeshwardError {}

export const caInvalid = (message: string, details?: Record<string, unknown>) => new CaError('CA_INVALID', message, details ? { details } : undefined);
export const csrInvalid = (message: string, cause?: unknown) => new CaError('CSR_INVALID', message, cause === undefined ? undefined : { cause });
