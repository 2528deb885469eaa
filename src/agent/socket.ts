/**
 * The agent's Unix sockets (SDS, the xDS proxy, the Workload API), whose file mode is the access
 * control. A socket is bound inside a fresh 0700 directory next to its final path, given its mode
 * there, and only then renamed into place: no process can connect while it still has the umask's
 * mode. One implementation for every socket, so each gets the same refusals (a live socket, a
 * file that is not a socket, a path longer than sun_path).
 */
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { type Server, ServerCredentials } from '@grpc/grpc-js';
import { MeshwardError } from '../lib/errors.ts';

/** sun_path holds 108 bytes with the terminating NUL on Linux. */
const MAX_SOCKET_PATH_BYTES = 107;

/** A socket that cannot be created (bad address, a non-socket file in the way, another server listening). */
export class AgentSocketError extends MeshwardError {
  constructor(message: string, options?: { cause?: unknown; inUse?: boolean }) {
    super(options?.inUse ? 'UNAVAILABLE' : 'INVALID_ARGUMENT', message, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

export function parseSocketMode(text: string | undefined): number {
  const mode = text === undefined ? 0o600 : Number.parseInt(text, 8);
  if (mode !== 0o600 && mode !== 0o660) throw new MeshwardError('INVALID_ARGUMENT', `socket mode must be 0600 or 0660 (got "${text}")`);
  return mode;
}

/**
 * `unix:///abs/path`, `unix:/abs/path` (the SPIFFE_ENDPOINT_SOCKET forms) or a plain path → an
 * absolute filesystem path. `label` names the socket in errors.
 * @example socketPathOf('unix:///run/meshward/workload.sock') // '/run/meshward/workload.sock'
 */
export function socketPathOf(address: string, label = 'Workload API socket'): string {
  let file = address;
  if (address.startsWith('unix://')) {
    file = address.slice('unix://'.length);
    if (!file.startsWith('/')) throw new AgentSocketError(`${label} "${address}": unix:// addresses need an absolute path (unix:///path)`);
  } else if (address.startsWith('unix:')) {
    file = address.slice('unix:'.length);
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(address)) {
    throw new AgentSocketError(`${label} "${address}": only unix: addresses are served (a local endpoint)`);
  }
  if (file === '') throw new AgentSocketError(`${label}: empty path`);
  const absolute = path.resolve(file);
  if (Buffer.byteLength(absolute) > MAX_SOCKET_PATH_BYTES) {
    throw new AgentSocketError(`${label} "${absolute}" is longer than ${MAX_SOCKET_PATH_BYTES} bytes (the Unix socket path limit)`);
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
async function clearStaleSocket(file: string, label: string): Promise<void> {
  let stat: ReturnType<typeof lstatSync>;
  try {
    stat = lstatSync(file);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw new AgentSocketError(`${label} "${file}" exists and is not a socket: refusing to replace it`);
  if (await answers(file)) throw new AgentSocketError(`${label} "${file}" is in use by another server`, { inUse: true });
  unlinkSync(file);
}

function bind(server: Server, file: string, label: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`unix://${file}`, ServerCredentials.createInsecure(), (err) => {
      if (err) reject(new AgentSocketError(`cannot listen on ${label} "${file}": ${err.message}`, { cause: err }));
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
export async function bindUnixSocket(server: Server, address: string, mode = 0o600, label = 'Workload API socket'): Promise<BoundSocket> {
  const file = socketPathOf(address, label);
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  await clearStaleSocket(file, label);
  const privateDir = mkdtempSync(path.join(path.dirname(file), '.mw-'));
  const staging = path.join(privateDir, 's');
  try {
    if (Buffer.byteLength(staging) <= MAX_SOCKET_PATH_BYTES) {
      await bind(server, staging, label);
      chmodSync(staging, mode);
      renameSync(staging, file);
    } else {
      // The staging name does not fit sun_path: bind in place (a short window at the umask's mode).
      await bind(server, file, label);
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
