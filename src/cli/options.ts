/** Server options from flags, then environment, then defaults. */
import type { ServeOptions } from '../server/capability.ts';

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
    watchConfig: !(flags['no-watch'] as boolean | undefined) && env.MESHWARD_WATCH_CONFIG !== 'false',
  };
}
