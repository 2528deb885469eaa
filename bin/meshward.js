#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx's loader, so `npm install && npm start`
// needs no build step. tsx transpiles once and caches; runtime code is plain V8 after that.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
