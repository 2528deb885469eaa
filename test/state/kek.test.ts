/** The KEK envelope and the refusal to share secrets without one. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/index.ts';
import { loadKek, loadPreviousKeks, openSealed, openWithAny, seal, type StateError } from '../../src/state/index.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as StateError).code;
  }
  return undefined;
}

describe('KEK envelope', () => {
  const kek = randomBytes(32);
  const secret = Buffer.from('-----BEGIN PRIVATE KEY-----\nsecret-key-material\n-----END PRIVATE KEY-----\n');

  it('opens what it sealed, and the sealed text holds no plaintext', () => {
    const sealed = seal(kek, 'bootstrap-token.key', secret);
    expect(sealed).not.toContain('secret-key-material');
    expect(sealed).not.toContain(Buffer.from('secret-key-material').toString('base64'));
    expect(openSealed(kek, 'bootstrap-token.key', sealed).equals(secret)).toBe(true);
  });

  it('seals the same secret differently each time (a fresh data key and IV)', () => {
    expect(seal(kek, 'n', secret)).not.toBe(seal(kek, 'n', secret));
  });

  it('refuses another KEK, another name, and an altered value', () => {
    const sealed = seal(kek, 'keys/root.key.pem', secret);
    expect(codeOf(() => openSealed(randomBytes(32), 'keys/root.key.pem', sealed))).toBe('STATE_KEK_INVALID');
    expect(codeOf(() => openSealed(kek, 'keys/slot.key.pem', sealed))).toBe('STATE_KEK_INVALID');
    const parsed = JSON.parse(sealed) as { data: [string, string, string] };
    const ct = Buffer.from(parsed.data[1], 'base64');
    ct[0] = ct[0]! ^ 1;
    parsed.data[1] = ct.toString('base64');
    expect(codeOf(() => openSealed(kek, 'keys/root.key.pem', JSON.stringify(parsed)))).toBe('STATE_KEK_INVALID');
  });
});

describe('KEK envelope during a KEK rotation', () => {
  const secret = Buffer.from('key material');

  it('opens a value sealed under a previous KEK and says which key opened it', () => {
    const [current, previous, older] = [randomBytes(32), randomBytes(32), randomBytes(32)];
    const sealed = seal(previous, 'n', secret);
    const opened = openWithAny([current, older, previous], 'n', sealed);
    expect(opened.plain.equals(secret)).toBe(true);
    expect(opened.index).toBe(2);
    expect(openWithAny([current, previous], 'n', seal(current, 'n', secret)).index).toBe(0);
  });

  it('refuses when no key given opens it, and an altered value even though a key opens its data key', () => {
    const kek = randomBytes(32);
    const sealed = seal(kek, 'n', secret);
    expect(codeOf(() => openWithAny([randomBytes(32), randomBytes(32)], 'n', sealed))).toBe('STATE_KEK_INVALID');
    const parsed = JSON.parse(sealed) as { data: [string, string, string] };
    parsed.data[2] = Buffer.alloc(16).toString('base64');
    expect(() => openWithAny([randomBytes(32), kek], 'n', JSON.stringify(parsed))).toThrow(/secret "n" was altered/);
    expect(() => openWithAny([kek], 'n', '{"v":2}')).toThrow(/not a sealed value: unsupported envelope version 2/);
  });
});

describe('loadPreviousKeks', () => {
  it('reads one base64 key per line from a file, or a comma-separated list from the environment', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mw-kek-'));
    dirs.push(dir);
    const [a, b] = [randomBytes(32), randomBytes(32)];
    writeFileSync(path.join(dir, 'previous'), `${a.toString('base64')}\n\n${b.toString('base64')}\n`);
    expect(loadPreviousKeks({ file: path.join(dir, 'previous') }).map((k) => k.toString('hex'))).toEqual([a, b].map((k) => k.toString('hex')));
    expect(loadPreviousKeks({ env: `${a.toString('base64')}, ${b.toString('base64')}` }).map((k) => k.toString('hex'))).toEqual([a, b].map((k) => k.toString('hex')));
    expect(loadPreviousKeks({})).toEqual([]);
  });

  it('names the line or the position of a key that is not 32 base64 bytes', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mw-kek-'));
    dirs.push(dir);
    writeFileSync(path.join(dir, 'previous'), `${randomBytes(32).toString('base64')}\n\nshort\n`);
    expect(() => loadPreviousKeks({ file: path.join(dir, 'previous') })).toThrow(/previous:3: the key-encryption key must be 32 bytes/);
    expect(() => loadPreviousKeks({ env: `${randomBytes(32).toString('base64')},${randomBytes(8).toString('base64')}` })).toThrow(/MESHWARD_PREVIOUS_KEK \(key 2\)/);
  });
});

describe('loadKek', () => {
  it('reads 32 base64 bytes from a file or the environment', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mw-kek-'));
    dirs.push(dir);
    const key = randomBytes(32);
    writeFileSync(path.join(dir, 'kek'), key.toString('base64') + '\n');
    expect(loadKek({ file: path.join(dir, 'kek') })?.equals(key)).toBe(true);
    expect(loadKek({ env: key.toString('base64') })?.equals(key)).toBe(true);
    expect(loadKek({})).toBeUndefined();
  });

  it('refuses a key of the wrong length, text that is not base64, and a missing file', () => {
    expect(codeOf(() => loadKek({ env: randomBytes(16).toString('base64') }))).toBe('STATE_KEK_INVALID');
    expect(codeOf(() => loadKek({ env: 'not base64 at all!' }))).toBe('STATE_KEK_INVALID');
    expect(codeOf(() => loadKek({ file: '/nonexistent/kek' }))).toBe('STATE_KEK_INVALID');
  });
});

describe('serve with a database URL', () => {
  it('refuses to start without a key-encryption key, saying how to give one (exit 78)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mw-kek-serve-'));
    dirs.push(dir);
    const err: string[] = [];
    const code = await runCli(['serve', '--config', 'policies', '--data', path.join(dir, 'data'), '--database-url', 'postgres://nobody@127.0.0.1:1/none', '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0'], { stdout: () => {}, stderr: (t) => err.push(t), env: {}, cwd: process.cwd() });
    expect(code).toBe(78);
    expect(err.join('')).toMatch(/--kek-file FILE or MESHWARD_KEK/);
  });

  it('refuses to start while PostgreSQL is unreachable, saying where (exit 69)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mw-kek-serve-'));
    dirs.push(dir);
    const err: string[] = [];
    const code = await runCli(['serve', '--config', 'policies', '--data', path.join(dir, 'data'), '--database-url', 'postgres://nobody:secret@127.0.0.1:1/none', '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0'], { stdout: () => {}, stderr: (t) => err.push(t), env: { MESHWARD_KEK: randomBytes(32).toString('base64') }, cwd: process.cwd() });
    expect(code).toBe(69);
    expect(err.join('')).toMatch(/cannot open the shared state in postgres:\/\/nobody:\*\*\*@127\.0\.0\.1:1\/none/);
    expect(err.join('')).not.toContain('secret');
  });

  it('refuses a KEK of the wrong length given to serve (exit 78)', async () => {
    const code = await runCli(['serve', '--database-url', 'postgres://nobody@127.0.0.1:1/none'], { stdout: () => {}, stderr: () => {}, env: { MESHWARD_KEK: 'c2hvcnQ=' }, cwd: process.cwd() });
    expect(code).toBe(78);
  });
});
