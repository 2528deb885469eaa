/**
 * Cost of the built-ins an authorization policy calls per request, and of an OPA wasm policy
 * evaluation, each against a hand-written JavaScript baseline doing the same work, measured in the
 * same run (the machine is shared and noisy: read the ratios, not the absolute numbers).
 *
 *   node --import tsx bench/rego-builtins.bench.ts
 */
import { createHmac } from 'node:crypto';
import { BUILTINS, type BuiltinContext } from '../src/policy/rego/builtins/index.ts';
import type { Value } from '../src/policy/rego/value.ts';
import { loadWasmBundle } from '../src/policy/wasm/index.ts';
import { compileWat, packBundle } from '../test/policy/wasm/fixture.ts';

const ctx: BuiltinContext = { now: () => 1_700_000_000_000_000_000n, strict: false, print: () => {}, cache: new Map() };

function fn(name: string): (...args: Value[]) => Value | undefined {
  const def = BUILTINS.get(name);
  if (!def) throw new Error(`no built-in ${name}`);
  return (...args) => def.fn(args, ctx);
}

let sink: unknown;

/** ns per call: median of 5 timed rounds after warm-up, each round sized to ~40 ms. */
function measure(f: () => unknown): number {
  for (let i = 0; i < 20_000; i++) sink = f();
  let n = 1000;
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) sink = f();
    const dt = Number(process.hrtime.bigint() - t0);
    if (dt > 40_000_000 || n > 50_000_000) break;
    n *= 4;
  }
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) sink = f();
    rounds.push(Number(process.hrtime.bigint() - t0) / n);
  }
  return rounds.sort((a, b) => a - b)[2]!;
}

interface Row {
  name: string;
  builtin: number;
  baseline: number;
}

const rows: Row[] = [];
function compare(name: string, builtin: () => unknown, baseline: () => unknown): void {
  rows.push({ name, builtin: measure(builtin), baseline: measure(baseline) });
}

const roles = ['viewer', 'editor', 'billing', 'support', 'ops', 'sre', 'security', 'audit', 'admin', 'owner'];
const path = '/api/v1/payments/12345/refunds';
const secret = 'bench-secret';
const hs = fn('io.jwt.encode_sign')({ alg: 'HS256', typ: 'JWT' }, { sub: 'alice', iss: 'mesh', exp: 1_800_000_000 }, {
  kty: 'oct',
  k: Buffer.from(secret).toString('base64url'),
}) as string;

const equal = fn('equal');
const method = process.argv.includes('--post') ? 'POST' : 'GET';
const wanted = ['G', 'E', 'T'].join('');
compare('equal (strings)', () => equal(method, wanted), () => method === wanted);
const member = fn('internal.member_2');
compare('x in array (10 strings)', () => member('admin', roles), () => roles.includes('admin'));
const startswith = fn('startswith');
compare('startswith', () => startswith(path, '/api/v1/'), () => path.startsWith('/api/v1/'));
const regexMatch = fn('regex.match');
const re = /^\/api\/v1\/payments\/[0-9]+\/refunds$/u;
compare('regex.match (cached RE2→JS)', () => regexMatch('^/api/v1/payments/[0-9]+/refunds$', path), () => re.test(path));
const glob = fn('glob.match');
const globRe = /^\/api\/[^/]*\/payments\/[\s\S]*$/u;
compare('glob.match (cached)', () => glob('/api/*/payments/**', ['/'], path), () => globRe.test(path));
const cidr = fn('net.cidr_contains');
compare(
  'net.cidr_contains (IPv4)',
  () => cidr('10.0.0.0/8', '10.1.2.3'),
  () => {
    const p = '10.1.2.3'.split('.').map(Number);
    return ((((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0) & 0xff000000) >>> 0 === 0x0a000000;
  },
);
const split = fn('split');
compare('split', () => split(path, '/'), () => path.split('/'));
const sprintf = fn('sprintf');
compare('sprintf("%s:%d")', () => sprintf('%s:%d', ['svc', 8080]), () => `svc:${8080}`);
const decodeVerify = fn('io.jwt.decode_verify');
compare(
  'io.jwt.decode_verify (HS256)',
  () => decodeVerify(hs, { secret }),
  () => {
    const [h, p, s] = hs.split('.');
    const ok = createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url') === s;
    return ok && JSON.parse(Buffer.from(p!, 'base64url').toString());
  },
);

const policy = await loadWasmBundle(await packBundle({ '/policy.wasm': await compileWat() }));
const allow = policy.entrypoint('authz/allow');
const input = { user: 'alice', role: 'admin', path };
compare('wasm policy evaluate (opa-wasm)', () => allow(input), () => JSON.stringify(input).includes('"role":"admin"'));

console.log('| operation | built-in ns/op | baseline ns/op | ratio |');
console.log('|---|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.name} | ${r.builtin.toFixed(0)} | ${r.baseline.toFixed(1)} | ${(r.builtin / r.baseline).toFixed(1)}× |`);
if (sink === Symbol.for('never')) console.log('');
