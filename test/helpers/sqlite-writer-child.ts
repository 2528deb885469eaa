/**
 * A meshward SQLite writer in its own process, driven over stdin, for the concurrent-reader and
 * crash tests: `node --import tsx sqlite-writer-child.ts <kind> <path>` opens the store the way the
 * server does and prints `ready`; each line `write N` writes N more records and prints
 * `written <total>` once they are committed (acknowledged). The parent reads, then SIGKILLs it.
 * Kinds: `audit` (the writer-thread store `serve` uses), `audit-in-thread`, `certificates`, `quotas`.
 */
import path from 'node:path';
import { createInterface } from 'node:readline';
import { prepareRecord } from '../../src/audit/row.ts';
import { SqliteAuditStore } from '../../src/audit/sqlite.ts';
import { WorkerSqliteAuditStore } from '../../src/audit/sqlite-worker-store.ts';
import { CertificateRecords } from '../../src/ca/records.ts';
import { openQuotaDatabase, SqliteQuotaStore } from '../../src/limits/quota/sqlite.ts';
import { decision } from '../audit/fixtures.ts';

type Writer = (from: number, count: number) => Promise<void>;

async function openWriter(kind: string, target: string): Promise<Writer> {
  if (kind === 'audit' || kind === 'audit-in-thread') {
    const store = kind === 'audit' ? await WorkerSqliteAuditStore.open({ file: target }) : new SqliteAuditStore({ file: target });
    if (store instanceof WorkerSqliteAuditStore) await store.whenReady();
    return async (from, count) => {
      const records = Array.from({ length: count }, (_, i) => prepareRecord(decision({ decisionId: `acked-${from + i}` }), []));
      await store.append(records);
    };
  }
  if (kind === 'certificates') {
    const records = new CertificateRecords(target);
    return async (from, count) => {
      for (let i = from; i < from + count; i++) {
        records.add({ serial: i.toString(16).padStart(8, '0'), spiffeId: 'spiffe://cluster.local/ns/shop/sa/web', notBefore: 0, notAfter: 1, issuedAt: i, requestedBy: 'test', method: 'api', caSlot: 'a' });
      }
      records.flush();
    };
  }
  if (kind === 'quotas') {
    const store = new SqliteQuotaStore(openQuotaDatabase(path.dirname(target)));
    return async (from, count) => {
      for (let i = from; i < from + count; i++) {
        await store.record({ id: `acked-${i}`, time: i, actor: 'test', role: 'admin', policy: 'p', subject: 's', period: 'day', action: 'reset', before: 1, after: 0, reason: 'test' });
      }
    };
  }
  throw new Error(`unknown kind ${kind}`);
}

const [kind, target] = process.argv.slice(2);
const write = await openWriter(kind!, target!);
let total = 0;
process.stdout.write('ready\n');
// One command at a time, in order.
let queue = Promise.resolve();
createInterface({ input: process.stdin }).on('line', (line) => {
  const m = /^write (\d+)$/.exec(line.trim());
  if (!m) return;
  queue = queue.then(async () => {
    await write(total, Number(m[1]));
    total += Number(m[1]);
    process.stdout.write(`written ${total}\n`);
  });
});
