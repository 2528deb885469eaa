/** Error codes of the limits capability. */
import { status } from '@grpc/grpc-js';
import { MeshwardError, registerErrorCodes } from '../lib/errors.ts';

registerErrorCodes({
  LIMITS_BACKEND_UNAVAILABLE: { grpc: status.UNAVAILABLE, http: 503, exit: 69, description: 'The rate-limit or quota backend (Redis, PostgreSQL) did not answer in time; with failureMode closed the request is refused.' },
  LIMITS_BAD_REQUEST: { grpc: status.INVALID_ARGUMENT, http: 400, exit: 2, description: 'A rate-limit request is malformed (empty domain, no descriptors, empty descriptor entries).' },
  QUOTA_NOT_FOUND: { grpc: status.NOT_FOUND, http: 404, exit: 1, description: 'No QuotaPolicy matches the named policy or subject.' },
  LIMITS_STORE_UNCONFIGURED: { grpc: status.FAILED_PRECONDITION, http: 500, exit: 78, description: 'The limits backend or a QuotaPolicy store (redis, postgres) is selected but its URL is not configured.' },
});

/** The backend (Redis, PostgreSQL) failed or timed out. */
export class LimitsBackendUnavailableError extends MeshwardError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('LIMITS_BACKEND_UNAVAILABLE', message, options);
  }
}

export class LimitsBadRequestError extends MeshwardError {
  constructor(message: string) {
    super('LIMITS_BAD_REQUEST', message);
  }
}

export class QuotaNotFoundError extends MeshwardError {
  constructor(message: string) {
    super('QUOTA_NOT_FOUND', message);
  }
}

export class LimitsStoreUnconfiguredError extends MeshwardError {
  constructor(message: string) {
    super('LIMITS_STORE_UNCONFIGURED', message);
  }
}
