/**
 * `npm run bench [name...]`: runs every bench/*.bench.ts (or the named ones) one after another in
 * its own process, so one benchmark's heap and JIT state do not colour the next.
 * Each benchmark measures its own baseline in the same run and prints ratios against it.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(dir).filter((f) => f.endsWith('.bench.ts')).filter((f) => wanted.length === 0 || wanted.some((w) => f.startsWith(w))).sort();
let failed = 0;
for (const f of files) {
  console.log(`\n=== ${f} ===`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--expose-gc', path.join(dir, f)], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.log(`${f} failed with exit code ${r.status}`);
  }
}
process.exitCode = failed > 0 ? 1 : 0;
