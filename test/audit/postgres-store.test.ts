import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PostgresAuditStore } from '../../src/audit/postgres.ts';
import { DATABASE_URL, describeWithPostgres } from '../helpers/services.ts';
import { auditStoreContract, type StoreHarness } from './store.contract.ts';

function numbered(sql: string): string {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
}

async function postgresHarness(): Promise<StoreHarness> {
  // A unique table prefix per test: parallel runs against one database never collide.
  const prefix = `t${randomBytes(5).toString('hex')}_`;
  let store = await PostgresAuditStore.open({ connectionString: DATABASE_URL!, tablePrefix: prefix });
  const client = new pg.Client({ connectionString: DATABASE_URL! });
  await client.connect();
  const sub = (sql: string) => numbered(sql.replaceAll('{p}', prefix));
  return {
    get store() { return store; },
    async exec(sql, params = []) {
      await client.query(sub(sql), params);
    },
    async rows<T>(sql: string, params: unknown[] = []) {
      return (await client.query(sub(sql), params)).rows as T[];
    },
    async reopen() {
      await store.close();
      store = await PostgresAuditStore.open({ connectionString: DATABASE_URL!, tablePrefix: prefix });
      return store;
    },
    async cleanup() {
      await store.dropTables();
      await store.close();
      await client.end();
    },
  };
}

describeWithPostgres('PostgreSQL audit store', () => {
  auditStoreContract(postgresHarness);
});
