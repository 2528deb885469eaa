/** An explicit `audit.store` wins over the database URL; `auto` (the default) follows it. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { type AuditCapability, createAuditCapability, sqliteFile } from '../../src/audit/index.ts';
import { auditStoreKind } from '../../src/audit/open.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { createLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { decision, resetDecisions, T0 } from './fixtures.ts';

const dirs: string[] = [];
const running: Meshward[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((m) => m.stop()));
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Nothing listens on port 1: opening PostgreSQL there fails at once. */
const UNREACHABLE_DATABASE = 'postgres://meshward:secret@127.0.0.1:1/none';

describe('audit store choice', () => {
  it('keeps an explicit store: sqlite in SQLite although a database URL is given, and warns naming both', async () => {
    resetDecisions();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-audit-choice-'));
    dirs.push(dir);
    const configDir = path.join(dir, 'config');
    const dataDir = path.join(dir, 'data');
    fs.mkdirSync(configDir);
    fs.writeFileSync(path.join(configDir, 'mesh.yaml'), 'apiVersion: meshward.io/v1\nkind: Mesh\nmetadata: { name: mesh }\nspec:\n  audit: { store: sqlite }\n');
    const lines: { level: number; msg: string; store?: string; configured?: string }[] = [];
    const sink = new Writable({ write(chunk: Buffer, _enc, done) { for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l)); done(); } });
    const mw = await createMeshward(
      { configDir, dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false, databaseUrl: UNREACHABLE_DATABASE },
      { logger: createLogger({ destination: sink }), registry: createRegistry(), clock: new FakeClock(T0), capabilities: [createAuditCapability] },
    );
    running.push(mw);
    await mw.start();
    const audit = mw.capability<AuditCapability>('audit')!;
    expect(audit.store.kind).toBe('sqlite');
    audit.append(decision());
    await audit.flush();
    expect(fs.existsSync(sqliteFile(dataDir))).toBe(true);
    const warning = lines.find((l) => l.level === 40 && /audit\.store is sqlite/.test(l.msg));
    expect(warning?.msg).toMatch(/database URL/);
    expect(JSON.stringify(lines)).not.toContain('secret');
    expect(lines.find((l) => l.msg === 'audit store opened')).toMatchObject({ store: 'sqlite', configured: 'sqlite' });
  });

  it('follows the database URL when the store is auto or absent; an explicit store wins', () => {
    expect(auditStoreKind('auto', 'postgres://x')).toBe('postgres');
    expect(auditStoreKind('auto', undefined)).toBe('sqlite');
    expect(auditStoreKind(undefined, 'postgres://x')).toBe('postgres');
    expect(auditStoreKind('sqlite', 'postgres://x')).toBe('sqlite');
    expect(auditStoreKind('postgres', undefined)).toBe('postgres');
  });
});
