/**
 * The PostgreSQL pool every store uses: a connection the server drops (restart, failover,
 * pg_terminate_backend) is reported to the next query or the running transaction, never thrown
 * at the process.
 */
import pg from 'pg';
import { afterEach, expect, it } from 'vitest';
import { createPgPool, inPgTransaction } from '../../src/lib/pg-pool.ts';
import { DATABASE_URL, describeWithPostgres } from '../helpers/services.ts';

const pools: pg.Pool[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) await p.end().catch(() => {});
});

function pool(): pg.Pool {
  const p = createPgPool({ connectionString: DATABASE_URL, max: 2 });
  pools.push(p);
  return p;
}

async function terminate(pid: number): Promise<void> {
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  try {
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
  } finally {
    await admin.end();
  }
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
}

describeWithPostgres('PostgreSQL pool', () => {
  it('keeps the process up when an idle pooled connection is terminated, and serves the next query', async () => {
    const p = pool();
    const pid = Number((await p.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
    expect(p.idleCount).toBe(1);
    await terminate(pid);
    await until(() => p.idleCount === 0);
    expect(p.idleCount).toBe(0);
    const next = Number((await p.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
    expect(next).not.toBe(pid);
  });

  it('rejects a transaction whose connection is terminated, through the caller\'s error, and does not reuse that connection', async () => {
    const p = pool();
    let pid = 0;
    const failed = inPgTransaction(p, async (c) => {
      pid = Number((await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
      await terminate(pid);
      await c.query('SELECT pg_sleep(0.2)');
    }, (err) => new Error(`mapped: ${(err as Error).message}`));
    await expect(failed).rejects.toThrow(/^mapped: /);
    const next = await inPgTransaction(p, async (c) => Number((await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid));
    expect(next).not.toBe(pid);
  });

  it('rolls back what a failing transaction wrote', async () => {
    const p = pool();
    const table = `mw_pgpool_${process.pid}_${Date.now()}`;
    await p.query(`CREATE TABLE ${table} (n INT)`);
    try {
      await expect(inPgTransaction(p, async (c) => {
        await c.query(`INSERT INTO ${table} VALUES (1)`);
        throw new Error('boom');
      })).rejects.toThrow('boom');
      expect((await p.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(0);
    } finally {
      await p.query(`DROP TABLE ${table}`);
    }
  });
});
