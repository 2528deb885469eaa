/** Error codes of the ext_authz capability. */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { MeshwardError, registerErrorCodes } from '../lib/errors.ts';

registerErrorCodes({
  AUTHZ_BAD_REQUEST: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 400, exit: 2, description: 'ext_authz: the checked request is malformed (unparseable body, NUL in path); answered as a 400 denial.' },
  AUTHZ_NOT_READY: { grpc: GrpcStatus.UNAVAILABLE, http: 503, exit: 69, description: 'ext_authz: no compiled policy set yet (an embedder calling check() before start(); `meshward serve` opens no port before the first compile).' },
  AUTHZ_STAGE_FAILED: { grpc: GrpcStatus.INTERNAL, http: 500, exit: 70, description: 'ext_authz: a pipeline stage failed; Envoy applies failure_mode_allow / status_on_error.' },
  JWKS_FETCH_FAILED: { grpc: GrpcStatus.UNAVAILABLE, http: 503, exit: 69, description: 'RequestAuthentication: the jwksUri could not be fetched or parsed.' },
});

/** The request being checked is malformed; becomes a 400 denial, never a gRPC error. */
export class AuthzBadRequestError extends MeshwardError {
  constructor(message: string) {
    super('AUTHZ_BAD_REQUEST', message);
  }
}

export class AuthzNotReadyError extends MeshwardError {
  constructor() {
    super('AUTHZ_NOT_READY', 'ext_authz has no compiled policy set yet');
  }
}

/** A stage threw: the check fails with a gRPC error so Envoy's failure mode decides. */
export class AuthzStageError extends MeshwardError {
  readonly stage: string;
  constructor(stage: string, cause: unknown) {
    super('AUTHZ_STAGE_FAILED', `stage ${stage} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause, details: { stage } });
    this.stage = stage;
  }
}

export class JwksFetchError extends MeshwardError {
  constructor(uri: string, cause: unknown) {
    super('JWKS_FETCH_FAILED', `fetching JWKS from ${uri} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause, details: { uri } });
  }
}
