/** Errors of the agent's Workload API server. Codes are the catalog's generic ones (gRPC mapping as the standard asks). */
import { MeshwardError } from '../../lib/errors.ts';

/** A Workload API request the standard says to refuse with InvalidArgument (missing security header, no audience, a JWT-SVID that does not validate). */
export class WorkloadApiRequestError extends MeshwardError {
  constructor(message: string, cause?: unknown) {
    super('INVALID_ARGUMENT', message, cause === undefined ? undefined : { cause });
  }
}

/** The caller asked for an identity this agent does not hold. */
export class WorkloadApiPermissionError extends MeshwardError {
  constructor(message: string) {
    super('PERMISSION_DENIED', message);
  }
}

/** The Workload API socket cannot be created: the agent's socket error (one binder for every socket). */
export { AgentSocketError as WorkloadSocketError } from '../socket.ts';
