/**
 * Child process of crash.test.ts: appends records, waits (without flush) until the background
 * batches report them durable, says so on stdout, then keeps appending until it is killed.
 */
import { AuditLog } from '../../src/audit/audit-log.ts';
import { SqliteAuditStore } from '../../src/audit/sqlite.ts';
import { WorkerSqliteAuditStore } from '../../src/audit/sqlite-worker-store.ts';
import { systemClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { decision } from './fixtures.ts';

const [file, countText, writer] = process.argv.slice(2);
const count = Number(countText);
const store = writer === 'worker' ? await WorkerSqliteAuditStore.open({ file: file! }) : new SqliteAuditStore({ file: file! });
const log = new AuditLog({
  store, clock: systemClock, registry: createRegistry(), logger: silentLogger(),
  settings: () => ({ maskPaths: [], recordAllows: true }),
});
for (let i = 0; i < count; i++) log.append(decision({ decisionId: `acked-${i}` }));
const waitDurable = setInterval(() => {
  if (log.stats().written < count) return;
  clearInterval(waitDurable);
  process.stdout.write(`durable ${log.stats().lastSeq}\n`);
  // Unacknowledged traffic in flight when the kill lands.
  let i = 0;
  setInterval(() => {
    for (let j = 0; j < 200; j++) log.append(decision({ decisionId: `inflight-${i++}` }));
  }, 1);
}, 2);
