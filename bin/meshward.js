#!/usr/bin/env node
// Runs the compiled build in dist/ on plain Node: no run-time compiler, nothing written outside the
// data directory, so a read-only root filesystem works. `npm install` builds dist/ (the `prepare`
// script); during development, bin/meshward-dev.js runs the TypeScript sources through tsx.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('meshward: dist/ is not built: run `npm run build` (or `npm install`), or use bin/meshward-dev.js to run the sources\n');
  process.exit(70);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
