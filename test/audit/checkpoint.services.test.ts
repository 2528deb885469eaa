import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { type AuditCapability, createAuditCapability } from '../../src/audit/index.ts';
import { PostgresAuditStore } from '../../src/audit/postgres.ts';
import { runCli } from '../../src/cli/index.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { DATABASE_URL, describeWithPostgres } from '../helpers/services.ts';
import { decision, resetDecisions, T0 } from './fixtures.ts';

describeWithPostgres('signed checkpoints with a PostgreSQL audit store shared by two replicas', () => {
  let dir: string;
  let tablePrefix: string;
  beforeEach(() => {
    resetDecisions();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-audit-cp-pg-'));
    fs.mkdirSync(path.join(dir, 'config'));
    fs.writeFileSync(path.join(dir, 'config', 'mesh.yaml'), 'apiVersion: meshward.io/v1\nkind: Mesh\nmetadata: { name: mesh }\nspec: { audit: { store: postgres } }\n');
    tablePrefix = `cp${randomBytes(5).toString('hex')}_`;
  });
  afterEach(async () => {
    const cleanup = await PostgresAuditStore.open({ connectionString: DATABASE_URL!, tablePrefix });
    await cleanup.dropTables();
    await cleanup.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function replica(name: string): Promise<{ mw: Meshward; audit: AuditCapability }> {
    const mw = await createMeshward(
      { configDir: path.join(dir, 'config'), dataDir: path.join(dir, name), grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false, databaseUrl: DATABASE_URL! },
      { logger: silentLogger(), registry: createRegistry(), clock: new FakeClock(T0), capabilities: [(ctx) => createAuditCapability(ctx, { tablePrefix })] },
    );
    await mw.start();
    return { mw, audit: mw.capability<AuditCapability>('audit')! };
  }

  async function verify() {
    const out: string[] = [];
    const err: string[] = [];
    const args = ['audit', 'verify', '--database-url', DATABASE_URL!, '--table-prefix', tablePrefix];
    for (const r of ['a', 'b']) args.push('--checkpoint', `${r}/audit/checkpoints.ndjson`, '--public-key', `${r}/audit/checkpoint-key.pub.pem`);
    const code = await runCli(args, { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env: {}, cwd: dir });
    return { code, out: out.join(''), err: err.join('') };
  }

  it('each replica signs its own view of the shared chain; a deleted tail is named against either', async () => {
    const a = await replica('a');
    const b = await replica('b');
    for (let i = 0; i < 100; i++) a.audit.append(decision());
    await a.audit.flush();
    expect(await a.audit.checkpoint()).toMatchObject({ seq: 100 });
    for (let i = 0; i < 50; i++) b.audit.append(decision());
    await b.audit.flush();
    expect(await b.audit.checkpoint()).toMatchObject({ seq: 150 });
    await a.mw.stop();
    await b.mw.stop();

    const intact = await verify();
    expect(intact.code).toBe(0);
    expect(intact.out.match(/checkpoint ok/g)).toHaveLength(2);

    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(`DELETE FROM ${tablePrefix}records WHERE seq > 80`);
    await client.end();
    const truncated = await verify();
    expect(truncated.code).toBe(66);
    expect(truncated.out).toContain('records 81-150 are missing');
  });
});
