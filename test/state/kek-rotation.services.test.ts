/**
 * Rotating the key-encryption key of the state replicas share: replicas open secrets with the
 * current KEK or a previous one, `meshward state rekey` re-seals them under the current one (all
 * or nothing), after which the old KEK opens nothing.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, expect, it } from 'vitest';
import { type CaCapability, createCaCapability } from '../../src/ca/index.ts';
import { loadOrCreateSharedBootstrapKey } from '../../src/identity/index.ts';
import { type Logger, silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { createMeshward } from '../../src/meshward.ts';
import { PostgresStateStore } from '../../src/state/index.ts';
import { cli } from '../helpers/cli.ts';
import { doc, tempDir, writeConfigDir } from '../helpers/config.ts';
import { DATABASE_URL, describeWithPostgres, freshPgSchema } from '../helpers/services.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const freshSchema = () => freshPgSchema('mw_rekey', (drop) => cleanups.push(drop));

/** Starts a CA replica; resolves its trust bundle, or rejects with what stopped it. */
async function replicaBundle(schema: string, kek: Buffer, previousKeks?: Buffer[], logger: Logger = silentLogger()): Promise<string> {
  const configDir = writeConfigDir({ 'mesh.yaml': doc('Mesh', 'mesh', 'trustDomain: example.org') });
  const mw = await createMeshward(
    { configDir, dataDir: tempDir('mw-rekey-'), grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false, databaseUrl: DATABASE_URL!, kek, ...(previousKeks ? { previousKeks } : {}), stateSchema: schema },
    { logger, registry: createRegistry(), capabilities: [createCaCapability] },
  );
  try {
    await mw.start();
    return mw.capability<CaCapability>('ca')!.trustBundlePem();
  } finally {
    await mw.stop();
  }
}

async function rekey(schema: string, kek: Buffer, previous?: Buffer[]): Promise<{ code: number; out: string; err: string }> {
  const env = { MESHWARD_KEK: kek.toString('base64'), MESHWARD_STATE_SCHEMA: schema, ...(previous ? { MESHWARD_PREVIOUS_KEK: previous.map((k) => k.toString('base64')).join(',') } : {}) };
  const { code, stdout, stderr } = await cli(['state', 'rekey', '--database-url', DATABASE_URL!, '--json'], env);
  return { code, out: stdout, err: stderr };
}

async function sealedValues(schema: string): Promise<string[]> {
  const s = await PostgresStateStore.open({ connectionString: DATABASE_URL!, kek: randomBytes(32), schema });
  try {
    const secrets = (await s.query(`SELECT sealed FROM ${schema}.secrets ORDER BY name`)).rows.map((r) => String(r.sealed));
    const ca = (await s.query(`SELECT keys FROM ${schema}.ca`)).rows.map((r) => String(r.keys));
    return [...secrets, ...ca];
  } finally {
    await s.close();
  }
}

describeWithPostgres('rotating the key-encryption key of shared state', () => {
  it('serves with the new KEK and the old one as previous, re-seals everything under the new one, and then the old KEK opens nothing', async () => {
    const schema = freshSchema();
    const oldKek = randomBytes(32);
    const newKek = randomBytes(32);
    const bundle = await replicaBundle(schema, oldKek);
    const first = await PostgresStateStore.open({ connectionString: DATABASE_URL!, kek: oldKek, schema });
    const bootstrapKid = (await loadOrCreateSharedBootstrapKey(first)).kid;
    await first.close();

    // Step 1: replicas get the new KEK, the old one as previous. Same CA; the log names what still needs re-sealing.
    const lines: { msg: string; secrets?: string[] }[] = [];
    const capture = () => pino({ level: 'info' }, new Writable({ write(chunk: Buffer, _e, done) { for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l)); done(); } }));
    expect(await replicaBundle(schema, newKek, [oldKek], capture())).toBe(bundle);
    const pending = lines.find((l) => l.msg.includes('still sealed under a previous KEK'));
    expect(pending?.secrets?.length).toBeGreaterThanOrEqual(2);
    // Without the old one they cannot open what it sealed yet.
    await expect(replicaBundle(schema, newKek)).rejects.toMatchObject({ code: 'STATE_KEK_INVALID' });

    // Step 2: re-seal. CA keys (root and intermediate) and the bootstrap key: at least 3.
    const run = await rekey(schema, newKek, [oldKek]);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.out) as { resealed: number; alreadyCurrent: number };
    expect(report.resealed).toBeGreaterThanOrEqual(3);
    expect(report.alreadyCurrent).toBe(0);
    const again = JSON.parse((await rekey(schema, newKek, [oldKek])).out) as { resealed: number; alreadyCurrent: number };
    expect(again).toMatchObject({ resealed: 0, alreadyCurrent: report.resealed });

    lines.length = 0;
    await replicaBundle(schema, newKek, [oldKek], capture());
    expect(lines.some((l) => l.msg.includes('the previous KEK opened nothing here'))).toBe(true);
    expect(lines.some((l) => l.msg.includes('still sealed under a previous KEK'))).toBe(false);

    // Step 3: the old KEK is no longer needed, and no longer opens anything.
    expect(await replicaBundle(schema, newKek)).toBe(bundle);
    const after = await PostgresStateStore.open({ connectionString: DATABASE_URL!, kek: newKek, schema });
    expect((await loadOrCreateSharedBootstrapKey(after)).kid).toBe(bootstrapKid);
    await after.close();
    await expect(replicaBundle(schema, oldKek)).rejects.toMatchObject({ code: 'STATE_KEK_INVALID' });
  });

  it('keeps a replica that was running during the rekey from writing values sealed under the old KEK back', async () => {
    const schema = freshSchema();
    const oldKek = randomBytes(32);
    const newKek = randomBytes(32);
    await replicaBundle(schema, oldKek);
    // A replica runs through the rekey holding what it loaded (sealed under the old KEK)...
    const configDir = writeConfigDir({ 'mesh.yaml': doc('Mesh', 'mesh', 'trustDomain: example.org') });
    const running = await createMeshward(
      { configDir, dataDir: tempDir('mw-rekey-'), grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false, databaseUrl: DATABASE_URL!, kek: newKek, previousKeks: [oldKek], stateSchema: schema },
      { logger: silentLogger(), registry: createRegistry(), capabilities: [createCaCapability] },
    );
    await running.start();
    cleanups.push(() => running.stop());
    expect((await rekey(schema, newKek, [oldKek])).code).toBe(0);
    // ...then changes the CA (a forced rotation writes the whole CA document).
    const admin = running.apiAuth.createToken('ops', 'admin');
    const res = await running.http.inject({ method: 'POST', url: '/v1/ca/rotate', headers: { authorization: `Bearer ${admin}` }, payload: { newRoot: true } });
    expect(res.statusCode).toBe(200);
    await running.stop();
    // Nothing is left under the old KEK: the new one alone opens everything.
    expect(JSON.parse((await rekey(schema, newKek, [oldKek])).out)).toMatchObject({ resealed: 0 });
    await expect(replicaBundle(schema, newKek)).resolves.toContain('BEGIN CERTIFICATE');
  });

  it('changes nothing when a secret opens with none of the keys given, and says which (exit 78)', async () => {
    const schema = freshSchema();
    const kek = randomBytes(32);
    await replicaBundle(schema, kek);
    const before = await sealedValues(schema);
    const wrong = await rekey(schema, randomBytes(32), [randomBytes(32)]);
    expect(wrong.code).toBe(78);
    expect(wrong.err).toMatch(/secret ".+" does not open with any of the 2 key-encryption keys given \(current and previous\)/);
    expect(await sealedValues(schema)).toEqual(before);
    // The right keys still work afterwards.
    expect((await rekey(schema, randomBytes(32), [kek])).code).toBe(0);
  });

  it('refuses an altered secret even when a previous KEK is given', async () => {
    const schema = freshSchema();
    const kek = randomBytes(32);
    const s = await PostgresStateStore.open({ connectionString: DATABASE_URL!, kek, schema });
    cleanups.push(() => s.close());
    await loadOrCreateSharedBootstrapKey(s);
    const sealed = JSON.parse(String((await s.query(`SELECT sealed FROM ${schema}.secrets`)).rows[0]!.sealed)) as { data: string[] };
    const ct = Buffer.from(sealed.data[1]!, 'base64');
    ct[0] = ct[0]! ^ 1;
    sealed.data[1] = ct.toString('base64');
    await s.query(`UPDATE ${schema}.secrets SET sealed = $1`, [JSON.stringify(sealed)]);
    const run = await rekey(schema, randomBytes(32), [kek]);
    expect(run.code).toBe(78);
    expect(run.err).toMatch(/was altered/);
  });
});
