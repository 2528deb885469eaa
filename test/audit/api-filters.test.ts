/**
 * The auditor API refuses malformed filters with 400 naming the parameter instead of guessing
 * (`Date.parse` read `' OR '1'='1` as 2001 and 2026-02-30 as March 2) or failing in the store
 * (PostgreSQL refuses NUL in text: 503).
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuditCapability, createAuditCapability } from '../../src/audit/index.ts';
import { parseRfc3339 } from '../../src/audit/time-filter.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { removeDir, tempDir } from '../helpers/config.ts';
import { DATABASE_URL, describeWithPostgres } from '../helpers/services.ts';
import { decision, T0 } from './fixtures.ts';

const BAD_TIMES = ["' OR '1'='1", '2026-02-30', '2025-02-29', '2026-13-01', '2026-01-01T24:00:00Z', '2026-01-01T10:60:00Z', '2026-01-01T10:00:00',
  '2026-01-01T10:00:00+25:00', 'Jan 1 2026', '2026-1-1', '1e3', '99999999999999999'];
const NUL_FILTERS = ['principal', 'pathPrefix', 'policy', 'configVersion', 'decision', 'from'];

function filterSuite(databaseUrl?: string) {
  let dir: string;
  let mw: Meshward;
  let token: string;
  const prefix = `t${randomBytes(5).toString('hex')}_h5_`;

  beforeAll(async () => {
    dir = tempDir('mw-audit-filters-');
    mw = await createMeshward(
      { configDir: tempDir('mw-audit-filters-config-'), dataDir: path.join(dir, 'data'), grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false, ...(databaseUrl ? { databaseUrl } : {}) },
      { logger: silentLogger(), registry: createRegistry(), clock: new FakeClock(T0 + 3_600_000), capabilities: [(ctx) => createAuditCapability(ctx, { tablePrefix: prefix })] },
    );
    await mw.start();
    token = mw.apiAuth.createToken('alice', 'auditor');
    const audit = mw.capability<AuditCapability>('audit')!;
    audit.append(decision({ decisionId: 'feb-28', time: Date.UTC(2024, 1, 28, 12) }));
    audit.append(decision({ decisionId: 'feb-29', time: Date.UTC(2024, 1, 29, 12) }));
    audit.append(decision({ decisionId: 'mar-01', time: Date.UTC(2024, 2, 1, 12) }));
    await audit.flush();
  });

  afterAll(async () => {
    await mw.stop();
    if (databaseUrl) {
      const { PostgresAuditStore } = await import('../../src/audit/postgres.ts');
      const cleanup = await PostgresAuditStore.open({ connectionString: databaseUrl, tablePrefix: prefix });
      await cleanup.dropTables();
      await cleanup.close();
    }
    removeDir(dir);
  });

  const get = (query: string) => mw.http.inject({ method: 'GET', url: `/v1/decisions?${query}`, headers: { authorization: `Bearer ${token}` } });
  const ids = async (query: string) => (await get(query)).json().records.map((r: { decisionId: string }) => r.decisionId);

  it.each(BAD_TIMES)('refuses from=%s with 400 naming the parameter', async (bad) => {
    for (const parameter of ['from', 'to']) {
      const res = await get(`${parameter}=${encodeURIComponent(bad)}`);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ code: 'AUDIT_INVALID_QUERY' });
      expect(res.json().message).toMatch(new RegExp(`^${parameter}: .* is not a time`));
    }
  });

  it('reads valid RFC 3339 times, dates on the calendar, epoch ms and durations', async () => {
    expect(await ids('from=2024-02-29&to=2024-03-01')).toEqual(['feb-29']);
    expect(await ids(`from=${encodeURIComponent('2024-02-29T13:00:00+02:00')}&to=2024-03-01T00:00:00Z`)).toEqual(['feb-29']);
    expect(await ids('from=2024-02-29T12:00:00.001Z')).toEqual(['mar-01']);
    expect(await ids(`to=${Date.UTC(2024, 1, 29)}`)).toEqual(['feb-28']);
    expect((await get('from=24h')).statusCode).toBe(200);
  });

  it.each(NUL_FILTERS)('refuses a NUL byte in %s with 400, not a store failure', async (parameter) => {
    const res = await get(`${parameter}=a%00b`);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ code: 'AUDIT_INVALID_QUERY', message: `${parameter}: contains a NUL byte` });
    const exported = await mw.http.inject({ method: 'GET', url: `/v1/decisions/export?${parameter}=a%00b`, headers: { authorization: `Bearer ${token}` } });
    expect(exported.statusCode).toBe(400);
  });

  it('refuses a NUL byte in a decision id with 400, not a store failure', async () => {
    const res = await mw.http.inject({ method: 'GET', url: '/v1/decisions/feb%0029', headers: { authorization: `Bearer ${token}` } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ code: 'AUDIT_INVALID_QUERY', message: 'id: contains a NUL byte' });
  });

  it('still filters by principal and path prefix without a NUL', async () => {
    expect(await ids('pathPrefix=/orders&order=asc')).toEqual(['feb-28', 'feb-29', 'mar-01']);
    expect(await ids('principal=nobody')).toEqual([]);
  });
}

describe('auditor API filters (SQLite)', () => filterSuite());
describeWithPostgres('auditor API filters (PostgreSQL)', () => filterSuite(DATABASE_URL));

describe('parseRfc3339', () => {
  it('keeps two-digit years as written and applies offsets', () => {
    const year99 = new Date(0);
    year99.setUTCFullYear(99, 11, 31);
    year99.setUTCHours(23, 59, 59, 0);
    expect(parseRfc3339('0099-12-31T23:59:59Z')).toBe(year99.getTime());
    expect(parseRfc3339('2026-01-31T09:30:00-01:30')).toBe(Date.UTC(2026, 0, 31, 11, 0));
    expect(parseRfc3339('2026-01-31T09:30:00.5Z')).toBe(Date.UTC(2026, 0, 31, 9, 30, 0, 500));
    expect(parseRfc3339('2026-02-29')).toBeUndefined();
  });
});
