/** Error codes of the xDS control plane. */
import { status } from '@grpc/grpc-js';
import { MeshwardError, registerErrorCodes } from '../lib/errors.ts';

registerErrorCodes({
  XDS_NODE_MISMATCH: { grpc: status.PERMISSION_DENIED, http: 403, exit: 77, description: 'An xDS node claims a namespace, service account or service its credential does not prove.' },
  XDS_BAD_REQUEST: { grpc: status.INVALID_ARGUMENT, http: 400, exit: 2, description: 'An xDS request is malformed (no node on the first request, unknown type, bad subscription).' },
  XDS_INCONSISTENT_SNAPSHOT: { grpc: status.INTERNAL, http: 500, exit: 70, description: 'Generated xDS resources reference a route or cluster that was not generated (a bug; the previous configuration keeps serving).' },
});

/** The node's claimed identity (namespace, service account, service) is not what it authenticated as. */
export class XdsNodeMismatchError extends MeshwardError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('XDS_NODE_MISMATCH', message, details ? { details } : undefined);
  }
}

export class XdsBadRequestError extends MeshwardError {
  constructor(message: string) {
    super('XDS_BAD_REQUEST', message);
  }
}

/** go-control-plane's snapshot consistency rule: every referenced RDS/EDS/cluster name exists. */
export class XdsInconsistentSnapshotError extends MeshwardError {
  readonly missing: readonly string[];

  constructor(missing: string[]) {
    super('XDS_INCONSISTENT_SNAPSHOT', `generated xDS resources reference missing resources: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ` (and ${missing.length - 10} more)` : ''}`, { details: { missing } });
    this.missing = missing;
  }
}
