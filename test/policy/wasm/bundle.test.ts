import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadWasmBundle, loadWasmBundleFile, readBundle, WasmPolicyError } from '../../../src/policy/wasm/index.ts';
import { compileWat, packBundle } from './fixture.ts';
import { toJSON } from '../../../src/policy/rego/index.ts';

let wasm: Uint8Array;
const manifest = JSON.stringify({ revision: 'r1', roots: ['authz'], wasm: [{ entrypoint: 'authz/allow', module: '/policy.wasm' }] });

beforeAll(async () => {
  wasm = await compileWat();
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(WasmPolicyError);
    return (err as WasmPolicyError).code;
  }
  throw new Error('expected a rejection');
}

describe('OPA wasm bundles', () => {
  it('allows an input the wasm policy accepts and denies one it rejects', async () => {
    const policy = await loadWasmBundle(await packBundle({ '/policy.wasm': wasm, '/data.json': '{}', '/.manifest': manifest }));
    expect(policy.entrypoints).toEqual(['authz/allow', 'authz/data', 'authz/hash', 'authz/now', 'authz/undefined']);
    expect(policy.evaluate('authz/allow', { user: 'alice', role: 'admin' })).toEqual([{ expressions: [true], bindings: {} }]);
    expect(policy.evaluate('authz/allow', { user: 'bob', role: 'viewer' })).toEqual([{ expressions: [false], bindings: {} }]);
    expect(policy.evaluate('authz/undefined', {})).toEqual([]);
  });

  it('serves host built-ins the module calls with meshward implementations', async () => {
    const policy = await loadWasmBundle(await packBundle({ '/policy.wasm': wasm }));
    expect(policy.evaluate('authz/hash', 'abc')).toEqual([
      { expressions: ['ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'], bindings: {} },
    ]);
    // A built-in error (sha256 of a number is a type error) makes the call undefined, as in OPA.
    expect(policy.evaluate('authz/hash', 42)).toEqual([]);
  });

  it('answers time.now_ns() with the decision time it is given, not the wall clock', async () => {
    const policy = await loadWasmBundle(await packBundle({ '/policy.wasm': wasm }));
    const now = policy.entrypoint('authz/now');
    const decisionTime = Date.UTC(2030, 5, 1, 12, 0, 0, 123);
    expect(toJSON(now(undefined, undefined, decisionTime)!)).toBe(Number(BigInt(decisionTime) * 1_000_000n));
    // Without one, the wall clock at the call.
    const before = Date.now();
    // ns as a double: round back to whole ms (ns / 1e6 can land a hair above the integer).
    const wall = Math.round(Number(toJSON(now()!)) / 1e6);
    expect(wall).toBeGreaterThanOrEqual(before);
    expect(wall).toBeLessThanOrEqual(Date.now());
  });

  it('loads data.json files at their directory paths and lets evaluate replace the data', async () => {
    const archive = await packBundle({
      '/policy.wasm': wasm,
      '/data.json': '{"top": 1}',
      '/teams/payments/data.json': '{"owners": ["alice"]}',
      '/.manifest': manifest,
    });
    const bundle = await readBundle(archive);
    expect(bundle.data).toEqual({ top: 1, teams: { payments: { owners: ['alice'] } } });
    expect(bundle.manifestEntrypoints).toEqual(['authz/allow']);
    const policy = await loadWasmBundle(archive);
    expect(policy.evaluate('authz/data')).toEqual([{ expressions: [bundle.data], bindings: {} }]);
    const replacement = { teams: { payments: { owners: ['bob'] } } };
    expect(policy.evaluate('authz/data', undefined, replacement)).toEqual([{ expressions: [replacement], bindings: {} }]);
    expect(policy.evaluate('authz/data')).toEqual([{ expressions: [bundle.data], bindings: {} }]);
  });

  it('rejects a bundle without policy.wasm', async () => {
    expect(await codeOf(readBundle(await packBundle({ '/data.json': '{}' })))).toBe('WASM_POLICY_MISSING');
  });

  it('rejects a corrupt archive and a gzip that is not a tar', async () => {
    expect(await codeOf(readBundle(Buffer.from('definitely not gzip')))).toBe('WASM_BUNDLE_INVALID');
    const archive = await packBundle({ '/policy.wasm': wasm });
    expect(await codeOf(readBundle(archive.subarray(0, archive.length / 2)))).toBe('WASM_BUNDLE_INVALID');
    expect(await codeOf(readBundle(gzipSync(Buffer.from('x'.repeat(700)))))).toBe('WASM_BUNDLE_INVALID');
  });

  it('rejects malformed data.json and an oversized archive', async () => {
    expect(await codeOf(readBundle(await packBundle({ '/policy.wasm': wasm, '/data.json': '{' })))).toBe('WASM_BUNDLE_INVALID');
    const big = await packBundle({ '/policy.wasm': wasm, '/data.json': JSON.stringify({ pad: 'x'.repeat(100_000) }) });
    expect(await codeOf(readBundle(big, { maxBytes: 10_000 }))).toBe('WASM_BUNDLE_INVALID');
  });

  it('rejects a module that is not an OPA policy', async () => {
    const notOpa = await compileWat('(module (func (export "f")))');
    expect(await codeOf(loadWasmBundle(await packBundle({ '/policy.wasm': notOpa })))).toBe('WASM_MODULE_INVALID');
  });

  it('names the available entrypoints when asked for an unknown one', async () => {
    const policy = await loadWasmBundle(await packBundle({ '/policy.wasm': wasm }));
    let err: unknown;
    try {
      policy.evaluate('authz/deny', {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WasmPolicyError);
    expect((err as WasmPolicyError).code).toBe('WASM_ENTRYPOINT_UNKNOWN');
    expect((err as Error).message).toContain('authz/allow');
  });
});

describe('OPA wasm bundle files', () => {
  it('loads a bundle from disk and reports a missing file with the bundle code', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-'));
    try {
      const file = path.join(dir, 'bundle.tar.gz');
      fs.writeFileSync(file, await packBundle({ '/policy.wasm': wasm }), { mode: 0o600 });
      const policy = await loadWasmBundleFile(file);
      expect(policy.evaluate('authz/allow', { role: 'admin' })).toEqual([{ expressions: [true], bindings: {} }]);
      expect(await codeOf(loadWasmBundleFile(path.join(dir, 'missing.tar.gz')))).toBe('WASM_BUNDLE_INVALID');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
