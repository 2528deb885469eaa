/** Error codes of shared state (PostgreSQL) and its key-encryption key. */
import { status } from '@grpc/grpc-js';
import { MeshwardError, registerErrorCodes } from '../lib/errors.ts';

registerErrorCodes({
  STATE_KEK_MISSING: { grpc: status.FAILED_PRECONDITION, http: 500, exit: 78, description: 'Shared state in PostgreSQL needs a key-encryption key (--kek-file or MESHWARD_KEK) so secrets are never stored in clear.' },
  STATE_KEK_INVALID: { grpc: status.FAILED_PRECONDITION, http: 500, exit: 78, description: 'The key-encryption key is not 32 bytes (base64), or does not open the secrets already stored.' },
});

export class StateError extends MeshwardError {}
