/**
 * `meshward token create|list|revoke`: API tokens for the roles admin, operator and auditor, in
 * the data dir's api-tokens.json or (with --database-url) the store replicas share. A running
 * server applies changes within about a second, without a restart.
 */
import { closeSync, fchmodSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { API_ROLES, type ApiRole, isExpired } from '../../api/token-file.ts';
import { createApiToken, fileTokenAdmin, revokeApiToken, sharedTokenAdmin, type TokenAdmin, type TokenRecord } from '../../api/token-admin.ts';
import { parseDuration } from '../../config/index.ts';
import { MeshwardError } from '../../lib/errors.ts';
import { liveServeLock } from '../../server/serve-lock.ts';
import { PostgresStateStore } from '../../state/index.ts';
import type { CliCommand, CliIo, CliValues } from '../command.ts';
import { pickOptions, resolveServeOptions, stateStoreOptions } from '../options.ts';

const STORE = pickOptions(['data', 'database-url', 'kek-file', 'previous-kek-file'], { 'database-url': 'Use the tokens replicas share in PostgreSQL (needs the KEK)' });

async function openAdmin(values: CliValues, io: CliIo): Promise<TokenAdmin> {
  const options = resolveServeOptions(values, io.env);
  const dataDir = path.resolve(io.cwd, options.dataDir);
  if (!options.databaseUrl) {
    // A server on this data dir that keeps its tokens in PostgreSQL would never see the file.
    const lock = liveServeLock(dataDir);
    if (lock?.sharedState) throw new MeshwardError('INVALID_ARGUMENT', `the server holding ${dataDir} (pid ${lock.pid}) keeps API tokens in PostgreSQL: pass --database-url (and the KEK) to manage them`);
    return fileTokenAdmin(dataDir);
  }
  const store = await PostgresStateStore.open(stateStoreOptions({ ...options, databaseUrl: options.databaseUrl }, io.env));
  return sharedTokenAdmin(store, dataDir);
}

async function withAdmin<T>(values: CliValues, io: CliIo, fn: (admin: TokenAdmin) => Promise<T>): Promise<T> {
  const admin = await openAdmin(values, io);
  try {
    return await fn(admin);
  } finally {
    await admin.close();
  }
}

const str = (v: CliValues[string]): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const iso = (ms: number | undefined) => (ms === undefined ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'));

function roleOf(values: CliValues): ApiRole {
  const role = str(values.role);
  if (!role || !API_ROLES.includes(role as ApiRole)) throw new MeshwardError('INVALID_ARGUMENT', `--role must be one of ${API_ROLES.join(', ')}${role ? ` (got "${role}")` : ''}`);
  return role as ApiRole;
}

function ttlOf(values: CliValues): number | undefined {
  const ttl = str(values.ttl);
  if (!ttl) return undefined;
  let ms: number;
  try {
    ms = parseDuration(ttl);
  } catch (err) {
    throw new MeshwardError('INVALID_ARGUMENT', `--ttl: ${(err as Error).message}`);
  }
  if (ms <= 0) throw new MeshwardError('INVALID_ARGUMENT', '--ttl must be positive');
  return ms;
}

/** Writes the token to `file`, mode 0600 also when the file existed. */
function writeSecret(file: string, token: string): void {
  const fd = openSync(file, 'w', 0o600);
  try {
    fchmodSync(fd, 0o600);
    writeSync(fd, `${token}\n`);
  } finally {
    closeSync(fd);
  }
}

const create: CliCommand = {
  name: 'token create',
  summary: 'Create an API token for a role (admin, operator, auditor): prints it once (or writes it to --out, 0600); only its SHA-256 is stored. A running server accepts it within about a second.',
  options: {
    role: { type: 'string', value: 'ROLE', description: 'admin (everything), operator (what-if checks, proxies, quotas, reload) or auditor (audit and certificate records, proxies) (required)' },
    name: { type: 'string', value: 'NAME', description: 'Unique name: token list shows it, token revoke takes it (required)' },
    ttl: { type: 'string', value: 'DURATION', description: 'Expire after this long (e.g. 30d, 12h)', default: 'never' },
    out: { type: 'string', short: 'o', value: 'FILE', description: 'Write the token to this file (mode 0600) instead of printing it' },
    ...STORE,
    ...pickOptions(['json']),
  },
  async run({ values }, io) {
    const name = str(values.name);
    if (!name) throw new MeshwardError('INVALID_ARGUMENT', '--name is required');
    const role = roleOf(values);
    const ttlMs = ttlOf(values);
    const { token, record, location } = await withAdmin(values, io, async (admin) => ({ ...(await createApiToken(admin, { name, role, ...(ttlMs ? { ttlMs } : {}), now: Date.now() })), location: admin.location }));
    const out = str(values.out) && path.resolve(io.cwd, str(values.out)!);
    if (out) writeSecret(out, token);
    const shown = { name, role, created: iso(record.createdAt), expires: iso(record.expiresAt), store: location, ...(out ? { file: out } : { token }) };
    if (values.json) io.stdout(`${JSON.stringify(shown)}\n`);
    else if (out) io.stdout(`Created ${role} token "${name}" (expires ${shown.expires}) in ${location}; written to ${out}\n`);
    else {
      io.stdout(`${token}\n`);
      io.stderr(`Created ${role} token "${name}" (expires ${shown.expires}) in ${location}. It is shown only this once.\n`);
    }
    return 0;
  },
};

function table(tokens: TokenRecord[], now: number): string {
  const rows = [['NAME', 'ROLE', 'CREATED', 'EXPIRES', 'LAST USED'], ...tokens.map((t) => [
    t.name, t.role, iso(t.createdAt), isExpired(t, now) ? `${iso(t.expiresAt)} (expired)` : iso(t.expiresAt), t.lastUsedAt ? iso(t.lastUsedAt) : 'never',
  ])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return `${rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n')}\n`;
}

const list: CliCommand = {
  name: 'token list',
  summary: 'List API tokens: name, role, created, expires, last used (as servers last recorded it, in batches of up to 30 s). Never the tokens themselves.',
  options: { ...STORE, ...pickOptions(['json']) },
  async run({ values }, io) {
    const tokens = await withAdmin(values, io, (admin) => admin.list());
    const now = Date.now();
    if (values.json) {
      io.stdout(`${JSON.stringify(tokens.map((t) => ({ name: t.name, role: t.role, createdAt: t.createdAt ?? null, expiresAt: t.expiresAt ?? null, expired: isExpired(t, now), lastUsedAt: t.lastUsedAt ?? null })))}\n`);
    } else io.stdout(table(tokens, now));
    return 0;
  },
};

const revoke: CliCommand = {
  name: 'token revoke',
  summary: 'Revoke the API token NAME: a running server refuses it within about a second (removes <data>/admin.token too when it held that token).',
  usage: 'NAME',
  options: { ...STORE },
  async run({ values, positionals }, io) {
    const name = positionals[0];
    if (!name || positionals.length > 1) throw new MeshwardError('INVALID_ARGUMENT', 'exactly one token NAME is required');
    const { n, location } = await withAdmin(values, io, async (admin) => ({ n: await revokeApiToken(admin, name), location: admin.location }));
    io.stdout(`Revoked "${name}"${n > 1 ? ` (${n} tokens)` : ''} in ${location}\n`);
    return 0;
  },
};

export const commands: CliCommand[] = [create, list, revoke];
