import { parseDuration } from '../config/index.ts';
import { MeshwardError } from '../lib/errors.ts';
/** Server options from flags, then environment, then defaults. */
import type { ServeOptions } from '../server/capability.ts';
import { loadKek, loadPreviousKeks, type PostgresStateOptions, postgresStateOptions, requireKek } from '../state/index.ts';
import type { CliOption } from './command.ts';

export type { CliOption } from './command.ts';

export const SERVE_DEFAULTS = {
  configDir: 'policies',
  dataDir: '.meshward',
  grpcAddress: '127.0.0.1:15010',
  httpAddress: '127.0.0.1:15000',
} as const;

/**
 * The options commands share, with what help shows: description, default, environment variable.
 * Commands take theirs with `pickOptions` (help and `npm run docs` are generated from it); the
 * values are resolved from the same entries (`optionValue`), so help cannot drift from behaviour.
 */
export const OPTIONS = {
  config: { type: 'string', short: 'c', value: 'DIR', description: 'Configuration directory (YAML documents and Rego modules)', default: SERVE_DEFAULTS.configDir, env: 'MESHWARD_CONFIG_DIR' },
  data: { type: 'string', short: 'd', value: 'DIR', description: 'Data directory (CA, API tokens, audit log, serve.lock)', default: SERVE_DEFAULTS.dataDir, env: 'MESHWARD_DATA_DIR' },
  'grpc-addr': { type: 'string', value: 'HOST:PORT', description: 'gRPC listen address (ext_authz, SDS, ADS, RLS, CA, health)', default: SERVE_DEFAULTS.grpcAddress, env: 'MESHWARD_GRPC_ADDR' },
  'unary-grpc-addr': { type: 'string', value: 'HOST:PORT', description: "Also serve ext_authz Check, the Istio CA's CreateCertificate and gRPC health on this address, on meshward's own HTTP/2 server (several times cheaper per call; same TLS and limits as --grpc-addr). Off when unset", env: 'MESHWARD_UNARY_GRPC_ADDR' },
  'http-addr': { type: 'string', value: 'HOST:PORT', description: 'HTTP API listen address (REST API, /metrics, health, trust bundle)', default: SERVE_DEFAULTS.httpAddress, env: 'MESHWARD_HTTP_ADDR' },
  'database-url': { type: 'string', value: 'URL', description: 'PostgreSQL shared by replicas (CA, API tokens, audit); needs a KEK', env: 'MESHWARD_DATABASE_URL' },
  'redis-url': { type: 'string', value: 'URL', description: 'Redis for rate-limit counters shared by replicas', env: 'MESHWARD_REDIS_URL' },
  'ca-dir': { type: 'string', value: 'DIR', description: 'A plugged-in CA in Istio cacerts layout (ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem); else <data>/ca/plugged, else the generated CA', env: 'MESHWARD_CA_DIR' },
  'kek-file': { type: 'string', value: 'FILE', description: 'Key-encryption key of shared state (32 bytes; or base64 in MESHWARD_KEK)', env: 'MESHWARD_KEK_FILE' },
  'previous-kek-file': { type: 'string', value: 'FILE', description: 'Previous key-encryption keys, one base64 key per line, still accepted to open shared secrets during a KEK rotation (or MESHWARD_PREVIOUS_KEK, comma-separated; see `meshward state rekey`)', env: 'MESHWARD_PREVIOUS_KEK_FILE' },
  'no-watch': { type: 'boolean', description: 'Do not reload the configuration when its files change', env: 'MESHWARD_WATCH_CONFIG=false' },
  'metrics-auth': { type: 'boolean', description: 'Require an API token (operator, auditor or admin) on GET /metrics', env: 'MESHWARD_METRICS_AUTH=true' },
  'no-grpc-fast-path': { type: 'boolean', description: 'Serve ext_authz Check through grpc-js only (no HTTP/2 fast path)', env: 'MESHWARD_GRPC_FAST_PATH=false' },
  'grpc-max-streams': { type: 'string', value: 'N', description: 'Concurrent gRPC streams per connection', default: '1000', env: 'MESHWARD_GRPC_MAX_STREAMS' },
  'grpc-max-connections': { type: 'string', value: 'N', description: 'Open connections accepted on each gRPC port (--grpc-addr and --unary-grpc-addr apart); one beyond it is closed when accepted', default: '10000', env: 'MESHWARD_GRPC_MAX_CONNECTIONS' },
  'grpc-idle-timeout': { type: 'string', value: 'DURATION', description: 'Close a gRPC connection with no open stream after this long', default: '5m', env: 'MESHWARD_GRPC_IDLE_TIMEOUT' },
  'http-tls-cert': { type: 'string', value: 'FILE', description: 'Serve the HTTP API over HTTPS with this certificate (PEM, re-read on change)', env: 'MESHWARD_HTTP_TLS_CERT' },
  'http-tls-key': { type: 'string', value: 'FILE', description: 'Private key of --http-tls-cert (PEM)', env: 'MESHWARD_HTTP_TLS_KEY' },
  'http-client-ca': { type: 'string', value: 'FILE', description: 'CA certificates client certificates on the HTTP API are verified against', env: 'MESHWARD_HTTP_CLIENT_CA' },
  'grpc-tls-cert': { type: 'string', value: 'FILE', description: 'Serve gRPC over TLS with this certificate (PEM, re-read on change)', env: 'MESHWARD_GRPC_TLS_CERT' },
  'grpc-tls-key': { type: 'string', value: 'FILE', description: 'Private key of --grpc-tls-cert (PEM)', env: 'MESHWARD_GRPC_TLS_KEY' },
  'trust-domain': { type: 'string', value: 'DOMAIN', description: "Trust domain (default: the Mesh document's trustDomain, else cluster.local)" },
  json: { type: 'boolean', description: 'Print JSON instead of text' },
  /** How commands reach a running server (cli/server.ts). */
  api: { type: 'string', value: 'URL', description: "Running server's HTTP API (default: http://<--http-addr>, or the address in <data>/serve.lock)", env: 'MESHWARD_API' },
  token: { type: 'string', value: 'TOKEN', description: 'API token (else --token-file, MESHWARD_API_TOKEN, MESHWARD_ADMIN_TOKEN, then <data>/admin.token)', env: 'MESHWARD_API_TOKEN' },
  'token-file': { type: 'string', value: 'FILE', description: 'File holding the API token' },
} as const satisfies Record<string, CliOption>;

export type SharedOptionName = keyof typeof OPTIONS;

/** The named shared options; `overrides` gives a command its own description (a string) or fields. */
export function pickOptions(names: readonly SharedOptionName[], overrides: Partial<Record<SharedOptionName, string | Partial<CliOption>>> = {}): Record<string, CliOption> {
  return Object.fromEntries(names.map((n) => {
    const o = overrides[n];
    return [n, o === undefined ? OPTIONS[n] : { ...OPTIONS[n], ...(typeof o === 'string' ? { description: o } : o) }];
  }));
}

/** A shared option's value: the flag, else its environment variable, else its default. */
export function optionValue(name: SharedOptionName, flags: Record<string, unknown>, env: Readonly<Record<string, string | undefined>>): string | undefined {
  const o: CliOption = OPTIONS[name];
  const flag = flags[name];
  if (typeof flag === 'string') return flag;
  return (o.env ? env[o.env] : undefined) ?? o.default;
}

/** What node:util parseArgs takes (help-only fields dropped: a `default` there would hide the env). */
export function parseArgsOptions(options: Record<string, CliOption>): Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> {
  return Object.fromEntries(Object.entries(options).map(([n, o]) => [n, { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }]));
}

/** Help lines of the options, one per option: flags, description, default and environment variable. */
export function optionHelpLines(options: Record<string, CliOption>): string[] {
  const heads = Object.entries(options).map(([n, o]) => `${o.short ? `-${o.short}, ` : '    '}--${n}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`);
  const width = Math.min(Math.max(0, ...heads.map((h) => h.length)) + 2, 34);
  return Object.values(options).map((o, i) => {
    const extra = [o.multiple ? 'repeatable' : '', o.default !== undefined ? `default: ${o.default}` : '', o.env ? `env: ${o.env}` : ''].filter(Boolean);
    const head = heads[i]!;
    return `  ${head.length + 2 > width ? `${head}  ` : head.padEnd(width)}${o.description}${extra.length ? ` [${extra.join('] [')}]` : ''}`;
  });
}

export function resolveServeOptions(flags: Record<string, unknown>, env: Readonly<Record<string, string | undefined>>): ServeOptions {
  const pick = (flag: 'config' | 'data' | 'grpc-addr' | 'http-addr'): string => optionValue(flag, flags, env)!;
  return {
    configDir: pick('config'),
    dataDir: pick('data'),
    grpcAddress: pick('grpc-addr'),
    httpAddress: pick('http-addr'),
    ...unaryAddress(flags, env),
    databaseUrl: (flags['database-url'] as string | undefined) ?? env.MESHWARD_DATABASE_URL,
    redisUrl: (flags['redis-url'] as string | undefined) ?? env.MESHWARD_REDIS_URL,
    ...pluggedCaDir(flags, env),
    ...kekOf(flags, env),
    watchConfig: !(flags['no-watch'] as boolean | undefined) && env.MESHWARD_WATCH_CONFIG !== 'false',
    grpcFastPath: !(flags['no-grpc-fast-path'] as boolean | undefined) && env.MESHWARD_GRPC_FAST_PATH !== 'false',
    metricsAuth: (flags['metrics-auth'] as boolean | undefined) === true || env.MESHWARD_METRICS_AUTH === 'true',
    ...httpTls(flags, env),
    ...grpcTls(flags, env),
    ...grpcLimits(flags, env),
  };
}

function unaryAddress(flags: Record<string, unknown>, env: Readonly<Record<string, string | undefined>>): Pick<ServeOptions, 'unaryGrpcAddress'> {
  const address = optionValue('unary-grpc-addr', flags, env);
  if (address === undefined || address === '') return {};
  const port = /^.+:(\d{1,5})$/.exec(address)?.[1];
  if (port === undefined || Number(port) > 65_535) throw new MeshwardError('INVALID_ARGUMENT', `--unary-grpc-addr must be HOST:PORT (port 0–65535), got "${address}"`);
  return { unaryGrpcAddress: address };
}

function pluggedCaDir(flags: Record<string, unknown>, env: Readonly<Record<string, string | undefined>>): Pick<ServeOptions, 'pluggedCaDir'> {
  const dir = (flags['ca-dir'] as string | undefined) ?? env.MESHWARD_CA_DIR;
  return dir ? { pluggedCaDir: dir } : {};
}

function grpcTls(flags: Record<string, unknown>, env: Readonly<Record<string, string | undefined>>): Pick<ServeOptions, 'grpcTls'> {
  const certFile = (flags['grpc-tls-cert'] as string | undefined) ?? env.MESHWARD_GRPC_TLS_CERT;
  const keyFile = (flags['grpc-tls-key'] as string | undefined) ?? env.MESHWARD_GRPC_TLS_KEY;
  if (!certFile && !keyFile) return {};
  if (!certFile || !keyFile) throw new MeshwardError('INVALID_ARGUMENT', 'TLS on the gRPC port needs both --grpc-tls-cert and --grpc-tls-key');
  return { grpcTls: { certFile, keyFile } };
}

function httpTls(flags: Record<string, unknown>, env: Readonly<Record<string, string | undefined>>): Pick<ServeOptions, 'httpTls'> {
  const certFile = (flags['http-tls-cert'] as string | undefined) ?? env.MESHWARD_HTTP_TLS_CERT;
  const keyFile = (flags['http-tls-key'] as string | undefined) ?? env.MESHWARD_HTTP_TLS_KEY;
  const clientCaFile = (flags['http-client-ca'] as string | undefined) ?? env.MESHWARD_HTTP_CLIENT_CA;
  if (!certFile && !keyFile) return {};
  if (!certFile || !keyFile) throw new MeshwardError('INVALID_ARGUMENT', 'HTTPS needs both --http-tls-cert and --http-tls-key');
  return { httpTls: { certFile, keyFile, ...(clientCaFile ? { clientCaFile } : {}) } };
}

/** The key-encryption key of shared state: --kek-file / MESHWARD_KEK_FILE, or MESHWARD_KEK (base64). */
function kekOf(flags: Record<string, unknown>, env: Readonly<Record<string, string | undefined>>): Pick<ServeOptions, 'kek' | 'previousKeks'> {
  const kek = loadKek({ file: (flags['kek-file'] as string | undefined) ?? env.MESHWARD_KEK_FILE, env: env.MESHWARD_KEK });
  const previousKeks = loadPreviousKeks({ file: (flags['previous-kek-file'] as string | undefined) ?? env.MESHWARD_PREVIOUS_KEK_FILE, env: env.MESHWARD_PREVIOUS_KEK });
  return { ...(kek ? { kek } : {}), ...(previousKeks.length ? { previousKeks } : {}) };
}

/** How a command opens the shared state: --database-url, the KEK (required) and any previous ones, MESHWARD_STATE_SCHEMA. */
export function stateStoreOptions(options: ServeOptions & { databaseUrl: string }, env: Readonly<Record<string, string | undefined>>): PostgresStateOptions {
  return postgresStateOptions({ ...options, kek: requireKek(options.kek), ...(env.MESHWARD_STATE_SCHEMA ? { stateSchema: env.MESHWARD_STATE_SCHEMA } : {}) });
}

type GrpcLimitOptions = Pick<ServeOptions, 'grpcMaxConcurrentStreams' | 'grpcIdleTimeoutMs' | 'grpcMaxConnections'>;

/** A positive integer flag (or its environment variable), undefined when neither is set. */
function positiveInteger(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 2 ** 31 - 1) throw new MeshwardError('INVALID_ARGUMENT', `--${flag}: "${value}" is not a positive integer`);
  return n;
}

/** --grpc-max-streams (streams per connection), --grpc-max-connections (per port) and --grpc-idle-timeout (a duration: 5m, 30s). */
function grpcLimits(flags: Record<string, unknown>, env: Readonly<Record<string, string | undefined>>): GrpcLimitOptions {
  const idle = (flags['grpc-idle-timeout'] as string | undefined) ?? env.MESHWARD_GRPC_IDLE_TIMEOUT;
  const out: GrpcLimitOptions = {};
  const streams = positiveInteger('grpc-max-streams', (flags['grpc-max-streams'] as string | undefined) ?? env.MESHWARD_GRPC_MAX_STREAMS);
  if (streams !== undefined) out.grpcMaxConcurrentStreams = streams;
  const connections = positiveInteger('grpc-max-connections', (flags['grpc-max-connections'] as string | undefined) ?? env.MESHWARD_GRPC_MAX_CONNECTIONS);
  if (connections !== undefined) out.grpcMaxConnections = connections;
  if (idle !== undefined) {
    try {
      out.grpcIdleTimeoutMs = parseDuration(idle);
    } catch {
      throw new MeshwardError('INVALID_ARGUMENT', `--grpc-idle-timeout: "${idle}" is not a duration (e.g. 5m, 30s)`);
    }
    if (out.grpcIdleTimeoutMs < 1) throw new MeshwardError('INVALID_ARGUMENT', '--grpc-idle-timeout must be positive');
  }
  return out;
}
