import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { certPem, createIntermediateCertificate, createRootCertificate, generateCaKey } from '../../src/ca/ca-certs.ts';
import { runCli } from '../../src/cli/index.ts';
import { doc, writeConfigDir } from '../helpers/config.ts';
import { removeDir, tempDir } from './helpers.ts';
import { startHarness } from '../sds/harness.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) removeDir(d);
});

async function cli(args: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { stdout: (t) => { stdout += t; }, stderr: (t) => { stderr += t; }, env, cwd: process.cwd() });
  return { code, stdout, stderr };
}

function setup() {
  const data = tempDir();
  const config = writeConfigDir({ 'mesh.yaml': doc('Mesh', 'mesh', 'trustDomain: corp.example') });
  dirs.push(data, config);
  return { data, config };
}

describe('meshward ca', () => {
  it('init creates a CA for the configured trust domain and never prints a key', async () => {
    const { data, config } = setup();
    const res = await cli(['ca', 'init', '-d', data, '-c', config]);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('trust domain corp.example');
    expect(res.stdout).not.toContain('PRIVATE KEY');
    const again = await cli(['ca', 'init', '-d', data, '-c', config]);
    expect(again.code).toBe(78);
    expect(again.stderr).toContain('already holds a CA');
  });

  it('init --from imports a plugged-in CA and reports a mismatched key clearly', async () => {
    const { data, config } = setup();
    const from = tempDir();
    dirs.push(from);
    const rootKey = generateCaKey();
    const root = createRootCertificate(rootKey, { trustDomain: 'corp.example', now: Date.now(), ttlMs: 365 * 86_400_000, skewMs: 0, label: 'corp' });
    const key = generateCaKey();
    const ca = createIntermediateCertificate(key, { der: root, key: rootKey }, { trustDomain: 'corp.example', now: Date.now(), ttlMs: 90 * 86_400_000, skewMs: 0, label: 'int' });
    writeFileSync(path.join(from, 'ca-cert.pem'), certPem(ca));
    writeFileSync(path.join(from, 'ca-key.pem'), generateCaKey().export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(path.join(from, 'cert-chain.pem'), certPem(ca) + certPem(root));
    writeFileSync(path.join(from, 'root-cert.pem'), certPem(root));
    const bad = await cli(['ca', 'init', '-d', data, '-c', config, '--from', from]);
    expect(bad.code).toBe(78);
    expect(bad.stderr).toMatch(/ca-key.pem does not match/);
    writeFileSync(path.join(from, 'ca-key.pem'), key.export({ type: 'pkcs8', format: 'pem' }));
    const ok = await cli(['ca', 'init', '-d', data, '-c', config, '--from', from, '--json']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).mode).toBe('plugged-in');
  });

  it('status and rotate --offline act on the plugged-in CA serve would use (<data>/ca/plugged or --ca-dir), not on a generated one', async () => {
    const { data, config } = setup();
    expect((await cli(['ca', 'init', '-d', data, '-c', config])).code).toBe(0);
    const mounted = path.join(data, 'ca', 'plugged');
    mkdirSync(mounted, { recursive: true });
    const rootKey = generateCaKey();
    const root = createRootCertificate(rootKey, { trustDomain: 'corp.example', now: Date.now(), ttlMs: 365 * 86_400_000, skewMs: 0, label: 'corp' });
    const key = generateCaKey();
    const ca = createIntermediateCertificate(key, { der: root, key: rootKey }, { trustDomain: 'corp.example', now: Date.now(), ttlMs: 90 * 86_400_000, skewMs: 0, label: 'int' });
    writeFileSync(path.join(mounted, 'ca-cert.pem'), certPem(ca));
    writeFileSync(path.join(mounted, 'ca-key.pem'), key.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(path.join(mounted, 'cert-chain.pem'), certPem(ca) + certPem(root));
    writeFileSync(path.join(mounted, 'root-cert.pem'), certPem(root));
    const status = await cli(['ca', 'status', '-d', data, '-c', config, '--json']);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).mode).toBe('plugged-in');
    const rotate = await cli(['ca', 'rotate', '--offline', '-d', data, '-c', config]);
    expect(rotate.code).toBe(78);
    expect(rotate.stderr).toMatch(/replace its cacerts files/);
    const elsewhere = tempDir();
    dirs.push(elsewhere);
    const viaFlag = await cli(['ca', 'status', '-d', elsewhere, '-c', config, '--ca-dir', mounted, '--json']);
    expect(JSON.parse(viaFlag.stdout).mode).toBe('plugged-in');
  });

  it('token prints a bootstrap token for the service account', async () => {
    const { data, config } = setup();
    const res = await cli(['ca', 'token', '-d', data, '-c', config, '--namespace', 'shop', '--service-account', 'orders', '--ttl', '1h']);
    expect(res.code).toBe(0);
    const claims = decodeJwt(res.stdout.trim());
    expect(claims.sub).toBe('system:serviceaccount:shop:orders');
    expect(claims.exp! - claims.iat!).toBe(3600);
    expect((await cli(['ca', 'token', '-d', data, '-c', config, '--namespace', 'shop'])).code).toBe(2);
  });

  it('rotate --offline prepares a new root that status then shows next to the old one', async () => {
    const { data, config } = setup();
    await cli(['ca', 'init', '-d', data, '-c', config]);
    const res = await cli(['ca', 'rotate', '-d', data, '-c', config, '--offline', '--new-root', '--activate-after', '1h']);
    expect(res.code).toBe(0);
    const status = JSON.parse((await cli(['ca', 'status', '-d', data, '-c', config, '--json'])).stdout);
    expect(status.roots).toBe(2);
    expect(status.slots.map((s: { state: string }) => s.state)).toEqual(['active', 'prepared']);
    const journal = readFileSync(path.join(data, 'ca', 'journal.json'), 'utf8');
    expect(new X509Certificate(JSON.parse(journal).roots[1].certPem).subject).toContain('corp.example');
  });

  it('rotate asks the running server when one answers, with the admin token', async () => {
    const h = await startHarness();
    try {
      const denied = await cli(['ca', 'rotate', '-d', h.dataDir, '--http-addr', h.meshward.addresses.http], { MESHWARD_ADMIN_TOKEN: 'mw_wrong' });
      expect(denied.code).toBe(77);
      const admin = h.meshward.apiAuth.createToken('cli', 'admin');
      const res = await cli(['ca', 'rotate', '-d', h.dataDir, '--http-addr', h.meshward.addresses.http, '--activate-after', '5m', '--json'], { MESHWARD_ADMIN_TOKEN: admin });
      expect(res.code).toBe(0);
      expect(JSON.parse(res.stdout).slots.map((s: { state: string }) => s.state)).toEqual(['active', 'prepared']);
      expect(h.ca.authority.slots()).toHaveLength(2);
    } finally {
      await h.close();
    }
  });
});
