import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/audit/index.ts';
import { SqliteAuditStore } from '../../src/audit/sqlite.ts';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'crash-child.ts');

describe('audit durability across a crash', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  it.each(['worker', 'in-thread'])('loses no acknowledged record when the process is killed with SIGKILL, and the chain still verifies (%s writer)', async (writer) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-audit-crash-'));
    dirs.push(dir);
    const file = path.join(dir, 'audit.db');
    const count = 3000;
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, file, String(count), writer], { stdio: ['ignore', 'pipe', 'inherit'] });
    const durableSeq = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const m = /durable (\d+)\n/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.on('exit', (code) => reject(new Error(`child exited early with ${code}`)));
    });
    // Let in-flight batches start, then kill without any flush or shutdown.
    await new Promise((r) => setTimeout(r, 30));
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGKILL');
    await exited;

    const store = new SqliteAuditStore({ file });
    try {
      expect(durableSeq).toBeGreaterThanOrEqual(count);
      const acked = new Set<string>();
      for (let after = 0; ;) {
        const rows = await store.scan(after, 5000);
        if (rows.length === 0) break;
        for (const r of rows) if (r.decisionId.startsWith('acked-')) acked.add(r.decisionId);
        after = rows.at(-1)!.seq;
      }
      expect(acked.size).toBe(count);
      const report = await verifyChain(store);
      expect(report.ok).toBe(true);
      expect(report.lastSeq).toBeGreaterThanOrEqual(durableSeq);
    } finally {
      await store.close();
    }
  });
});
