/**
 * The Workload API's Unix socket. Socket permissions are the access control, so the socket is
 * bound inside a fresh 0700 directory next to its final path, given its mode there, and only then
 * renamed into place: no process can connect while the socket still has the umask's mode.
 */
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { type Server, ServerCredentials } from '@grpc/grpc-js';
import { WorkloadSocketError } from './errors.ts';

/** sun_path holds 108 bytes with the terminating NUL on Linux. */
const MAX_SOCKET_PATH_BYTES = 107;

/**
 * `unix:///abs/path`, `unix:/abs/path` (the SPIFFE_ENDPOINT_SOCKET forms) or a plain path → an
 * absolute filesystem path.
 * @example socketPathOf('unix:///run/meshward/workload.sock') // '/run/meshward/workload.sock'
 */
export function socketPathOf(address: string): string {
  let file = address;
  if (address.startsWith('unix://')) {
    file = address.slice('unix://'.length);
    if (!file.startsWith('/')) throw new WorkloadSocketError(`Workload API socket "${address}": unix:// addresses need an absolute path (unix:///path)`);
  } else if (address.startsWith('unix:')) {
    file = address.slice('unix:'.length);
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(address)) {
    throw new WorkloadSocketError(`Workload API socket "${address}": only unix: addresses are served (the Workload API is a local endpoint)`);
  }
  if (file === '') throw new WorkloadSocketError('Workload API socket: empty path');
  const absolute = path.resolve(file);
  if (Buffer.byteLength(absolute) > MAX_SOCKET_PATH_BYTES) {
    throw new WorkloadSocketError(`Workload API socket "${absolute}" is longer than ${MAX_SOCKET_PATH_BYTES} bytes (the Unix socket path limit)`);
  }
  return absolute;
}

function answers(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(file);
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

/** Removes a socket left by a previous run; refuses a live socket or a file that is not a socket. */
async function clearStaleSocket(file: string): Promise<void> {
  let stat: ReturnType<typeof lstatSync>;
  try {
    stat = lstatSync(file);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw new WorkloadSocketError(`Workload API socket "${file}" exists and is not a socket: refusing to replace it`);
  if (await answers(file)) throw new WorkloadSocketError(`Workload API socket "${file}" is in use by another server`, { inUse: true });
  unlinkSync(file);
}

function bind(server: Server, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`unix://${file}`, ServerCredentials.createInsecure(), (err) => {
      if (err) reject(new WorkloadSocketError(`cannot listen on Workload API socket "${file}": ${err.message}`, { cause: err }));
      else resolve();
    });
  });
}

export interface BoundSocket {
  path: string;
  /** Removes the socket file, unless another server has replaced it since. */
  release(): void;
}

/** Binds `server` on `address` with file mode `mode` (0600 by default; 0660 to admit a group). */
export async function bindWorkloadSocket(server: Server, address: string, mode = 0o600): Promise<BoundSocket> {
  const file = socketPathOf(address);
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  await clearStaleSocket(file);
  const privateDir = mkdtempSync(path.join(path.dirname(file), '.mw-'));
  const staging = path.join(privateDir, 's');
  try {
    if (Buffer.byteLength(staging) <= MAX_SOCKET_PATH_BYTES) {
      await bind(server, staging);
      chmodSync(staging, mode);
      renameSync(staging, file);
    } else {
      // The staging name does not fit sun_path: bind in place (a short window at the umask's mode).
      await bind(server, file);
      chmodSync(file, mode);
    }
  } finally {
    rmSync(privateDir, { recursive: true, force: true });
  }
  const inode = lstatSync(file).ino;
  return {
    path: file,
    release() {
      try {
        if (lstatSync(file).ino === inode) unlinkSync(file);
      } catch {
        // already gone
      }
    },
  };
}
