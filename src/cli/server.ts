/**
 * How every CLI command that talks to a running server finds it and its token, the same way:
 *
 * - address: `--api URL` / MESHWARD_API, else `--http-addr` / MESHWARD_HTTP_ADDR, else the address
 *   the server recorded in `<data>/serve.lock`, else the default 127.0.0.1:15000;
 * - token: `--token`, `--token-file`, MESHWARD_API_TOKEN, MESHWARD_ADMIN_TOKEN, else
 *   `<data>/admin.token` (written by the first start).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { errorCatalog, MeshwardError } from '../lib/errors.ts';
import { liveServeLock } from '../server/serve-lock.ts';
import type { CliIo, CliValues } from './command.ts';
import { OPTIONS, optionValue, pickOptions } from './options.ts';

/** The options of a command that talks to a running server. */
export const SERVER_OPTIONS = pickOptions(['data', 'api', 'http-addr', 'token', 'token-file'], {
  // No fixed default: the address a running server recorded comes first.
  'http-addr': { description: "Running server's HTTP address (default: the one in <data>/serve.lock, else 127.0.0.1:15000)", default: undefined },
});

export interface ServerTarget {
  /** Base URL, without a trailing slash. */
  api: string;
  token: string | undefined;
  /** Where the token came from (error messages). */
  tokenSource: string;
}

const str = (v: CliValues[string]): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function readToken(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new MeshwardError('INVALID_ARGUMENT', `cannot read the token file ${file}: ${(err as Error).message}`);
  }
}

export function serverTarget(values: CliValues, io: CliIo): ServerTarget {
  const dataDir = path.resolve(io.cwd, optionValue('data', values, io.env)!);
  return { api: apiOf(values, io, dataDir), ...tokenOf(values, io, dataDir) };
}

function apiOf(values: CliValues, io: CliIo, dataDir: string): string {
  const explicit = str(values.api) ?? io.env[OPTIONS.api.env];
  if (explicit) return explicit.replace(/\/+$/, '');
  const address = str(values['http-addr']) ?? io.env[OPTIONS['http-addr'].env];
  if (address) return `http://${address}`;
  const lock = liveServeLock(dataDir);
  if (lock?.http) return `${lock.httpTls ? 'https' : 'http'}://${lock.http}`;
  return `http://${OPTIONS['http-addr'].default}`;
}

function tokenOf(values: CliValues, io: CliIo, dataDir: string): Pick<ServerTarget, 'token' | 'tokenSource'> {
  const flag = str(values.token);
  if (flag) return { token: flag, tokenSource: '--token' };
  const file = str(values['token-file']);
  if (file) {
    const resolved = path.resolve(io.cwd, file);
    const token = readToken(resolved);
    if (!token) throw new MeshwardError('INVALID_ARGUMENT', `--token-file ${resolved}: no such file, or empty`);
    return { token, tokenSource: resolved };
  }
  for (const name of [OPTIONS.token.env, 'MESHWARD_ADMIN_TOKEN']) {
    const token = io.env[name];
    if (token) return { token, tokenSource: name };
  }
  const adminFile = path.join(dataDir, 'admin.token');
  return { token: readToken(adminFile), tokenSource: adminFile };
}

/** Thrown when no server answers at the address (the caller may fall back to offline work). */
export class ServerUnreachableError extends MeshwardError {
  constructor(api: string, cause: unknown) {
    super('UNAVAILABLE', `cannot reach meshward at ${api}: ${(cause as Error).message ?? String(cause)}`, { cause });
  }
}

/** Calls the server's API; a refusal is a MeshwardError with the server's catalog code. */
export async function callServer<T>(target: ServerTarget, method: 'GET' | 'POST' | 'DELETE', route: string, body?: unknown): Promise<T> {
  if (!target.token) {
    throw new MeshwardError('UNAUTHENTICATED', `no API token: pass --token or --token-file, set MESHWARD_API_TOKEN, or run where ${target.tokenSource} is readable`);
  }
  let res: Response;
  try {
    res = await fetch(`${target.api}${route}`, {
      method,
      headers: { authorization: `Bearer ${target.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new ServerUnreachableError(target.api, err);
  }
  const payload = (await res.json().catch(() => ({}))) as T & { code?: string; message?: string };
  if (!res.ok) {
    const code = payload.code && errorCatalog().has(payload.code) ? payload.code : res.status === 401 ? 'UNAUTHENTICATED' : res.status === 403 ? 'PERMISSION_DENIED' : 'UNAVAILABLE';
    const hint = code === 'UNAUTHENTICATED' ? ` (token from ${target.tokenSource})` : '';
    throw new MeshwardError(code, `${method} ${target.api}${route}: ${res.status} ${payload.message ?? ''}`.trim() + hint);
  }
  return payload;
}
