/**
 * The build in dist/ (what bin/meshward.js, `npm start` and the image run) works on plain Node with
 * no writable temp directory: nothing compiles at run time, so a read-only root filesystem works.
 * dist/ comes from `npm run build` (run by `npm install`/`npm ci` through `prepare`); these tests
 * skip with a message when it is absent, and the other CLI tests run the sources (bin/meshward-dev.js).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const DIST_MAIN = 'dist/main.js';
const built = existsSync(DIST_MAIN);
if (!built) console.warn(`test/deploy/build.test.ts: skipped, ${DIST_MAIN} is absent (run \`npm run build\`)`);

const scratch = mkdtempSync(path.join(tmpdir(), 'meshward-build-'));
// A file where the temp directory should be: mkdir under it fails even as root (tsx caches there).
const notADir = path.join(scratch, 'not-a-dir');
writeFileSync(notADir, '');
const env = { ...process.env, TMPDIR: path.join(notADir, 'tmp'), NODE_OPTIONS: '' };
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function runBin(args: string[]) {
  return spawnSync(process.execPath, ['bin/meshward.js', ...args], { env, encoding: 'utf8', timeout: 60_000 });
}

describe.skipIf(!built)('the built CLI (dist/)', () => {
  it('prints its version without a writable temp directory', () => {
    const out = runBin(['version']);
    expect(out.stderr).toBe('');
    expect(out.status).toBe(0);
    expect(out.stdout).toMatch(/^meshward \d+\.\d+\.\d+/);
  });

  it('validates the sample configuration (config load runs in a worker thread from dist/)', () => {
    const out = runBin(['config', 'validate', 'policies']);
    expect(out.stdout + out.stderr).toMatch(/policies: valid/);
    expect(out.status).toBe(0);
  });

  it('refuses an invalid configuration with exit 1 and the file and line', () => {
    const dir = path.join(scratch, 'bad');
    rmSync(dir, { recursive: true, force: true });
    spawnSync('mkdir', ['-p', dir]);
    writeFileSync(path.join(dir, 'mesh.yaml'), 'apiVersion: meshward.io/v1\nkind: Mesh\nmetadata: { name: mesh }\nspec:\n  trustDomain: "not a domain"\n');
    const out = runBin(['config', 'validate', dir]);
    expect(out.status).toBe(1);
    expect(out.stdout + out.stderr).toMatch(/mesh\.yaml:5: spec\.trustDomain/);
  });

  it('imports as a library on plain Node through package.json exports (dist/index.js)', () => {
    const script = `import { compileRego } from 'meshward';
const allow = compileRego({ 'a.rego': 'package x\\nallow if input.user == "admin"' }).entrypoint('x/allow');
console.log(JSON.stringify([allow({ user: 'admin' }), allow({ user: 'guest' }) ?? null]));`;
    const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8', timeout: 60_000 });
    expect(out.stderr).toBe('');
    expect(out.stdout.trim()).toBe('[true,null]');
  });

  it('serves until ready and stops on SIGTERM (policy, audit and config workers load from dist/)', async () => {
    const data = path.join(scratch, 'data');
    const child = spawn(process.execPath, ['bin/meshward.js', 'serve', '--config', 'policies', '--data', data, '--no-watch', '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (b: Buffer) => { log += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { log += b.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const ready = await new Promise<boolean>((resolve) => {
      const t = setInterval(() => { if (log.includes('"msg":"meshward serving"')) { clearInterval(t); resolve(true); } }, 100);
      void exited.then(() => { clearInterval(t); resolve(false); });
    });
    expect(ready, log).toBe(true);
    child.kill('SIGTERM');
    expect(await exited, log).toBe(0);
    expect(log).not.toMatch(/tsx|ENOTDIR|EACCES/);
  }, 60_000);
});

describe('bin/meshward.js without a build', () => {
  it('refuses to start with exit 70 and says how to build, instead of a module-not-found trace', () => {
    const tree = path.join(scratch, 'unbuilt');
    spawnSync('mkdir', ['-p', path.join(tree, 'bin')]);
    writeFileSync(path.join(tree, 'bin', 'meshward.js'), readFileSync('bin/meshward.js'));
    const out = spawnSync(process.execPath, [path.join(tree, 'bin', 'meshward.js'), 'version'], { encoding: 'utf8', timeout: 30_000 });
    expect(out.status).toBe(70);
    expect(out.stderr).toMatch(/dist\/ is not built: run `npm run build`/);
  });
});

describe('the npm package', () => {
  it('ships dist/, bin/meshward.js, proto/, the sample policies and the native verifier\'s C source, and no other sources, tests, benchmarks, build output or CI files', () => {
    const out = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8', timeout: 120_000 });
    expect(out.status, out.stderr).toBe(0);
    const files = (JSON.parse(out.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    expect(files).toContain('bin/meshward.js');
    expect(files).toContain('proto/istio/ca.proto');
    expect(files).toContain('policies/rego/payments.rego');
    if (built) expect(files).toContain('dist/main.js');
    // The native CSR verifier's C source and build script: the install script builds it (scripts/build-native.mjs).
    const nativeSources = ['src/ca/native/p256_verify.c', 'src/ca/native/binding.gyp', 'scripts/build-native.mjs'];
    for (const f of nativeSources) expect(files).toContain(f);
    const unwanted = files.filter((f) => !nativeSources.includes(f) && (/^(src|test|bench|scripts|deploy|\.ci|docs|build)\//.test(f) || f === 'bin/meshward-dev.js' || f.endsWith('.ts') && !f.endsWith('.d.ts')));
    expect(unwanted).toEqual([]);
  }, 120_000);
});
