/**
 * The operator's reproduction, end to end: `meshward serve` answers checks, the sqlite3 shell (or a
 * script) counts the records while it runs, more checks are answered, the server is killed with
 * SIGKILL. Every answered decision must be in the chain afterwards.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { sqliteFile } from '../../src/audit/index.ts';
import { runCli } from '../../src/cli/index.ts';
import { envoyService } from '../../src/lib/protos.ts';
import { checkRequest } from '../authz/helpers.ts';
import { freePort } from '../helpers/ports.ts';
import { posixLocksOf, readAsSecondClients } from '../helpers/sqlite-writer.ts';

const count = (file: string) => {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM audit_records').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

async function until(ok: () => boolean, ms: number): Promise<void> {
  for (const end = Date.now() + ms; !ok() && Date.now() < end;) await new Promise((r) => setTimeout(r, 50));
}

describe('meshward serve with a second reader of audit.db', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  it('keeps every answered decision when the sqlite3 shell reads the database while serve runs, then serve is killed', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-serve-readers-'));
    dirs.push(dir);
    const dataDir = path.join(dir, 'data');
    const file = sqliteFile(dataDir);
    const grpc = `127.0.0.1:${await freePort()}`;
    const child = spawn(process.execPath, ['bin/meshward-dev.js', 'serve', '--config', 'policies', '--data', dataDir, '--no-watch', '--grpc-addr', grpc, '--http-addr', `127.0.0.1:${await freePort()}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise((r) => child.on('exit', r));
    const Client = envoyService('envoy.service.auth.v3.Authorization');
    const client = new Client(grpc, credentials.createInsecure()) as unknown as { Check(r: object, cb: (err: ServiceError | null) => void): void; close(): void };
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (c: Buffer) => { out += c.toString(); if (out.includes('"meshward serving"')) resolve(); });
        child.on('exit', (code) => reject(new Error(`serve exited with ${code}`)));
      });
      const send = (n: number) => Promise.all(Array.from({ length: n }, () => new Promise<void>((resolve, reject) => {
        client.Check(checkRequest(), (err) => (err ? reject(err) : resolve()));
      })));
      await send(200);
      await until(() => count(file) >= 200, 5000);
      expect(posixLocksOf(child.pid!, file).length).toBeGreaterThan(0);
      for (const n of readAsSecondClients(file, 'audit_records')) expect(n).toBe(200);
      await send(300);
      await until(() => count(file) >= 500, 3000);
      // The records of the 500 answered checks are committed ~10 ms after each answer.
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      client.close();
      child.kill('SIGKILL');
      await exited;
    }
    const out: string[] = [];
    const code = await runCli(['audit', 'verify', '--data', dataDir], { stdout: (t) => out.push(t), stderr: () => {}, env: {}, cwd: dir });
    expect(out.join('')).toMatch(/^audit chain ok: 500 records/);
    expect(code).toBe(0);
  });
});
