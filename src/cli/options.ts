import { parseDuration } from '../config/index.ts';
import { MeshwardError } from '../lib/errors.ts';
/** Server options from flags, then environment, then defaults. */
import type { ServeOptions } from '../server/capability.ts';
import { loadKek } from '../state/index.ts';

export const SERVE_DEFAULTS = {
  configDir: 'policies',
  dataDir: '.meshward',
  grpcAddress: '127.0.0.1:15010',
  httpAddress: '127.0.0.1:15000',
} as const;

export function resolveServeOptions(flags: Record<string, unknown>, env: Readonly<Record<string, string | undefined>>): ServeOptions {
  const pick = (flag: string, envName: string, fallback: string): string => (flags[flag] as string | undefined) ?? env[envName] ?? fallback;
  return {
    configDir: pick('config', 'MESHWARD_CONFIG_DIR', SERVE_DEFAULTS.configDir),
    dataDir: pick('data', 'MESHWARD_DATA_DIR', SERVE_DEFAULTS.dataDir),
    grpcAddress: pick('grpc-addr', 'MESHWARD_GRPC_ADDR', SERVE_DEFAULTS.grpcAddress),
    httpAddress: pick('http-addr', 'MESHWARD_HTTP_ADDR', SERVE_DEFAULTS.httpAddress),
    databaseUrl: (flags['database-url'] as string | undefined) ?? env.MESHWARD_DATABASE_URL,
    redisUrl: (flags['redis-url'] as string | undefined) ?? env.MESHWARD_REDIS_URL,
    ...pluggedCaDir(flags, env),
    ...kekOf(flags, env),
    watchConfig: !(flags['no-watch'] as boolean | undefined) && env.MESHWARD_WATCH_CONFIG !== 'false',
    grpcFastPath: !(flags['no-grpc-fast-path'] as boolean | undefined) && env.MESHWARD_GRPC_FAST_PATH !== 'false',
    ...httpTls(flags, env),
    ...grpcTls(flags, env),
    ...grpcLimits(flags, env),
  };
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
function kekOf(flags: Record<string, unknown>, env: Readonly<Record<string, string | undefined>>): Pick<ServeOptions, 'kek'> {
  const kek = loadKek({ file: (flags['kek-file'] as string | undefined) ?? env.MESHWARD_KEK_FILE, env: env.MESHWARD_KEK });
  return kek ? { kek } : {};
}

/** --grpc-max-streams (streams per connection) and --grpc-idle-timeout (a duration: 5m, 30s). */
function grpcLimits(flags: Record<string, unknown>, env: Readonly<Record<string, string | undefined>>): Pick<ServeOptions, 'grpcMaxConcurrentStreams' | 'grpcIdleTimeoutMs'> {
  const streams = (flags['grpc-max-streams'] as string | undefined) ?? env.MESHWARD_GRPC_MAX_STREAMS;
  const idle = (flags['grpc-idle-timeout'] as string | undefined) ?? env.MESHWARD_GRPC_IDLE_TIMEOUT;
  const out: Pick<ServeOptions, 'grpcMaxConcurrentStreams' | 'grpcIdleTimeoutMs'> = {};
  if (streams !== undefined) {
    const n = Number(streams);
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 31 - 1) throw new MeshwardError('INVALID_ARGUMENT', `--grpc-max-streams: "${streams}" is not a positive integer`);
    out.grpcMaxConcurrentStreams = n;
  }
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
