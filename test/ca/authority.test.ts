import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Authority } from '../../src/ca/authority.ts';
import { certPem, createIntermediateCertificate, createRootCertificate, generateCaKey } from '../../src/ca/ca-certs.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { caSettings, createTestCa, ecKey, removeDir, type TestCa, tempDir, TRUST_DOMAIN } from './helpers.ts';

const DAY = 86_400_000;
const cleanup: TestCa[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const ca of cleanup.splice(0)) {
    ca.records.close();
    removeDir(ca.dir);
  }
  for (const d of dirs.splice(0)) removeDir(d);
});

function track(ca: TestCa): TestCa {
  cleanup.push(ca);
  return ca;
}

const issueOne = (ca: TestCa) => ca.issuer.issue({ spiffeId: `spiffe://${TRUST_DOMAIN}/ns/a/sa/b`, spki: ecKey().spki, keyKind: 'ec', requestedBy: 't', method: 'api' });

function verifiesWith(svid: { chainPem: string }, rootsPem: readonly Buffer[]): boolean {
  const chain = (svid.chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map((p) => new X509Certificate(p));
  if (!chain[0]!.verify(chain[1]!.publicKey)) return false;
  return rootsPem.some((r) => chain[1]!.verify(new X509Certificate(r).publicKey));
}

describe('CA authority', () => {
  it('creates a root and an intermediate with keys and journal stored 0600', () => {
    const ca = track(createTestCa());
    const caDir = path.join(ca.dir, 'ca');
    const journal = JSON.parse(readFileSync(path.join(caDir, 'journal.json'), 'utf8'));
    expect(journal.slots).toHaveLength(1);
    for (const file of [path.join(caDir, 'journal.json'), path.join(caDir, journal.slots[0].keyFile), path.join(caDir, journal.roots[0].keyFile)]) {
      expect(statSync(file).mode & 0o777).toBe(0o600);
    }
    // No private key material in the journal.
    expect(readFileSync(path.join(caDir, 'journal.json'), 'utf8')).not.toContain('PRIVATE KEY');
  });

  it('refuses to start when a key the journal refers to is missing, naming the file', () => {
    const ca = track(createTestCa());
    const caDir = path.join(ca.dir, 'ca');
    const journal = JSON.parse(readFileSync(path.join(caDir, 'journal.json'), 'utf8'));
    rmSync(path.join(caDir, journal.slots[0].keyFile));
    expect(() => ca.reopen()).toThrow(expect.objectContaining({ code: 'CA_INVALID', message: expect.stringContaining(journal.slots[0].keyFile) }));
  });

  it('reuses the CA on restart instead of creating another', () => {
    const ca = track(createTestCa());
    const root = ca.authority.active().rootPem;
    const again = ca.reopen();
    cleanup.push(again);
    expect(again.authority.active().rootPem).toBe(root);
  });

  it('prepares the next CA at half its lifetime and activates it at five sixths, without a root change while the root has time', () => {
    const ca = track(createTestCa({ settings: { intermediateCertTTL: '60d' } }));
    const first = ca.authority.active().slotId;
    ca.clock.advance(29 * DAY);
    expect(ca.authority.advance()).toBe(false);
    ca.clock.advance(2 * DAY); // past min(30 d, ½ × 60 d)
    expect(ca.authority.advance()).toBe(true);
    expect(ca.authority.slots().map((s) => s.state)).toEqual(['active', 'prepared']);
    expect(ca.authority.active().slotId).toBe(first);
    ca.clock.advance(23 * DAY); // past 60 d − min(7 d, 10 d) = 53 d
    expect(ca.authority.advance()).toBe(true);
    expect(ca.authority.active().slotId).not.toBe(first);
    expect(ca.authority.bundle().roots).toHaveLength(1);
  });

  it('keeps old and new roots trusted during a root rotation, then drops the old one after its certificates expire', () => {
    const ca = track(createTestCa());
    const before = issueOne(ca);
    ca.authority.rotate({ newRoot: true, activateAfterMs: 10 * 60_000 });
    expect(ca.authority.bundle().roots).toHaveLength(2);
    ca.clock.advance(10 * 60_000);
    ca.authority.advance();
    const after = issueOne(ca);
    const roots = ca.authority.bundle().roots;
    expect(roots).toHaveLength(2);
    expect(verifiesWith(before, roots)).toBe(true);
    expect(verifiesWith(after, roots)).toBe(true);
    expect(after.caSlot).not.toBe(before.caSlot);
    // One workload TTL (1 h) plus skew after activation, the old slot and root leave the bundle.
    ca.clock.advance(62 * 60_000);
    ca.authority.advance();
    expect(ca.authority.bundle().roots).toHaveLength(1);
    expect(verifiesWith(after, ca.authority.bundle().roots)).toBe(true);
    expect(verifiesWith(before, ca.authority.bundle().roots)).toBe(false);
    expect(ca.authority.slots().map((s) => s.state)).toEqual(['active']);
  });

  it('resumes a prepared rotation after a restart and activates it on schedule', () => {
    const ca = track(createTestCa());
    const prepared = ca.authority.rotate({ newRoot: true, activateAfterMs: 30 * 60_000 });
    const restarted = ca.reopen();
    cleanup.push(restarted);
    expect(restarted.authority.slots().find((s) => s.state === 'prepared')?.id).toBe(prepared.id);
    expect(restarted.authority.bundle().roots).toHaveLength(2);
    ca.clock.advance(30 * 60_000);
    restarted.authority.advance();
    expect(restarted.authority.active().slotId).toBe(prepared.id);
  });

  it('refuses a new-root rotation while a same-root rotation is prepared, and reuses a prepared one otherwise', () => {
    const ca = track(createTestCa());
    const first = ca.authority.rotate({ activateAfterMs: 60_000 });
    expect(() => ca.authority.rotate({ newRoot: true })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(ca.authority.rotate({ activateAfterMs: 0 }).id).toBe(first.id);
    ca.authority.advance();
    expect(ca.authority.active().slotId).toBe(first.id);
  });

  it('notifies bundle listeners when a new root is published', () => {
    const ca = track(createTestCa());
    const seen: number[] = [];
    ca.authority.onBundleChange((b) => seen.push(b.roots.length));
    ca.authority.rotate({ newRoot: true, activateAfterMs: 60_000 });
    expect(seen).toEqual([2]);
  });

  it('replaces an expired active CA at once when the server was down past its lifetime', () => {
    const ca = track(createTestCa({ settings: { intermediateCertTTL: '2d', workloadCertTTL: '1h' } }));
    const first = ca.authority.active().slotId;
    ca.clock.advance(3 * DAY);
    ca.authority.advance();
    expect(ca.authority.active().slotId).not.toBe(first);
    expect(() => issueOne(ca)).not.toThrow();
  });
});

describe('plugged-in CA', () => {
  function writeCacerts(dir: string, opts: { clock?: FakeClock; mismatchedKey?: boolean; expired?: boolean; leafAsCa?: boolean } = {}) {
    const clock = opts.clock ?? new FakeClock();
    const rootKey = generateCaKey();
    const root = createRootCertificate(rootKey, { trustDomain: TRUST_DOMAIN, now: clock.now(), ttlMs: 365 * DAY, skewMs: 0, label: 'corp' });
    const key = generateCaKey();
    const issuedAt = opts.expired ? clock.now() - 10 * DAY : clock.now();
    const ca = createIntermediateCertificate(key, { der: root, key: rootKey }, { trustDomain: TRUST_DOMAIN, now: issuedAt, ttlMs: opts.expired ? DAY : 90 * DAY, skewMs: 0, label: 'corp-int' });
    writeFileSync(path.join(dir, 'ca-cert.pem'), certPem(ca));
    writeFileSync(path.join(dir, 'ca-key.pem'), (opts.mismatchedKey ? generateCaKey() : key).export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(path.join(dir, 'cert-chain.pem'), certPem(ca) + certPem(root));
    writeFileSync(path.join(dir, 'root-cert.pem'), certPem(root));
    return { root, ca };
  }

  function importFrom(from: string, clock = new FakeClock()) {
    const dataDir = tempDir();
    dirs.push(dataDir);
    return Authority.importPluggedIn({ caDir: path.join(dataDir, 'ca'), trustDomain: TRUST_DOMAIN, settings: () => caSettings(), clock }, from);
  }

  it('signs with the operator\'s CA and trusts the operator\'s root', () => {
    const from = tempDir();
    dirs.push(from);
    const { root } = writeCacerts(from);
    const authority = importFrom(from);
    expect(authority.mode).toBe('plugged-in');
    expect(authority.bundle().roots.map((r) => r.toString('hex'))).toEqual([root.toString('hex')]);
    expect(() => authority.rotate()).toThrow(expect.objectContaining({ code: 'CA_ROTATION_UNSUPPORTED' }));
  });

  it('refuses a key that does not match the certificate', () => {
    const from = tempDir();
    dirs.push(from);
    writeCacerts(from, { mismatchedKey: true });
    expect(() => importFrom(from)).toThrow(/ca-key.pem does not match .*ca-cert.pem/);
  });

  it('refuses an expired CA certificate', () => {
    const from = tempDir();
    dirs.push(from);
    writeCacerts(from, { expired: true });
    expect(() => importFrom(from)).toThrow(expect.objectContaining({ code: 'CA_INVALID', message: expect.stringMatching(/expired/) }));
  });

  it('refuses a certificate that is not a CA', () => {
    const from = tempDir();
    dirs.push(from);
    writeCacerts(from);
    const leafCa = track(createTestCa());
    writeFileSync(path.join(from, 'ca-cert.pem'), certPem(issueOne(leafCa).certDer));
    expect(() => importFrom(from)).toThrow(/not a CA certificate/);
  });

  it('refuses a missing file, naming it', () => {
    const from = tempDir();
    dirs.push(from);
    writeCacerts(from);
    writeFileSync(path.join(from, 'root-cert.pem'), '');
    expect(() => importFrom(from)).toThrow(/root-cert.pem holds no PEM certificate/);
    expect(existsSync(path.join(from, 'ca-cert.pem'))).toBe(true);
  });

  it('refuses a CA that does not chain to the given root', () => {
    const from = tempDir();
    dirs.push(from);
    writeCacerts(from);
    const other = tempDir();
    dirs.push(other);
    writeCacerts(other);
    writeFileSync(path.join(from, 'root-cert.pem'), readFileSync(path.join(other, 'root-cert.pem')));
    expect(() => importFrom(from)).toThrow(/does not chain/);
  });
});
