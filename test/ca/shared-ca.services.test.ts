/**
 * One CA for several replicas through PostgreSQL (a fresh state schema per test): created once,
 * loaded by the others, keys sealed under the KEK, rotations followed, records shared.
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import pg from 'pg';
import { afterEach, expect, it } from 'vitest';
import { type CaCapability, createCaCapability } from '../../src/ca/index.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { PostgresStateStore } from '../../src/state/index.ts';
import { doc, tempDir, writeConfigDir } from '../helpers/config.ts';
import { DATABASE_URL, describeWithPostgres, freshPgSchema } from '../helpers/services.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const freshSchema = () => freshPgSchema('mw_ca', (drop) => cleanups.push(drop));

async function replica(schema: string, kek: Buffer): Promise<{ mw: Meshward; ca: CaCapability }> {
  const configDir = writeConfigDir({ 'mesh.yaml': doc('Mesh', 'mesh', 'trustDomain: example.org') });
  const mw = await createMeshward(
    { configDir, dataDir: tempDir('mw-shared-ca-'), grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false, databaseUrl: DATABASE_URL!, kek, stateSchema: schema },
    { logger: silentLogger(), registry: createRegistry(), capabilities: [createCaCapability] },
  );
  await mw.start();
  cleanups.push(() => mw.stop());
  return { mw, ca: mw.capability<CaCapability>('ca')! };
}

async function until(ok: () => boolean, ms = 8000): Promise<void> {
  for (const end = Date.now() + ms; !ok();) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describeWithPostgres('a CA shared through PostgreSQL', () => {
  it('is created once when two replicas start together, and both sign under it', async () => {
    const schema = freshSchema();
    const kek = randomBytes(32);
    const [a, b] = await Promise.all([replica(schema, kek), replica(schema, kek)]);
    expect(a.ca.trustBundlePem()).toBe(b.ca.trustBundlePem());
    expect(a.ca.authority.active().slotId).toBe(b.ca.authority.active().slotId);
    const svid = await b.ca.currentSvid('spiffe://example.org/ns/shop/sa/orders');
    // The leaf B issued chains to the root A publishes.
    const root = new X509Certificate(a.ca.trustBundlePem());
    const [leaf, intermediate] = svid.svid.chainPem.split(/(?<=-----END CERTIFICATE-----\n)/).map((p) => new X509Certificate(p));
    expect(leaf!.verify(intermediate!.publicKey)).toBe(true);
    expect(intermediate!.verify(root.publicKey)).toBe(true);
  });

  it('keeps the CA private keys sealed in PostgreSQL, and refuses to load them with another KEK', async () => {
    const schema = freshSchema();
    await replica(schema, randomBytes(32));
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    const row = (await c.query(`SELECT journal, keys FROM ${schema}.ca`)).rows[0] as { journal: string; keys: string };
    await c.end();
    expect(row.journal).toMatch(/BEGIN CERTIFICATE/);
    expect(row.journal + row.keys).not.toMatch(/PRIVATE KEY/);
    expect(Object.keys(JSON.parse(row.keys) as object).length).toBeGreaterThanOrEqual(3);
    await expect(replica(schema, randomBytes(32))).rejects.toMatchObject({ code: 'STATE_KEK_INVALID' });
  });

  it('follows a rotation forced on another replica: the new bundle at once, the new signer after activation', async () => {
    const schema = freshSchema();
    const kek = randomBytes(32);
    const a = await replica(schema, kek);
    const b = await replica(schema, kek);
    const seen: number[] = [];
    b.ca.onBundleChange((bundle) => seen.push(bundle.sequence));
    const before = b.ca.authority.active().slotId;
    const admin = a.mw.apiAuth.createToken('ops', 'admin');
    const res = await a.mw.http.inject({ method: 'POST', url: '/v1/ca/rotate', headers: { authorization: `Bearer ${admin}` }, payload: { newRoot: true, activateAfter: '1s' } });
    expect(res.statusCode).toBe(200);
    await until(() => b.ca.trustBundle().sequence === a.ca.trustBundle().sequence);
    expect(b.ca.trustBundle().roots).toHaveLength(2);
    expect(seen).toContain(a.ca.trustBundle().sequence);
    await until(() => b.ca.authority.active().slotId !== before && a.ca.authority.active().slotId !== before);
    expect(b.ca.authority.active().slotId).toBe(a.ca.authority.active().slotId);
  });

  it('lists on one replica the certificates another issued', async () => {
    const schema = freshSchema();
    const kek = randomBytes(32);
    const [a, b] = await Promise.all([replica(schema, kek), replica(schema, kek)]);
    const svid = await b.ca.currentSvid('spiffe://example.org/ns/shop/sa/orders');
    const auditor = b.mw.apiAuth.createToken('alice', 'auditor');
    await until(() => a.mw.apiAuth.verifyToken(auditor) !== undefined, 5000);
    const res = await a.mw.http.inject({ url: '/v1/certificates?namespace=shop', headers: { authorization: `Bearer ${auditor}` } });
    expect(res.statusCode).toBe(200);
    expect((res.json() as { certificates: { serial: string }[] }).certificates.map((c) => c.serial)).toContain(svid.svid.serial);
  });

  const caView = async (r: { mw: Meshward }, admin: string) => (await r.mw.http.inject({ url: '/v1/ca', headers: { authorization: `Bearer ${admin}` } })).json() as {
    bundleSequence: number; slots: { id: string; state: string }[]; replica: { id: string; leader: boolean };
  };

  it('has one rotation leader at a time, and another replica takes over when it stops', async () => {
    const schema = freshSchema();
    const kek = randomBytes(32);
    const [a, b] = await Promise.all([replica(schema, kek), replica(schema, kek)]);
    const admin = a.mw.apiAuth.createToken('ops', 'admin');
    await until(() => a.mw.apiAuth.verifyToken(admin) !== undefined && b.mw.apiAuth.verifyToken(admin) !== undefined);
    let views = await Promise.all([a, b].map((r) => caView(r, admin)));
    for (const end = Date.now() + 8000; views.filter((v) => v.replica.leader).length !== 1 && Date.now() < end;) {
      await new Promise((r) => setTimeout(r, 100));
      views = await Promise.all([a, b].map((r) => caView(r, admin)));
    }
    expect(views.filter((v) => v.replica.leader)).toHaveLength(1);
    const [leader, other] = views[0]!.replica.leader ? [a, b] : [b, a];
    await leader.mw.stop();
    let view = await caView(other, admin);
    for (const end = Date.now() + 8000; !view.replica.leader && Date.now() < end;) {
      await new Promise((r) => setTimeout(r, 100));
      view = await caView(other, admin);
    }
    expect(view.replica.leader).toBe(true);
  });

  it('activates a prepared CA only once every live replica publishes its bundle', async () => {
    const schema = freshSchema();
    const kek = randomBytes(32);
    const a = await replica(schema, kek);
    const admin = a.mw.apiAuth.createToken('ops', 'admin');
    await until(() => a.ca.authority.slots().length > 0 && a.mw.capability<CaCapability>('ca') !== undefined);
    // A second replica, seen alive, that still publishes the bundle from before the rotation.
    const store = await PostgresStateStore.open({ connectionString: DATABASE_URL!, kek, schema });
    cleanups.push(() => store.close());
    const lagging = { id: 'lagging-replica', bundleSequence: a.ca.trustBundle().sequence };
    const beat = () => store.heartbeat({ ...lagging, seenAt: Date.now() });
    await beat();
    const beating = setInterval(() => void beat(), 200);
    cleanups.push(async () => clearInterval(beating));
    let view = await caView(a, admin);
    for (const end = Date.now() + 8000; !view.replica.leader && Date.now() < end;) {
      await new Promise((r) => setTimeout(r, 100));
      view = await caView(a, admin);
    }
    const before = a.ca.authority.active().slotId;
    const res = await a.mw.http.inject({ method: 'POST', url: '/v1/ca/rotate', headers: { authorization: `Bearer ${admin}` }, payload: { activateAfter: '0s' } });
    expect(res.statusCode).toBe(200);
    await new Promise((r) => setTimeout(r, 3000));
    expect(a.ca.authority.active().slotId).toBe(before);
    expect((await caView(a, admin)).slots.filter((s) => s.state === 'prepared')).toHaveLength(1);
    lagging.bundleSequence = a.ca.trustBundle().sequence;
    await beat();
    await until(() => a.ca.authority.active().slotId !== before);
  });
});

