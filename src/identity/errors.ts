/** Error codes of workload identity: SPIFFE IDs and caller authentication. */
import { status } from '@grpc/grpc-js';
import { MeshwardError, registerErrorCodes } from '../lib/errors.ts';

registerErrorCodes({
  SPIFFE_ID_INVALID: { grpc: status.INVALID_ARGUMENT, http: 400, exit: 2, description: 'A SPIFFE ID (or trust domain, namespace, service account) breaks the SPIFFE ID rules.' },
});

export class SpiffeIdError extends MeshwardError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('SPIFFE_ID_INVALID', message, details ? { details } : undefined);
  }
}

/** The caller presented no credential, or one that did not verify. */
export class UnauthenticatedError extends MeshwardError {
  constructor(message: string, cause?: unknown) {
    super('UNAUTHENTICATED', message, cause === undefined ? undefined : { cause });
  }
}
