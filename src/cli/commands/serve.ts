import { createMeshward, type Meshward } from '../../meshward.ts';
import type { CliCommand } from '../command.ts';
import { requireKek } from '../../state/index.ts';
import { resolveServeOptions } from '../options.ts';

export const command: CliCommand = {
  name: 'serve',
  summary: 'Run meshward: gRPC (ext_authz, SDS, ADS, RLS, CA, health) and the HTTP API.',
  options: {
    config: { type: 'string', short: 'c' },
    data: { type: 'string', short: 'd' },
    'grpc-addr': { type: 'string' },
    'http-addr': { type: 'string' },
    'database-url': { type: 'string' },
    'redis-url': { type: 'string' },
    'ca-dir': { type: 'string' },
    'kek-file': { type: 'string' },
    'no-watch': { type: 'boolean' },
    'no-grpc-fast-path': { type: 'boolean' },
    'grpc-max-streams': { type: 'string' },
    'grpc-idle-timeout': { type: 'string' },
    'http-tls-cert': { type: 'string' },
    'http-tls-key': { type: 'string' },
    'http-client-ca': { type: 'string' },
    'grpc-tls-cert': { type: 'string' },
    'grpc-tls-key': { type: 'string' },
  },
  async run({ values }, io) {
    const options = resolveServeOptions(values, io.env);
    if (options.databaseUrl) requireKek(options.kek); // shared secrets are never stored in clear
    let meshward: Meshward;
    try {
      meshward = await createMeshward(options);
      await meshward.start();
    } catch (err) {
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
        }).finally(exitSoon);
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
