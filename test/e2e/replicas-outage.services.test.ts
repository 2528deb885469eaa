/**
 * What two replicas do while PostgreSQL or Redis is unreachable, and how fast they recover (the
 * docs/replicas.md quotes what this prints). Outages are made
 * with a TCP proxy in front of each service, so nothing else using them is disturbed. Behaviour is
 * asserted; times are measured and printed, never asserted.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import { afterAll, expect, it } from 'vitest';
import { runCli } from '../../src/cli/index.ts';
import { checkRequest } from '../authz/helpers.ts';
import { DATABASE_URL, REDIS_URL } from '../helpers/services.ts';
import type { DiscoveryResponseMsg } from '../sds/harness.ts';
import { createFreshDatabase } from '../state/fresh-database.ts';
import { checkClientOf, describeWithServices, type Replica, SECRET_TYPE, sdsClientOf, startReplica } from './replicas.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';

const LIMIT = 5;

describeWithServices('two replicas while PostgreSQL or Redis is down', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  }, 60_000);

  it('keeps answering checks and SDS through an outage of either, and recovers after it', async () => {
    const db = await createFreshDatabase(DATABASE_URL!, 'meshward_outage');
    cleanups.push(() => db.drop());
    const pgUrl = new URL(db.url);
    const pgProxy = await startTcpProxy(pgUrl.hostname, Number(pgUrl.port || 5432));
    const redisUrl = new URL(REDIS_URL!);
    const redisProxy = await startTcpProxy(redisUrl.hostname, Number(redisUrl.port || 6379));
    cleanups.push(() => pgProxy.close(), () => redisProxy.close());
    const viaPgProxy = new URL(db.url);
    viaPgProxy.host = `127.0.0.1:${pgProxy.port}`;
    const root = mkdtempSync(path.join(os.tmpdir(), 'mw-outage-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const configDir = path.join(root, 'config');
    cpSync('policies', configDir, { recursive: true });
    writeFileSync(path.join(configDir, 'mesh.yaml'), `apiVersion: meshward.io/v1
kind: Mesh
metadata: { name: mesh }
spec:
  trustDomain: cluster.local
  audit: { store: postgres }
  limits: { backend: redis }
---
apiVersion: meshward.io/v1
kind: RateLimitPolicy
metadata: { name: outage-test, namespace: shop }
spec:
  domain: outage-${randomBytes(4).toString('hex')}
  selector: { matchLabels: { app: orders } }
  descriptors:
    - key: outage_test
      rate_limit: { unit: minute, requests_per_unit: ${LIMIT} }
  requestDescriptors:
    - actions:
        - requestHeader: { headerName: x-outage-test, descriptorKey: outage_test }
`);
    const env = { MESHWARD_KEK: randomBytes(32).toString('base64'), MESHWARD_ADMIN_TOKEN: `mw_${randomBytes(32).toString('base64url')}` };
    const replicas: Replica[] = [];
    cleanups.push(() => Promise.all(replicas.map((r) => r.stop('SIGKILL'))).then(() => undefined));
    for (const name of ['a', 'b']) {
      replicas.push(await startReplica({ name, configDir, dataDir: path.join(root, `data-${name}`), databaseUrl: viaPgProxy.toString(), redisUrl: `redis://127.0.0.1:${redisProxy.port}`, env }));
    }
    const cli = async (args: string[]) => {
      const out: string[] = [];
      const code = await runCli(args, { stdout: (t) => out.push(t), stderr: () => {}, env, cwd: root });
      return { code, out: out.join('') };
    };
    const checkers = replicas.map(checkClientOf);
    const sdsClients = replicas.map(sdsClientOf);
    cleanups.push(() => [...checkers, ...sdsClients].forEach((c) => c.close()));
    let answered = 0;
    const check = (i: number, headers: Record<string, string> = {}) => new Promise<number>((resolve, reject) => {
      checkers[i % 2]!.Check(checkRequest({ headers }), (err, res) => {
        if (err) return reject(err);
        answered++;
        resolve(res.status?.code ?? 0);
      });
    });
    const burst = async (n: number, headers: Record<string, string> = {}) => {
      const t = Date.now();
      const codes = await Promise.all(Array.from({ length: n }, (_, i) => check(i, headers)));
      return { allowed: codes.filter((c) => c === 0).length, ms: Date.now() - t };
    };
    const token = (await cli(['ca', 'token', '--database-url', db.url, '-n', 'shop', '-s', 'orders', '--data', path.join(root, 'cli')])).out.trim();
    const sds = (i: number) => new Promise<DiscoveryResponseMsg>((resolve, reject) => {
      const md = new Metadata();
      md.set('authorization', `Bearer ${token}`);
      sdsClients[i]!.FetchSecrets({ type_url: SECRET_TYPE, resource_names: ['default', 'ROOTCA'] }, md, (err, out) => (err ? reject(err) : resolve(out)));
    });
    const api = (r: Replica, url: string, method = 'GET') => fetch(`http://${r.http}${url}`, {
      method, headers: { authorization: `Bearer ${env.MESHWARD_ADMIN_TOKEN}`, 'content-type': 'application/json' }, ...(method === 'POST' ? { body: '{}' } : {}), signal: AbortSignal.timeout(15_000),
    }).then((res) => res.status, () => 0);
    const leaders = async () => (await Promise.all(replicas.map(async (r) => {
      const res = await fetch(`http://${r.http}/v1/ca`, { headers: { authorization: `Bearer ${env.MESHWARD_ADMIN_TOKEN}` } });
      return ((await res.json()) as { replica?: { leader: boolean } }).replica?.leader === true;
    }))).filter(Boolean).length;
    let lastSeen = '';
    const until = async (what: string, ok: () => Promise<boolean>, ms = 60_000): Promise<number> => {
      const t = Date.now();
      lastSeen = '';
      while (!(await ok())) {
        if (Date.now() - t > ms) throw new Error(`${what}: not within ${ms} ms${lastSeen && ` (last seen: ${lastSeen})`}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      return Date.now() - t;
    };
    const report: Record<string, string | number> = {};
    await until('a leader', async () => (await leaders()) === 1);
    expect((await burst(20)).allowed).toBeGreaterThan(0);

    // PostgreSQL down for 6 s while checks keep coming.
    const answeredBefore = answered;
    pgProxy.cut();
    const pgDownAt = Date.now();
    let sent = 0;
    let slowest = 0;
    while (Date.now() - pgDownAt < 6000) {
      const r = await burst(10);
      sent += 10;
      slowest = Math.max(slowest, r.ms);
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(answered - answeredBefore).toBe(sent);
    report[`pg down 6 s: checks answered`] = `${answered - answeredBefore} of ${sent} (slowest burst of 10: ${slowest} ms)`;
    expect((await sds(1)).resources.length).toBe(2);
    report['pg down: SDS (default + ROOTCA)'] = 'served';
    const certificates = await api(replicas[0]!, '/v1/certificates');
    const rotateDown = await api(replicas[1]!, '/v1/ca/rotate', 'POST');
    report['pg down: GET /v1/certificates, POST /v1/ca/rotate'] = `${certificates}, ${rotateDown}`;
    expect([certificates, rotateDown]).toEqual([503, 503]);
    report['pg down: replicas leading'] = await leaders();
    pgProxy.restore();
    const pgUpAt = Date.now();
    const sinceUp = () => Date.now() - pgUpAt;
    await until('a leader again', async () => (await leaders()) === 1);
    report['pg back: a leader again after, ms'] = sinceUp();
    await until('records flushed', async () => {
      const r = await cli(['audit', 'verify', '--json', '--database-url', db.url, '--data', path.join(root, 'verify')]);
      lastSeen = `exit ${r.code}, ${r.out.slice(0, 300)} for ${answered} answered`;
      return r.code === 0 && (JSON.parse(r.out) as { checked: number }).checked === answered;
    });
    report['pg back: every answered check in the chain after, ms'] = sinceUp();
    await until('rotate accepted', async () => (await api(replicas[0]!, '/v1/ca/rotate', 'POST')) === 200);
    report['pg back: a rotation accepted after, ms'] = sinceUp();

    // Redis down for 3 s: limits fail open (the default), checks keep being answered.
    redisProxy.cut();
    const redisDownAt = Date.now();
    let allowed = 0;
    let offered = 0;
    while (Date.now() - redisDownAt < 3000) {
      const r = await burst(2 * LIMIT, { 'x-outage-test': randomBytes(6).toString('hex') });
      allowed += r.allowed;
      offered += 2 * LIMIT;
    }
    report[`redis down 3 s: allowed (limit ${LIMIT} per key, failureMode open)`] = `${allowed} of ${offered}`;
    expect(allowed).toBe(offered);
    redisProxy.restore();
    const redisUpAt = Date.now();
    await until('limit enforced', async () => (await burst(2 * LIMIT, { 'x-outage-test': randomBytes(6).toString('hex') })).allowed === LIMIT);
    report['redis back: limit enforced again after, ms'] = Date.now() - redisUpAt;

    const verify = await cli(['audit', 'verify', '--json', '--database-url', db.url, '--data', path.join(root, 'verify')]);
    expect(verify.code).toBe(0);
    process.stderr.write(`\n[outage measurements]\n${Object.entries(report).map(([k, v]) => `  ${k}: ${v}`).join('\n')}\n`);
  }, 240_000);
});
