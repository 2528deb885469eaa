/** Test helpers for the CA: a temp CA directory, default settings, and a fake clock. */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Authority } from '../../src/ca/authority.ts';
import { Issuer } from '../../src/ca/issuer.ts';
import { CertificateRecords } from '../../src/ca/records.ts';
import type { CaSettings } from '../../src/config/kinds/mesh.ts';
import { resolveMesh } from '../../src/config/mesh-defaults.ts';
import { FakeClock } from '../../src/lib/clock.ts';

export const TRUST_DOMAIN = 'example.org';

export function tempDir(prefix = 'mw-ca-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export function caSettings(overrides: Partial<CaSettings> = {}): CaSettings {
  return { ...resolveMesh({}).ca, ...overrides };
}

export interface TestCa {
  dir: string;
  clock: FakeClock;
  settings: CaSettings;
  authority: Authority;
  issuer: Issuer;
  records: CertificateRecords;
  reopen(): TestCa;
}

export function createTestCa(options: { dir?: string; clock?: FakeClock; settings?: Partial<CaSettings> } = {}): TestCa {
  const dir = options.dir ?? tempDir();
  const clock = options.clock ?? new FakeClock();
  const settings = caSettings(options.settings);
  const authority = Authority.open({ caDir: path.join(dir, 'ca'), trustDomain: TRUST_DOMAIN, settings: () => settings, clock }, true);
  const records = new CertificateRecords(path.join(dir, 'ca', 'certificates.db'));
  const issuer = new Issuer({ authority, records, clock, settings: () => settings, trustDomain: () => TRUST_DOMAIN });
  const ca: TestCa = {
    dir, clock, settings, authority, issuer, records,
    reopen: () => {
      records.close();
      return createTestCa({ dir, clock, settings });
    },
  };
  return ca;
}

export function ecKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, publicKey, spki: publicKey.export({ type: 'spki', format: 'der' }) };
}
