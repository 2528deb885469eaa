/**
 * The published package used as a library: a separate project installs the packed tarball and
 * imports it from plain Node 20 (no tsx), as `npm install meshward` would.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../../..');
const work = mkdtempSync(join(tmpdir(), 'meshward-pkg-'));

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
}

describe('the packed package from plain Node', () => {
  let consumer: string;
  beforeAll(() => {
    // Stage the package as `npm run build` leaves it (dist/ compiled into the stage, not the tree).
    const stage = join(work, 'stage');
    mkdirSync(stage);
    try {
      run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', join(stage, 'dist')], root);
    } catch {
      // Type errors elsewhere do not stop emission; the import below is the check.
    }
    for (const f of ['package.json', 'bin', 'proto', 'policies', 'README.md', 'scripts/build-native.mjs', 'src/ca/native/p256_verify.c', 'src/ca/native/binding.gyp']) cpSync(join(root, f), join(stage, f), { recursive: true });
    run('npm', ['pack', '--ignore-scripts', '--pack-destination', work], stage);
    const tgz = readdirSync(work).find((f) => f.endsWith('.tgz'))!;
    // Install: unpack into node_modules and link the project's dependencies (no network).
    consumer = join(work, 'consumer');
    const pkg = join(consumer, 'node_modules', 'meshward');
    mkdirSync(pkg, { recursive: true });
    run('tar', ['xzf', join(work, tgz), '-C', pkg, '--strip-components=1'], work);
    symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'));
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));
  }, 180_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('compiles a Rego module, evaluates it and JSON.stringify prints the result', () => {
    const script = `
      import { compileRego, toJSON, fromJSON } from 'meshward';
      const p = compileRego({ 'a.rego': 'package a\\nimport rego.v1\\nroles contains r if some r in input.roles\\nbig := 12345678901234567890\\nallow if "admin" in roles\\n' });
      const out = { allow: p.entrypoint('a/allow')({ roles: ['admin', 'dev', 'admin'] }), doc: p.evaluate('data.a', { roles: ['x'] })[0].expressions[0], conv: toJSON(fromJSON({ n: 1n })) };
      process.stdout.write(JSON.stringify(out));
    `;
    writeFileSync(join(consumer, 'main.mjs'), script);
    const stdout = run(process.execPath, ['main.mjs'], consumer);
    expect(JSON.parse(stdout)).toEqual({ allow: true, doc: { roles: ['x'], big: '12345678901234567890' }, conv: { n: 1 } });
  });

  it('builds the native CSR verifier from its own files, as its install script does on `npm install meshward`', () => {
    const pkg = join(consumer, 'node_modules', 'meshward');
    // Never fails an install: without a compiler it warns, and then --check below fails.
    run(process.execPath, ['scripts/build-native.mjs'], pkg);
    // Where this checkout could build it, the package can too (CI checks that it can).
    if (existsSync(join(root, 'build/native/p256_verify.node'))) {
      expect(run(process.execPath, ['scripts/build-native.mjs', '--check'], pkg)).toMatch(/native P-256 verifier/);
      expect(existsSync(join(pkg, 'build/native/p256_verify.node'))).toBe(true);
    }
  }, 180_000);

  it('ships no tests, benchmarks or dev entry point', () => {
    const files = run('tar', ['tzf', join(work, readdirSync(work).find((f) => f.endsWith('.tgz'))!)], work).split('\n');
    expect(files.some((f) => f.startsWith('package/test/') || f.startsWith('package/bench/') || f.includes('meshward-dev'))).toBe(false);
    expect(files).toContain('package/dist/index.js');
  });
});
