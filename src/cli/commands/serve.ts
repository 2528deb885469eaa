import { mkdirSync } from 'node:fs';
import { createMeshward, type Meshward } from '../../meshward.ts';
import { acquireServeLock } from '../../server/serve-lock.ts';
import type { CliCommand, CliOption } from '../command.ts';
import { createLogger } from '../../lib/logger.ts';
import { resolveLogFormat } from '../../lib/log-format.ts';
import { requireKek } from '../../state/index.ts';
import { pickOptions, resolveServeOptions } from '../options.ts';

/** Adds --log-format (only serve writes logs a person reads at a terminal). */
function withLogFormat(options: Record<string, CliOption>): Record<string, CliOption> {
  return {
    ...options,
    'log-format': { type: 'string', value: 'text|json', description: 'Log lines as JSON (for collectors) or text (for a person)', default: 'text on a terminal, else json', env: 'MESHWARD_LOG_FORMAT' },
  };
}

export const command: CliCommand = {
  name: 'serve',
  summary: 'Run meshward: gRPC (ext_authz, SDS, ADS, RLS, CA, health) and the HTTP API.',
  options: withLogFormat(pickOptions([
    'config', 'data', 'grpc-addr', 'unary-grpc-addr', 'http-addr', 'database-url', 'redis-url', 'ca-dir', 'kek-file', 'previous-kek-file', 'no-watch', 'no-grpc-fast-path', 'metrics-auth',
    'grpc-max-streams', 'grpc-max-connections', 'grpc-idle-timeout', 'http-tls-cert', 'http-tls-key', 'http-client-ca', 'grpc-tls-cert', 'grpc-tls-key',
  ])),
  async run({ values }, io) {
    const logger = createLogger({ format: resolveLogFormat(values['log-format'] as string | undefined, io.env) });
    const options = resolveServeOptions(values, io.env);
    if (options.databaseUrl) requireKek(options.kek); // shared secrets are never stored in clear
    // <data>/serve.lock: offline CLI changes refuse while we run; CLI commands find our address there.
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    const lock = acquireServeLock(options.dataDir);
    let meshward: Meshward;
    try {
      meshward = await createMeshward(options, { logger });
      await meshward.start();
      lock.update({ ...meshward.addresses, httpTls: options.httpTls !== undefined, sharedState: options.databaseUrl !== undefined });
      if (lock.replaced) meshward.logger.warn({ lock: lock.replaced }, 'took over serve.lock written on another host (that server cannot be checked from here: make sure it is gone)');
    } catch (err) {
      lock.release();
      exitSoon(); // start() released what it took; a handle something else leaked must not keep us alive
      throw err;
    }
    // Graceful shutdown: SIGTERM/SIGINT stop accepting, drain, flush, exit 0. A second signal forces exit.
    return new Promise<number>((resolve) => {
      let signalled = false;
      const onSignal = (signal: NodeJS.Signals) => {
        if (signalled) process.exit(1);
        signalled = true;
        meshward.logger.info({ signal }, 'shutting down');
        meshward.stop().then(() => resolve(0), (err) => {
          meshward.logger.error({ err }, 'shutdown failed');
          resolve(1);
        }).finally(() => {
          lock.release();
          exitSoon();
        });
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
  },
};

/**
 * Once serve has nothing left to do (stopped, or failed to start), the process exits within a
 * second with the exit code already set, even if a leaked handle (a timer, a worker) would keep
 * the event loop alive: an orchestrator must see the exit, not a process bound to nothing.
 */
function exitSoon(): void {
  setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
}

const EXIT_GRACE_MS = 1000;
