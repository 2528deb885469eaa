/**
 * A gRPC server on a Unix socket whose file mode is the access control. The socket is bound in a
 * fresh 0700 directory, given its mode, then renamed into place: there is no instant at which it
 * exists at its path with the umask's permissions.
 */
import { chmodSync, lstatSync, type Stats, mkdtempSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { type Server, ServerCredentials } from '@grpc/grpc-js';
import { MeshwardError } from '../lib/errors.ts';

/** Removes a stale socket left by a previous run; refuses to replace anything that is not a socket. */
function clearStale(socketPath: string): void {
  let st: Stats;
  try {
    st = lstatSync(socketPath);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new MeshwardError('INVALID_ARGUMENT', `${socketPath} exists and is not a socket; refusing to replace it`);
  unlinkSync(socketPath);
}

export function parseSocketMode(text: string | undefined): number {
  const mode = text === undefined ? 0o600 : Number.parseInt(text, 8);
  if (mode !== 0o600 && mode !== 0o660) throw new MeshwardError('INVALID_ARGUMENT', `socket mode must be 0600 or 0660 (got "${text}")`);
  return mode;
}

/** Binds `server` on `socketPath` with `mode` (0600 or 0660); returns a function removing the file. */
export async function bindUnixSocket(server: Server, socketPath: string, mode: number): Promise<() => void> {
  const target = path.resolve(socketPath);
  clearStale(target);
  const dir = mkdtempSync(path.join(path.dirname(target), '.meshward-sock-'));
  const temp = path.join(dir, 's');
  try {
    await new Promise<void>((resolve, reject) => server.bindAsync(`unix:${temp}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
    chmodSync(temp, mode);
    renameSync(temp, target);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return () => {
    try {
      unlinkSync(target);
    } catch {
      // already gone
    }
  };
}
