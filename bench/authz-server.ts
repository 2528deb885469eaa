/**
 * Child process of bench/authz.bench.ts: runs one server of the ext_authz benchmark, prints
 * `{"port":N}` once it listens, answers each `flush` line on stdin with `flushed` once its audit
 * backlog is durable, and exits on SIGTERM. The latency measurement runs each server alone in its
 * own process, as meshward runs in production.
 *
 *   node --import tsx bench/authz-server.ts <kind (see SERVER_NAMES)> <configDir> <workDir>
 */
import { createInterface } from 'node:readline';
import { SERVER_NAMES, type ServerKind, startServer } from './authz-servers.ts';

const [kind, configDir, work] = process.argv.slice(2) as [ServerKind, string, string];
if (!(kind in SERVER_NAMES) || !configDir || !work) {
  process.stderr.write(`usage: authz-server.ts <${Object.keys(SERVER_NAMES).join('|')}> <configDir> <workDir>\n`);
  process.exit(2);
}
const server = await startServer(kind, configDir, work);
process.stdout.write(`${JSON.stringify({ port: server.port, ...(server.tls ? { tls: true } : {}) })}\n`);
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'flush') return;
  void (server.audit?.flush() ?? Promise.resolve()).then(() => process.stdout.write('flushed\n'));
});
process.once('SIGTERM', () => {
  void server.stop().finally(() => process.exit(0));
});
