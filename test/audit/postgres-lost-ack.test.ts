/**
 * A batch whose COMMIT reached PostgreSQL but whose acknowledgement was lost (the connection
 * dropped in between) fails in the writer, which retries it. The retry must not write the batch
 * a second time, and a batch that was not committed must still be written in full.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { type DecisionRecordV1, verifyChain } from '../../src/audit/index.ts';
import { AuditStoreUnavailableError } from '../../src/audit/errors.ts';
import { PostgresAuditStore } from '../../src/audit/postgres.ts';
import { prepareRecord } from '../../src/audit/row.ts';
import { DATABASE_URL, describeWithPostgres } from '../helpers/services.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { decision, resetDecisions } from './fixtures.ts';

const prepared = (records: DecisionRecordV1[]) => records.map((r) => prepareRecord(r, []));

describeWithPostgres('PostgreSQL audit store when a reply is lost', () => {
  let proxy: TcpProxy;
  let viaProxy: PostgresAuditStore;
  let direct: PostgresAuditStore;

  beforeEach(async () => {
    resetDecisions();
    const target = new URL(DATABASE_URL!);
    proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    const url = new URL(DATABASE_URL!);
    url.host = `127.0.0.1:${proxy.port}`;
    const tablePrefix = `t${randomBytes(5).toString('hex')}_`;
    viaProxy = await PostgresAuditStore.open({ connectionString: url.toString(), tablePrefix });
    direct = await PostgresAuditStore.open({ connectionString: DATABASE_URL!, tablePrefix });
  });
  afterEach(async () => {
    await direct.dropTables();
    await Promise.all([viaProxy.close(), direct.close()]);
    await proxy.close();
  });

  it('writes a batch once when its commit succeeded but the acknowledgement was lost, and the retry continues the chain', async () => {
    const batch = prepared([decision(), decision(), decision()]);
    const lost = proxy.loseReplyTo('COMMIT');
    await expect(viaProxy.append(batch)).rejects.toBeInstanceOf(AuditStoreUnavailableError);
    await lost;
    expect((await direct.scan(0, 10)).length).toBe(3); // the server did commit it
    expect(await viaProxy.append(batch)).toEqual({ firstSeq: 1, lastSeq: 3 });
    await viaProxy.append(prepared([decision()]));
    const rows = await direct.scan(0, 10);
    expect(rows.map((r) => r.decisionId)).toEqual(['0', '1', '2', '3'].map((i) => `00000000-0000-4000-8000-${i.padStart(12, '0')}`));
    expect(await verifyChain(direct)).toMatchObject({ ok: true, checked: 4 });
  });

  it('writes the whole batch on the retry when the lost reply was before the commit', async () => {
    const batch = prepared([decision(), decision()]);
    const lost = proxy.loseReplyTo('BEGIN');
    await expect(viaProxy.append(batch)).rejects.toBeInstanceOf(AuditStoreUnavailableError);
    await lost;
    expect((await direct.scan(0, 10)).length).toBe(0);
    expect(await viaProxy.append(batch)).toEqual({ firstSeq: 1, lastSeq: 2 });
    expect(await verifyChain(direct)).toMatchObject({ ok: true, checked: 2 });
  });

  it('writes only the missing part of a retried batch that grew since the failure', async () => {
    const first = prepared([decision(), decision()]);
    const lost = proxy.loseReplyTo('COMMIT');
    await expect(viaProxy.append(first)).rejects.toBeInstanceOf(AuditStoreUnavailableError);
    await lost;
    const grown = [...first, ...prepared([decision()])];
    expect(await viaProxy.append(grown)).toEqual({ firstSeq: 1, lastSeq: 3 });
    expect((await direct.scan(0, 10)).map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(await verifyChain(direct)).toMatchObject({ ok: true, checked: 3 });
  });
});
