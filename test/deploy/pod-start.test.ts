/**
 * The Kubernetes install starts: the container rendered from each overlay runs locally with its
 * own args, env and mounts (test/deploy/pod.ts) and passes its readiness probe, then stops on
 * SIGTERM. The `ha` pod runs on a fresh PostgreSQL database and Redis and serves the plugged-in
 * CA from its mounted Secret. Skips with a message without kubectl (and, for `ha`, without
 * DATABASE_URL/REDIS_URL or openssl).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createTestCa } from '../helpers/tls.ts';
import { type LocalPod, type Secrets, startLocalPod, waitReady } from './pod.ts';
import { hasKubectl, render } from './render.ts';

const DATABASE_URL = process.env.DATABASE_URL;
const REDIS_URL = process.env.REDIS_URL;
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
if (!hasKubectl) console.warn('test/deploy/pod-start.test.ts: skipped, kubectl is absent (apt-get install -y kubernetes-client)');
else if (!DATABASE_URL || !REDIS_URL || !hasOpenssl) console.warn('test/deploy/pod-start.test.ts: the ha overlay is skipped (needs DATABASE_URL, REDIS_URL and openssl)');

const scratch = mkdtempSync(path.join(tmpdir(), 'meshward-pod-'));
const pods: LocalPod[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const pod of pods.splice(0)) if (pod.child.exitCode === null) pod.child.kill('SIGKILL');
  for (const c of cleanups.splice(0)) await c();
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function tlsSecret(): Promise<Record<string, string>> {
  const ca = await createTestCa('meshward-tls test CA');
  const leaf = await ca.sign({ dns: ['localhost', 'meshward.meshward-system.svc'], ip: ['127.0.0.1'] });
  return { 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem, 'ca.crt': ca.certPem };
}

/** Istio `cacerts` for trust domain cluster.local, made with the openssl CLI: root → intermediate. */
function cacertsSecret(work: string): Record<string, string> {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
  writeFileSync(path.join(work, 'ext.cnf'), '[v3_ca]\nbasicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\nsubjectAltName=URI:spiffe://cluster.local\n');
  ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'root-key.pem');
  ssl('req', '-x509', '-new', '-key', 'root-key.pem', '-subj', '/O=Corp/CN=Corp Root CA', '-days', '365', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'root-cert.pem');
  ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ca-key.pem');
  ssl('req', '-new', '-key', 'ca-key.pem', '-subj', '/O=Corp/CN=Corp Intermediate CA', '-out', 'ca.csr');
  ssl('x509', '-req', '-in', 'ca.csr', '-CA', 'root-cert.pem', '-CAkey', 'root-key.pem', '-CAcreateserial', '-days', '90', '-extfile', 'ext.cnf', '-extensions', 'v3_ca', '-out', 'ca-cert.pem');
  const read = (f: string) => readFileSync(path.join(work, f), 'utf8');
  return { 'ca-cert.pem': read('ca-cert.pem'), 'ca-key.pem': read('ca-key.pem'), 'root-cert.pem': read('root-cert.pem'), 'cert-chain.pem': read('ca-cert.pem') + read('root-cert.pem') };
}

/** A database of its own, so the shared CA and tokens of this pod meet no other test's. */
async function freshDatabase(): Promise<string> {
  const name = `mw_h8_pod_${randomBytes(4).toString('hex')}`;
  const run = async (sql: string) => {
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    try { await c.query(sql); } finally { await c.end(); }
  };
  await run(`CREATE DATABASE ${name}`);
  cleanups.push(() => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  const url = new URL(DATABASE_URL!);
  url.pathname = `/${name}`;
  return url.toString();
}

async function startAndStop(overlay: string, secrets: Secrets): Promise<string> {
  const root = mkdtempSync(path.join(scratch, `${overlay}-`));
  const pod = await startLocalPod(render(overlay), root, secrets);
  pods.push(pod);
  expect(await waitReady(pod), pod.logs()).toBe(true);
  expect(await pod.probe('livenessProbe')).toBe(200);
  pod.child.kill('SIGTERM');
  expect(await pod.exited, pod.logs()).toBe(0);
  return pod.logs();
}

describe.skipIf(!hasKubectl)('the rendered pod', () => {
  it('of overlays/single starts with its mounts (config from the projected ConfigMaps, TLS Secret, data volume), turns ready over HTTPS and stops on SIGTERM', async () => {
    const logs = await startAndStop('single', { 'meshward-tls': await tlsSecret() });
    expect(logs).toMatch(/"store":"sqlite"/);
    expect(logs).toMatch(/"msg":"meshward serving"/);
  }, 90_000);

  it.skipIf(!DATABASE_URL || !REDIS_URL || !hasOpenssl)('of overlays/ha starts on PostgreSQL and Redis from its Secret, with the plugged-in CA from meshward-cacerts', async () => {
    const work = mkdtempSync(path.join(scratch, 'openssl-'));
    const cacerts = cacertsSecret(work);
    const logs = await startAndStop('ha', {
      'meshward-tls': await tlsSecret(),
      'meshward-backends': { 'database-url': await freshDatabase(), 'redis-url': REDIS_URL! },
      'meshward-kek': { kek: randomBytes(32).toString('base64') },
      'meshward-cacerts': cacerts,
    });
    expect(logs).toMatch(/"store":"postgres"/);
    expect(logs).toMatch(/"backend":"redis"/);
    expect(logs).toMatch(/"component":"ca","mode":"plugged","source":"[^"]*\/cacerts"/); // the mounted Secret, not a generated CA
  }, 120_000);
});
