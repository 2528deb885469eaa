/** `meshward ca export`: the CA's certificates as files openssl takes, in Istio's cacerts names; the key only on request. */
import { spawnSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.ts';
import { doc, removeDir, tempDir, writeConfigDir } from '../helpers/config.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach(removeDir));

function openssl(args: string[]) {
  return spawnSync('openssl', args, { encoding: 'utf8' });
}

async function initialized() {
  const data = tempDir('mw-data-');
  const out = tempDir('mw-export-');
  const config = writeConfigDir({ 'mesh.yaml': doc('Mesh', 'mesh', 'trustDomain: corp.example') });
  dirs.push(data, out, config);
  expect((await cli(['ca', 'init', '-d', data, '-c', config])).code).toBe(0);
  return { data, out, config };
}

describe('meshward ca export', () => {
  it('writes root-cert.pem, ca-cert.pem and cert-chain.pem that openssl verifies, and no key', async () => {
    const { data, out, config } = await initialized();
    const r = await cli(['ca', 'export', '-d', data, '-c', config, '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const f = (name: string) => path.join(out, name);
    expect(existsSync(f('ca-key.pem'))).toBe(false);
    const verify = openssl(['verify', '-CAfile', f('root-cert.pem'), '-untrusted', f('cert-chain.pem'), f('ca-cert.pem')]);
    expect(verify.stdout + verify.stderr).toMatch(/ca-cert\.pem: OK/);
    expect(verify.status).toBe(0);
    // The chain starts with ca-cert and ends with the root.
    const chain = readFileSync(f('cert-chain.pem'), 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!;
    expect(new X509Certificate(chain[0]!).fingerprint256).toBe(new X509Certificate(readFileSync(f('ca-cert.pem'))).fingerprint256);
    expect(new X509Certificate(chain.at(-1)!).fingerprint256).toBe(new X509Certificate(readFileSync(f('root-cert.pem'))).fingerprint256);
    // A certificate from another CA does not verify against the export.
    const other = await initialized();
    expect((await cli(['ca', 'export', '-d', other.data, '-c', other.config, '--out', other.out])).code).toBe(0);
    expect(openssl(['verify', '-CAfile', f('root-cert.pem'), path.join(other.out, 'ca-cert.pem')]).status).not.toBe(0);
  });

  it('writes the signing key only with --include-key, as ca-key.pem with mode 0600 (also over an existing file)', async () => {
    const { data, out, config } = await initialized();
    writeFileSync(path.join(out, 'ca-key.pem'), 'old', { mode: 0o644 });
    const r = await cli(['ca', 'export', '-d', data, '-c', config, '--out', out, '--include-key']);
    expect(r.code).toBe(0);
    const keyFile = path.join(out, 'ca-key.pem');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(new X509Certificate(readFileSync(path.join(out, 'ca-cert.pem'))).checkPrivateKey(createPrivateKey(readFileSync(keyFile)))).toBe(true);
    expect(r.stdout).not.toContain('PRIVATE KEY');
  });

  it('needs --out', async () => {
    const { data, config } = await initialized();
    const r = await cli(['ca', 'export', '-d', data, '-c', config]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--out DIR is required');
  });
});
