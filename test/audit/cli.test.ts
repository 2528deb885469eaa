import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sqliteFile } from '../../src/audit/index.ts';
import { PostgresAuditStore } from '../../src/audit/postgres.ts';
import { prepareRecord } from '../../src/audit/row.ts';
import { SqliteAuditStore } from '../../src/audit/sqlite.ts';
import { runCli } from '../../src/cli/index.ts';
import { DATABASE_URL, describeWithPostgres } from '../helpers/services.ts';
import { decision, resetDecisions } from './fixtures.ts';

function capture(cwd: string) {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: (t: string) => out.push(t), stderr: (t: string) => err.push(t), env: {}, cwd }, out: () => out.join(''), err: () => err.join('') };
}

describe('meshward audit (SQLite)', () => {
  let dir: string;
  beforeEach(async () => {
    resetDecisions();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-audit-cli-'));
    const store = new SqliteAuditStore({ file: sqliteFile(path.join(dir, 'data')) });
    await store.append([decision(), decision({ decision: 'allow', status: 200, path: '/health' }), decision()].map((r) => prepareRecord(r, [])));
    await store.close();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('query lists matching records newest first', async () => {
    const c = capture(dir);
    expect(await runCli(['audit', 'query', '--data', 'data', '--decision', 'deny'], c.io)).toBe(0);
    const lines = c.out().trim().split('\n');
    expect(lines.map((l) => l.split('\t')[0])).toEqual(['3', '1']);
    expect(lines[0]).toContain('deny\t403\tspiffe://cluster.local/ns/shop/sa/web -> shop/orders\tGET /orders/1');
  });

  it('query --json pages with a cursor', async () => {
    const c = capture(dir);
    expect(await runCli(['audit', 'query', '--data', 'data', '--limit', '2', '--json'], c.io)).toBe(0);
    const page = JSON.parse(c.out());
    expect(page.records.map((r: { seq: number }) => r.seq)).toEqual([3, 2]);
    const next = capture(dir);
    expect(await runCli(['audit', 'query', '--data', 'data', '--json', '--cursor', page.nextCursor], next.io)).toBe(0);
    expect(JSON.parse(next.out()).records.map((r: { seq: number }) => r.seq)).toEqual([1]);
  });

  it('query rejects a malformed filter with exit 2 and names it', async () => {
    const c = capture(dir);
    expect(await runCli(['audit', 'query', '--data', 'data', '--decision', 'sometimes'], c.io)).toBe(2);
    expect(c.err()).toContain('decision: unknown decision "sometimes"');
  });

  it('export writes CSV to a 0600 file, even over an existing readable one', async () => {
    fs.writeFileSync(path.join(dir, 'out.csv'), 'old', { mode: 0o644 });
    const c = capture(dir);
    expect(await runCli(['audit', 'export', '--data', 'data', '--format', 'csv', '--output', 'out.csv'], c.io)).toBe(0);
    const file = path.join(dir, 'out.csv');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const rows = fs.readFileSync(file, 'utf8').trim().split('\r\n');
    expect(rows).toHaveLength(4);
    expect(rows.slice(1).map((r) => r.split(',')[0])).toEqual(['1', '2', '3']);
    expect(c.err()).toContain('exported 3 records');
  });

  it('export streams NDJSON to stdout', async () => {
    const c = capture(dir);
    expect(await runCli(['audit', 'export', '--data', 'data', '--path-prefix', '/health'], c.io)).toBe(0);
    expect(c.out().trim().split('\n').map((l) => JSON.parse(l).seq)).toEqual([2]);
  });

  it('verify exits 0 on an intact chain and 65 naming the edited record after tampering', async () => {
    const ok = capture(dir);
    expect(await runCli(['audit', 'verify', '--data', 'data'], ok.io)).toBe(0);
    expect(ok.out()).toMatch(/^audit chain ok: 3 records 1-3 verified from anchor 0; head [0-9a-f]{64}\n$/);

    const db = new Database(sqliteFile(path.join(dir, 'data')));
    db.prepare(`UPDATE audit_records SET body = replace(body, '"/orders/1"', '"/orders/2"'), path = '/orders/2' WHERE seq = 3`).run();
    db.close();
    const broken = capture(dir);
    expect(await runCli(['audit', 'verify', '--data', 'data'], broken.io)).toBe(65);
    expect(broken.out()).toContain('modified\tseq 3\trecord 3 (');
    expect(broken.err()).toContain('audit chain BROKEN: 1 finding in 3 records');
  });

  it('fails with AUDIT_STORE_UNAVAILABLE exit 69 when there is no audit database', async () => {
    const c = capture(dir);
    expect(await runCli(['audit', 'verify', '--data', 'nowhere'], c.io)).toBe(69);
    expect(c.err()).toContain('cannot open the audit database');
  });
});

describeWithPostgres('meshward audit (PostgreSQL)', () => {
  it('verifies and queries a PostgreSQL store with --database-url', async () => {
    resetDecisions();
    const prefix = `t${randomBytes(5).toString('hex')}_`;
    const store = await PostgresAuditStore.open({ connectionString: DATABASE_URL!, tablePrefix: prefix });
    try {
      await store.append([decision(), decision()].map((r) => prepareRecord(r, [])));
      const c = capture(os.tmpdir());
      expect(await runCli(['audit', 'verify', '--database-url', DATABASE_URL!, '--table-prefix', prefix, '--json'], c.io)).toBe(0);
      expect(JSON.parse(c.out())).toMatchObject({ ok: true, checked: 2 });
      const q = capture(os.tmpdir());
      expect(await runCli(['audit', 'query', '--database-url', DATABASE_URL!, '--table-prefix', prefix, '--json'], q.io)).toBe(0);
      expect(JSON.parse(q.out()).records).toHaveLength(2);
    } finally {
      await store.dropTables();
      await store.close();
    }
  });
});
