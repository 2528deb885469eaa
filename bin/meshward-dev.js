#!/usr/bin/env node
// Development entry: runs the TypeScript sources in src/ through tsx's loader (no build step), so
// `npm run dev` and the tests exercise the current sources, never a stale dist/. tsx compiles into
// a cache under the temp directory: use bin/meshward.js (dist/) where the filesystem is read-only.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
