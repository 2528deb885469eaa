#!/usr/bin/env node
/**
 * Builds the native P-256 CSR verifier (src/ca/native/p256_verify.c) with the node-gyp npm bundles.
 * Run by the `install` script (so by `npm install` / `npm ci` of this repository, and when the
 * package is installed from the registry, which ships the C source) and by `npm run build:native`.
 *
 * It never fails the install: without a C compiler, make, python3 or node's headers it prints one
 * warning and meshward checks CSR signatures with node:crypto (same verdicts, ≈ 2× the CPU per CSR).
 * MESHWARD_NATIVE_CRYPTO=0 skips the build; `--check` only checks the built addon (CI, the image).
 * Plain JavaScript: it runs before TypeScript is built.
 */
import { spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const NATIVE_DIR = fileURLToPath(new URL('../src/ca/native/', import.meta.url));
const GYP_OUTPUT = path.join(NATIVE_DIR, 'build');
/**
 * Where src/ca/p256-verify.ts loads it from: build/ holds compiled native code as dist/ holds the
 * compiled TypeScript; the same relative path from src/ca/ and dist/ca/, and outside src/.
 */
const ADDON = fileURLToPath(new URL('../build/native/p256_verify.node', import.meta.url));
const LOG = path.join(os.tmpdir(), 'meshward-native-build.log');
const FALLBACK = 'meshward will check CSR signatures with node:crypto (same verdicts, slower)';

function warn(reason) {
  rmSync(GYP_OUTPUT, { recursive: true, force: true });
  rmSync(ADDON, { force: true }); // never leave a stale addon
  console.warn(`meshward: WARNING: native P-256 verifier not built (${reason}); ${FALLBACK}. Rerun with \`npm run build:native\`.`);
}

/** npm sets npm_config_node_gyp for scripts; outside npm, the node-gyp of the npm next to node. */
function nodeGyp() {
  const candidates = [process.env.npm_config_node_gyp, path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')];
  return candidates.find((c) => c && existsSync(c));
}

/** node's own headers (include/node, with OpenSSL's): no download from nodejs.org when present. */
function nodeDir() {
  const candidates = [process.env.npm_config_nodedir, path.resolve(path.dirname(process.execPath), '..')];
  return candidates.find((d) => d && existsSync(path.join(d, 'include', 'node', 'common.gypi')));
}

/** The built addon must load and give the right verdicts, or it is not used. */
function selfTest() {
  const { verify } = createRequire(import.meta.url)(ADDON);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const point = publicKey.export({ type: 'spki', format: 'der' }).subarray(-65);
  const message = Buffer.from('meshward native self-test');
  const signature = sign('sha256', message, privateKey);
  const digest = (m) => createHash('sha256').update(m).digest();
  return verify(point, digest(message), signature) === true && verify(point, digest(Buffer.from('other')), signature) === false;
}

/** `--check` (CI, the image): exit 1 unless the addon is built, loads and passes its self-test. */
function check() {
  try {
    if (selfTest()) return console.log(`meshward: native P-256 verifier present (${path.relative(process.cwd(), ADDON)})`);
    console.error('meshward: the native P-256 verifier gives wrong verdicts');
  } catch (err) {
    console.error(`meshward: the native P-256 verifier is not built or does not load (${err.message})`);
  }
  process.exitCode = 1;
}

function main() {
  if (process.argv.includes('--check')) return check();
  if (process.env.MESHWARD_NATIVE_CRYPTO === '0') {
    console.log(`meshward: native P-256 verifier not built (MESHWARD_NATIVE_CRYPTO=0); ${FALLBACK}.`);
    return;
  }
  const gyp = nodeGyp();
  if (!gyp) return warn('node-gyp not found');
  const dir = nodeDir();
  const run = spawnSync(process.execPath, [gyp, 'rebuild', ...(dir ? [`--nodedir=${dir}`] : [])], { cwd: NATIVE_DIR, encoding: 'utf8', timeout: 300_000 });
  writeFileSync(LOG, `${run.stdout ?? ''}${run.stderr ?? ''}${run.error ? String(run.error) : ''}`);
  if (run.status !== 0) return warn(`node-gyp failed, see ${LOG}`);
  mkdirSync(path.dirname(ADDON), { recursive: true });
  copyFileSync(path.join(GYP_OUTPUT, 'Release', 'p256_verify.node'), ADDON);
  rmSync(GYP_OUTPUT, { recursive: true, force: true }); // intermediates; src/ stays sources only
  try {
    if (!selfTest()) return warn('the built addon gives wrong verdicts');
  } catch (err) {
    return warn(`the built addon does not load: ${err.message}`);
  }
  console.log(`meshward: native P-256 verifier built (${path.relative(process.cwd(), ADDON)})`);
}

main();
