/**
 * The replicas of test/e2e/replicas-outage.services.test.ts (audit in PostgreSQL, limits in Redis,
 * shared state), started together on a CPU-loaded machine with many policies and sent ext_authz
 * checks from before their port accepts: none is answered AUTHZ_NOT_READY (or any error), before or
 * after "meshward serving". Counts are printed; only behaviour is asserted.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { DATABASE_URL, REDIS_URL } from '../helpers/services.ts';
import { createFreshDatabase } from '../state/fresh-database.ts';
import { describeWithServices } from './replicas.ts';
import { burnCpu, cleanupsAfterAll, describeTallies, hammerThroughStartup, spawnServe, writeLoadedConfig } from './startup-load.ts';

const REPLICAS = 3;

describeWithServices('replicas on PostgreSQL and Redis started together under load', () => {
  const { cleanups, killLater } = cleanupsAfterAll();

  it('never answers AUTHZ_NOT_READY, before or after "meshward serving"', async () => {
    const db = await createFreshDatabase(DATABASE_URL!, 'meshward_startup');
    cleanups.push(() => db.drop());
    const root = mkdtempSync(path.join(os.tmpdir(), 'mw-startup-services-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const configDir = path.join(root, 'config');
    writeLoadedConfig(configDir);
    const mesh = readFileSync(path.join(configDir, 'mesh.yaml'), 'utf8');
    writeFileSync(path.join(configDir, 'mesh.yaml'), mesh.replace(/store: auto\b/, 'store: postgres').replace(/backend: auto\b/, 'backend: redis'));
    expect(readFileSync(path.join(configDir, 'mesh.yaml'), 'utf8')).toMatch(/store: postgres[\s\S]*backend: redis/);
    // Every check still consults Redis (the sample's per-caller limit), without being limited.
    const limits = readFileSync(path.join(configDir, 'limits.yaml'), 'utf8');
    writeFileSync(path.join(configDir, 'limits.yaml'), limits.replace('requests_per_unit: 100 }', 'requests_per_unit: 1000000 }'));
    expect(readFileSync(path.join(configDir, 'limits.yaml'), 'utf8')).toContain('requests_per_unit: 1000000 }');
    const env = { MESHWARD_KEK: randomBytes(32).toString('base64') };

    const burners = burnCpu();
    for (const b of burners) killLater(b);
    const serves = await Promise.all(Array.from({ length: REPLICAS }, (_, i) => spawnServe(configDir, path.join(root, `data-${i}`), {
      args: ['--database-url', db.url, '--redis-url', REDIS_URL!], env,
    })));
    for (const s of serves) killLater(s.child, s.exited);
    const startup = await hammerThroughStartup(serves);
    for (const b of burners) b.kill('SIGKILL');
    process.stderr.write(describeTallies(`startup under load on PostgreSQL and Redis: ${REPLICAS} replicas`, startup));
    for (const t of startup) {
      expect(t.notReady).toEqual([]);
      expect(t.errors).toEqual([]);
      expect(t.wrong).toEqual([]);
      expect(t.decisions).toBeGreaterThan(0);
    }
    expect(await Promise.all(serves.map((s) => fetch(`http://${s.http}/readyz`).then((res) => res.status)))).toEqual(serves.map(() => 200));
    for (const s of serves) s.child.kill('SIGTERM');
    expect(await Promise.all(serves.map((s) => s.exited))).toEqual(serves.map(() => 0));
  }, 240_000);
});
