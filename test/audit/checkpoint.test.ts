import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type AuditCapability, checkpointKeyId, createAuditCapability, encodeCheckpoint, type LocatedCheckpoint, parseCheckpoints, type SignedCheckpoint, signCheckpoint, sqliteFile,
} from '../../src/audit/index.ts';
import { matchCheckpoint, verifyCheckpointSignature } from '../../src/audit/checkpoint.ts';
import { publishCheckpointFiles, publishedCheckpointFiles, readCheckpointFile } from '../../src/audit/checkpoint-files.ts';
import { runCli } from '../../src/cli/index.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { createLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { createMeshward, type Meshward } from '../../src/meshward.ts';
import { decision, resetDecisions, T0 } from './fixtures.ts';

const HASH = 'ab'.repeat(32);
const ed25519 = () => generateKeyPairSync('ed25519');
const located = (checkpoint: SignedCheckpoint): LocatedCheckpoint => ({ checkpoint, where: 'test' });
const trust = (publicKey: KeyObject) => new Map([[checkpointKeyId(publicKey), publicKey]]);

describe('checkpoint signatures (pure)', () => {
  const { privateKey, publicKey } = ed25519();
  const cp = signCheckpoint(privateKey, { seq: 500, hash: HASH, time: T0 });

  it('verifies a checkpoint signed by the trusted key, through its NDJSON line', () => {
    const [parsed] = parseCheckpoints(encodeCheckpoint(cp), 'checkpoints.ndjson');
    expect(parsed!.checkpoint).toEqual(cp);
    expect(() => verifyCheckpointSignature(parsed!, trust(publicKey))).not.toThrow();
  });

  it.each([
    ['an altered seq', { seq: 400 }],
    ['an altered hash', { hash: 'cd'.repeat(32) }],
    ['an altered time', { time: T0 + 1 }],
  ])('refuses %s: the signature no longer matches', (_, change) => {
    expect(() => verifyCheckpointSignature(located({ ...cp, ...change }), trust(publicKey))).toThrow(expect.objectContaining({ code: 'AUDIT_CHECKPOINT_INVALID', message: expect.stringContaining('forged or altered') }));
  });

  it('refuses a forged signature', () => {
    const forged = Buffer.from(cp.signature, 'base64');
    forged[0] ^= 1;
    expect(() => verifyCheckpointSignature(located({ ...cp, signature: forged.toString('base64') }), trust(publicKey))).toThrow(expect.objectContaining({ code: 'AUDIT_CHECKPOINT_INVALID' }));
  });

  it('refuses a checkpoint signed by another key, even when it claims the trusted key id', () => {
    const other = ed25519();
    const byOther = signCheckpoint(other.privateKey, { seq: 500, hash: HASH, time: T0 });
    expect(() => verifyCheckpointSignature(located(byOther), trust(publicKey))).toThrow(expect.objectContaining({ code: 'AUDIT_CHECKPOINT_INVALID', message: expect.stringContaining('not a trusted checkpoint key') }));
    expect(() => verifyCheckpointSignature(located({ ...byOther, keyId: cp.keyId }), trust(publicKey))).toThrow(expect.objectContaining({ message: expect.stringContaining('forged or altered') }));
  });

  it('names the line and field of a malformed checkpoint', () => {
    const text = `${encodeCheckpoint(cp)}{"v":1,"seq":-1}\n`;
    expect(() => parseCheckpoints(text, 'cp.ndjson')).toThrow(expect.objectContaining({ code: 'AUDIT_CHECKPOINT_INVALID', message: 'cp.ndjson:2: seq must be a non-negative integer' }));
    expect(() => parseCheckpoints('nope\n', 'cp.ndjson')).toThrow('cp.ndjson:1: not JSON');
  });
});

describe('checkpoint against the store (pure)', () => {
  const cp = { seq: 500, hash: HASH, time: T0 };
  const at = (seq: number, hash: string) => ({ seq, hash });

  it('matches the record at its seq, and names the range when the head is older', () => {
    expect(matchCheckpoint(cp, { head: at(600, 'x'), anchor: at(0, 'g'), atSeq: at(500, HASH) })).toEqual({ kind: 'match' });
    expect(matchCheckpoint(cp, { head: at(200, 'x'), anchor: at(0, 'g') })).toEqual({ kind: 'missing', fromSeq: 201, toSeq: 500 });
    expect(matchCheckpoint(cp, { head: at(600, 'x'), anchor: at(0, 'g'), atSeq: at(500, 'other') })).toEqual({ kind: 'replaced', seq: 500, storedHash: 'other' });
    expect(matchCheckpoint(cp, { head: at(600, 'x'), anchor: at(0, 'g') })).toEqual({ kind: 'replaced', seq: 500 });
  });

  it('does not flag a checkpoint retention has passed, but compares one at the anchor', () => {
    expect(matchCheckpoint(cp, { head: at(900, 'x'), anchor: at(700, 'a') })).toEqual({ kind: 'retained' });
    expect(matchCheckpoint(cp, { head: at(900, 'x'), anchor: at(500, HASH) })).toEqual({ kind: 'match' });
    expect(matchCheckpoint(cp, { head: at(900, 'x'), anchor: at(500, 'other') })).toMatchObject({ kind: 'replaced' });
  });
});

describe('published checkpoint files', () => {
  it('keeps the previous generation when checkpoints.ndjson grows past its limit, and reads both', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-audit-cpf-'));
    try {
      const { privateKey } = ed25519();
      for (let seq = 1; seq <= 5; seq++) await publishCheckpointFiles(dir, signCheckpoint(privateKey, { seq, hash: HASH, time: T0 }), 500);
      const files = publishedCheckpointFiles(dir).map((f) => path.basename(f));
      expect(files).toEqual(['checkpoints.1.ndjson', 'checkpoints.ndjson', 'checkpoint-latest.json']);
      const seqs = publishedCheckpointFiles(dir).flatMap((f) => readCheckpointFile(f)).map((c) => c.checkpoint.seq);
      expect(seqs.at(-1)).toBe(5);
      expect(new Set(seqs).size).toBeGreaterThanOrEqual(3);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

function capture(cwd: string) {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: (t: string) => out.push(t), stderr: (t: string) => err.push(t), env: {}, cwd }, out: () => out.join(''), err: () => err.join('') };
}

describe('signed checkpoints of a real SQLite audit log', () => {
  let dir: string;
  let dataDir: string;
  let configDir: string;
  let logLines: string[];
  const running: Meshward[] = [];

  beforeEach(() => {
    resetDecisions();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-audit-cp-'));
    dataDir = path.join(dir, 'data');
    configDir = path.join(dir, 'config');
    fs.mkdirSync(configDir);
    fs.writeFileSync(path.join(configDir, 'mesh.yaml'), 'apiVersion: meshward.io/v1\nkind: Mesh\nmetadata: { name: mesh }\nspec:\n  audit: { checkpointEveryRecords: 100, checkpointInterval: 10s }\n');
    logLines = [];
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((m) => m.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function serve(clock = new FakeClock(T0)): Promise<{ mw: Meshward; audit: AuditCapability; clock: FakeClock }> {
    const destination = new Writable({ write(chunk, _enc, cb) { logLines.push(String(chunk)); cb(); } });
    const mw = await createMeshward(
      { configDir, dataDir, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false },
      { logger: createLogger({ level: 'info', destination }), registry: createRegistry(), clock, capabilities: [createAuditCapability] },
    );
    await mw.start();
    return { mw, audit: mw.capability<AuditCapability>('audit')!, clock };
  }

  /** Per count: writes that many records and signs a checkpoint; then stops (which signs the head if it moved). */
  async function writeAndStop(...counts: number[]): Promise<void> {
    const { mw, audit } = await serve();
    for (const n of counts) {
      for (let i = 0; i < n; i++) audit.append(decision());
      await audit.flush();
      await audit.checkpoint();
    }
    await mw.stop();
  }

  async function verify(...args: string[]) {
    const c = capture(dir);
    const code = await runCli(['audit', 'verify', '--data', 'data', ...args], c.io);
    return { code, out: c.out(), err: c.err() };
  }

  const deleteAfter = (seq: number) => {
    const db = new Database(sqliteFile(dataDir));
    db.prepare('DELETE FROM audit_records WHERE seq > ?').run(seq);
    db.close();
  };

  it('passes an untouched log against the published checkpoints and an explicit --checkpoint file', async () => {
    await writeAndStop(500);
    const published = await verify();
    expect(published).toMatchObject({ code: 0 });
    expect(published.out).toContain('checkpoint ok: seq 500');
    const explicit = await verify('--checkpoint', 'data/audit/checkpoints.ndjson', '--public-key', 'data/audit/checkpoint-key.pub.pem');
    expect(explicit.code).toBe(0);
  });

  it('fails with exit 66 naming the missing range when the last rows were deleted', async () => {
    await writeAndStop(500);
    deleteAfter(200);
    // The hash chain alone cannot see it: what is left is a consistent chain.
    const r = await verify('--checkpoint', 'data/audit/checkpoints.ndjson');
    expect(r.code).toBe(66);
    expect(r.out).toContain('records 201-500 are missing');
    expect(r.err).toContain('MISSING after a signed checkpoint: seq 201-500');
    expect(r.out).toContain('audit chain ok: 200 records');
  });

  it('fails when an older copy of the database file is restored', async () => {
    await writeAndStop(200);
    const copy = path.join(dir, 'audit-200.db');
    fs.copyFileSync(sqliteFile(dataDir), copy);
    resetDecisionsAfter(200);
    await writeAndStop(300);
    for (const suffix of ['-wal', '-shm']) fs.rmSync(sqliteFile(dataDir) + suffix, { force: true });
    fs.copyFileSync(copy, sqliteFile(dataDir));
    const r = await verify();
    expect(r.code).toBe(66);
    expect(r.out).toContain('records 201-500 are missing');
  });

  it('fails when the tail was truncated and meshward wrote new records over the same seqs', async () => {
    await writeAndStop(200, 300);
    deleteAfter(200);
    resetDecisionsAfter(500);
    await writeAndStop(400);
    const r = await verify('--json');
    expect(r.code).toBe(66);
    const report = JSON.parse(r.out);
    expect(report).toMatchObject({ ok: false, chainOk: true });
    // The checkpoints at 200 and at 600 (after the restart) match; the one at 500 names the damage.
    expect(report.checkpoints.newest).toEqual([expect.objectContaining({ seq: 600, result: 'match' })]);
    const finding = report.checkpoints.findings[0];
    expect(finding).toMatchObject({ fromSeq: 201, toSeq: 500 });
    expect(finding.message).toContain('missing or replaced');
  });

  it('refuses a checkpoint file with an altered seq or a forged signature (exit 67)', async () => {
    await writeAndStop(500);
    const file = path.join(dataDir, 'audit', 'checkpoints.ndjson');
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    const last = JSON.parse(lines.at(-1)!);
    fs.writeFileSync(path.join(dir, 'seq.ndjson'), `${JSON.stringify({ ...last, seq: 400 })}\n`);
    const altered = await verify('--checkpoint', 'seq.ndjson');
    expect(altered.code).toBe(67);
    expect(altered.err).toContain('seq.ndjson:1: the signature does not match the checkpoint (seq 400): forged or altered');
    const sig = Buffer.from(last.signature, 'base64');
    sig[10] ^= 0xff;
    fs.writeFileSync(path.join(dir, 'sig.ndjson'), `${JSON.stringify({ ...last, signature: sig.toString('base64') })}\n`);
    expect((await verify('--checkpoint', 'sig.ndjson')).code).toBe(67);
  });

  it('refuses a checkpoint signed by a different key than the pinned one', async () => {
    await writeAndStop(100);
    const other = ed25519();
    fs.writeFileSync(path.join(dir, 'other.pub.pem'), other.publicKey.export({ type: 'spki', format: 'pem' }));
    const pinnedOther = await verify('--public-key', 'other.pub.pem');
    expect(pinnedOther.code).toBe(67);
    expect(pinnedOther.err).toContain('not a trusted checkpoint key');
    // And a well-formed checkpoint signed by a stranger's key is refused against meshward's own key.
    fs.writeFileSync(path.join(dir, 'stranger.ndjson'), encodeCheckpoint(signCheckpoint(other.privateKey, { seq: 100, hash: HASH, time: T0 })));
    expect((await verify('--checkpoint', 'stranger.ndjson')).code).toBe(67);
  });

  it('signs after checkpointEveryRecords records on the next tick and at the interval, publishing file, latest and one log line', async () => {
    const { mw, audit, clock } = await serve();
    running.push(mw);
    for (let i = 0; i < 150; i++) audit.append(decision());
    await audit.flush();
    clock.advance(1000);
    const file = path.join(dataDir, 'audit', 'checkpoints.ndjson');
    await expect.poll(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8')).toContain('"seq":150');
    for (let i = 0; i < 10; i++) audit.append(decision());
    await audit.flush();
    clock.advance(1000);
    await new Promise((r) => setTimeout(r, 50));
    expect(fs.readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(1);
    // The tick re-arms after each (asynchronous) check: step the fake clock a second at a time.
    for (let i = 0; i < 12; i++) {
      clock.advance(1000);
      await new Promise((r) => setTimeout(r, 20));
    }
    await expect.poll(() => fs.readFileSync(file, 'utf8').trim().split('\n').length).toBe(2);
    const latest = JSON.parse(fs.readFileSync(path.join(dataDir, 'audit', 'checkpoint-latest.json'), 'utf8'));
    expect(latest).toMatchObject({ seq: 160, v: 1 });
    const lines = logLines.filter((l) => l.includes('audit checkpoint signed')).map((l) => JSON.parse(l));
    expect(lines.map((l) => l.checkpoint.seq)).toEqual([150, 160]);
    expect(lines[1].checkpoint.signature).toBe(latest.signature);
    // The private key is 0600 and never logged.
    const keyFile = path.join(dataDir, 'audit', 'checkpoint-key.pem');
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    const pem = fs.readFileSync(keyFile, 'utf8');
    expect(logLines.join('')).not.toContain(pem.split('\n')[1]);
  });

  it('logs an error at start naming the records missing since the last published checkpoint', async () => {
    await writeAndStop(300);
    deleteAfter(250);
    const { mw } = await serve();
    running.push(mw);
    expect(logLines.some((l) => l.includes('audit records missing since the last checkpoint') && l.includes('records 251-300 are missing'))).toBe(true);
  });

  it('serves the last published checkpoint after a restart, before signing a new one', async () => {
    await writeAndStop(20);
    const latest = JSON.parse(fs.readFileSync(path.join(dataDir, 'audit', 'checkpoint-latest.json'), 'utf8'));
    const { mw } = await serve();
    running.push(mw);
    const res = await mw.http.inject({ method: 'GET', url: '/v1/audit/checkpoints', headers: { authorization: `Bearer ${mw.apiAuth.createToken('alice', 'auditor')}` } });
    expect(res.json().checkpoints).toEqual([latest]);
  });

  it('serves the checkpoints and public key to auditors only (401 without a token, 403 for an operator)', async () => {
    const { mw, audit } = await serve();
    running.push(mw);
    for (let i = 0; i < 5; i++) audit.append(decision());
    await audit.flush();
    const signed = await audit.checkpoint();
    const get = (token?: string) => mw.http.inject({ method: 'GET', url: '/v1/audit/checkpoints', headers: token ? { authorization: `Bearer ${token}` } : {} });
    expect((await get()).statusCode).toBe(401);
    expect((await get(mw.apiAuth.createToken('op', 'operator'))).statusCode).toBe(403);
    const res = await get(mw.apiAuth.createToken('alice', 'auditor'));
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.checkpoints).toEqual([signed]);
    expect(body.publicKey).toBe(fs.readFileSync(path.join(dataDir, 'audit', 'checkpoint-key.pub.pem'), 'utf8'));
    // The API's answer is itself a checkpoint file `audit verify --checkpoint` accepts.
    fs.writeFileSync(path.join(dir, 'api.json'), res.body);
    await mw.stop();
    running.length = 0;
    expect((await verify('--checkpoint', 'api.json')).code).toBe(0);
  });
});

/** Continues decision ids after `n` records (a restarted server writes new decisions). */
function resetDecisionsAfter(n: number): void {
  resetDecisions();
  for (let i = 0; i < n; i++) decision();
}
