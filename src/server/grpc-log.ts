/**
 * grpc-js writes its own log lines to stderr ("E No address added ..."), which would put a second,
 * unstructured line next to the one-line error `meshward serve` prints. They go to meshward's
 * structured log instead (grpc-js's logger is process-wide: the last server created sets it).
 */
import { format } from 'node:util';
import { setLogger } from '@grpc/grpc-js';
import type { Logger } from '../lib/logger.ts';

export function routeGrpcJsLogs(logger: Logger): void {
  const child = logger.child({ component: 'grpc-js' });
  setLogger({
    error: (message?: unknown, ...rest: unknown[]) => child.warn(format(message, ...rest)),
    info: (message?: unknown, ...rest: unknown[]) => child.info(format(message, ...rest)),
    debug: (message?: unknown, ...rest: unknown[]) => child.debug(format(message, ...rest)),
  });
}
