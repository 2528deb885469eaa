/**
 * Why a listener could not bind, as a typed error naming the listener and the address, so
 * `meshward serve` prints one line an operator can act on and exits with the catalog's code.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { MeshwardError, registerErrorCodes } from '../lib/errors.ts';

registerErrorCodes({
  // EX_TEMPFAIL: usually the previous instance has not released the port yet; retrying can work.
  ADDRESS_IN_USE: { grpc: GrpcStatus.UNAVAILABLE, http: 503, exit: 75, description: 'A listen address (gRPC or HTTP port) is already in use by another process.' },
  // EX_CONFIG: the address itself is wrong for this host (not one of its addresses, privileged port).
  ADDRESS_UNAVAILABLE: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 500, exit: 78, description: 'A listen address cannot be bound: not an address of this host, or a port this user may not bind.' },
});

export type Listener = 'gRPC' | 'HTTP' | 'unary gRPC';

export class ListenError extends MeshwardError {
  constructor(code: 'ADDRESS_IN_USE' | 'ADDRESS_UNAVAILABLE', message: string, cause: unknown) {
    super(code, message, { cause });
  }
}

/** The errno code of a bind failure: node's `err.code`, or inside grpc-js's message text. */
function errnoOf(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (typeof code === 'string' && code.startsWith('E')) return code;
  return /\b(EADDRINUSE|EADDRNOTAVAIL|EACCES|EPERM)\b/.exec(String((err as Error | null)?.message ?? err))?.[1];
}

/** A ListenError for a known bind failure; any other error is returned unchanged. */
export function listenError(err: unknown, listener: Listener, address: string, flag: string): unknown {
  const errno = errnoOf(err);
  if (errno === 'EADDRINUSE') {
    return new ListenError('ADDRESS_IN_USE', `the ${listener} address ${address} is already in use (another process listens on it): stop that process or choose another address with ${flag}`, err);
  }
  if (errno === 'EADDRNOTAVAIL') {
    return new ListenError('ADDRESS_UNAVAILABLE', `the ${listener} address ${address} is not an address of this host: choose another with ${flag}`, err);
  }
  if (errno === 'EACCES' || errno === 'EPERM') {
    return new ListenError('ADDRESS_UNAVAILABLE', `the ${listener} address ${address} may not be bound by this user (privileged port?): choose another with ${flag}`, err);
  }
  return err;
}
