/**
 * The hand-written ext_authz codec (src/authz/codec.ts) against proto-loader's protobufjs path, in
 * the same process and interleaved round by round: decoding the benchmark's real CheckRequest
 * (bench/authz-servers.ts `checkRequestBody`, with a real ES256 token), and encoding a realistic
 * allow response (token removed, JWT payload header, decision id) and a deny response.
 *
 *   node --import tsx bench/codec.bench.ts        (a few seconds)
 *
 * Prints the median CPU ns/op over the rounds for each side and the speed-up. The machine is
 * shared: read the ratios, not the absolutes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { decodeCheckRequest, encodeCheckResponse } from '../src/authz/codec.ts';
import { emptyMutations } from '../src/authz/decision.ts';
import { authorizationServiceDefinition } from '../src/authz/proto.ts';
import { buildCheckResponse } from '../src/authz/response.ts';
import { checkRequestBody, pipelineConfig } from './authz-servers.ts';

const ROUNDS = 25;
const ROUND_MS = 20;

interface Case { name: string; ours: () => unknown; theirs: () => unknown }

let sink: unknown;

/** Calls per round so that one round of `fn` takes about ROUND_MS. */
function calibrate(fn: () => unknown): number {
  let n = 100;
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) sink = fn();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ms > ROUND_MS / 4) return Math.max(100, Math.round((n * ROUND_MS) / ms));
    n *= 4;
  }
}

/** CPU ns per call (the process's user + system time: the machine is shared, wall time is not ours). */
function round(fn: () => unknown, n: number): number {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) sink = fn();
  const c = process.cpuUsage(c0);
  return ((c.user + c.system) * 1000) / n;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

function measure(c: Case): { ours: number; theirs: number } {
  const nOurs = calibrate(c.ours);
  const nTheirs = calibrate(c.theirs);
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) {
      ours.push(round(c.ours, nOurs));
      theirs.push(round(c.theirs, nTheirs));
    } else {
      theirs.push(round(c.theirs, nTheirs));
      ours.push(round(c.ours, nOurs));
    }
  }
  return { ours: median(ours), theirs: median(theirs) };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mw-bench-codec-'));
  const { token } = await pipelineConfig(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
  const check = authorizationServiceDefinition().Check!;
  const request = checkRequestBody(token);

  const payload = Buffer.from(JSON.stringify({ iss: 'https://auth.bench.example', sub: 'alice', aud: 'shop', groups: ['admin'], iat: 1760000000, exp: 1760007200 })).toString('base64url');
  const allow = buildCheckResponse({ outcome: 'allow', reason: 'allowed by shop/allow-47' }, {
    ...emptyMutations(),
    requestHeaders: [{ name: 'x-jwt-payload', value: payload }],
    requestHeadersToRemove: ['authorization'],
  }, '01J9Z8Q4X7RZ5V2M3N4P5Q6R7S');
  const deny = buildCheckResponse({ outcome: 'deny', reason: 'denied by meshward-system/deny-debug' }, emptyMutations(), '01J9Z8Q4X7RZ5V2M3N4P5Q6R7T');

  // Never time a codec that is wrong.
  if (!isDeepStrictEqual(decodeCheckRequest(request), check.requestDeserialize(request))) throw new Error('decode differs from proto-loader');
  for (const r of [allow, deny]) if (!encodeCheckResponse(r).equals(check.responseSerialize(r))) throw new Error('encode differs from proto-loader');

  const cases: Case[] = [
    { name: `decode CheckRequest (${request.length} B)`, ours: () => decodeCheckRequest(request), theirs: () => check.requestDeserialize(request) },
    { name: `encode allow CheckResponse (${check.responseSerialize(allow).length} B)`, ours: () => encodeCheckResponse(allow), theirs: () => check.responseSerialize(allow) },
    { name: `encode deny CheckResponse (${check.responseSerialize(deny).length} B)`, ours: () => encodeCheckResponse(deny), theirs: () => check.responseSerialize(deny) },
  ];
  console.log(`median CPU time per op over ${ROUNDS} interleaved rounds of ~${ROUND_MS} ms each`);
  console.log(`${'case'.padEnd(40)} ${'proto-loader'.padStart(14)} ${'hand-written'.padStart(14)} ${'speed-up'.padStart(9)}`);
  for (const c of cases) {
    const { ours, theirs } = measure(c);
    console.log(`${c.name.padEnd(40)} ${`${theirs.toFixed(0)} ns/op`.padStart(14)} ${`${ours.toFixed(0)} ns/op`.padStart(14)} ${`${(theirs / ours).toFixed(2)}x`.padStart(9)}`);
  }
  if (sink === Symbol.for('never')) console.log(sink);
}

await main();
