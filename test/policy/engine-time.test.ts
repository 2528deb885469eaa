/** The ext_authz Rego adapter reads the time of the check from the caller, not the wall clock. */
import { describe, expect, it } from 'vitest';
import type { ConfigDocument, ConfigSnapshot } from '../../src/config/index.ts';
import { createRegoPolicyEngine } from '../../src/policy/engines.ts';
import type { CompiledPolicy } from '../../src/policy/index.ts';
import { compileRego } from '../../src/policy/rego/index.ts';

const DEADLINE_MODULE = `package envoy.authz

import rego.v1

default allow := false

allow if time.now_ns() < time.parse_rfc3339_ns("2030-01-01T00:00:00Z")
`;

const CLOCK_MODULE = `package envoy.authz

import rego.v1

now_ns := time.now_ns()
`;

async function compile(module: string, entrypoint: string): Promise<CompiledPolicy> {
  const doc = {
    apiVersion: 'meshward.dev/v1',
    kind: 'RegoPolicy',
    metadata: { name: 'deadline', namespace: 'shop' },
    spec: { modules: ['policy.rego'], entrypoint },
    source: { file: 'rego.yaml', line: 1 },
  } as unknown as ConfigDocument;
  const snapshot = { readFile: (_doc: ConfigDocument, ref: string) => (ref === 'policy.rego' ? Buffer.from(module) : undefined) } as unknown as ConfigSnapshot;
  return createRegoPolicyEngine().compile(doc, snapshot);
}

describe('Rego time in the ext_authz adapter', () => {
  it('allows a request checked before the deadline and denies one checked at it, by the supplied clock', async () => {
    const policy = await compile(DEADLINE_MODULE, 'envoy/authz/allow');
    expect(policy.evaluate({}, { now: Date.parse('2029-12-31T23:59:59.999Z') })).toBe(true);
    expect(policy.evaluate({}, { now: Date.parse('2030-01-01T00:00:00Z') })).toBe(false);
  });

  it('gives time.now_ns() the supplied milliseconds as nanoseconds, fractions to the microsecond', async () => {
    const policy = await compile(CLOCK_MODULE, 'envoy/authz/now_ns');
    expect(policy.evaluate({}, { now: 1_700_000_000_123 })).toBe(1_700_000_000_123_000_000n);
    expect(policy.evaluate({}, { now: 1_700_000_000_123.5 })).toBe(1_700_000_000_123_500_000n);
  });

  it('reads the wall clock when the caller supplies no time', async () => {
    const policy = await compile(CLOCK_MODULE, 'envoy/authz/now_ns');
    const before = BigInt(Date.now()) * 1_000_000n;
    const now = policy.evaluate({}) as bigint;
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(BigInt(Date.now()) * 1_000_000n);
    expect(policy.evaluate({}, {})).toBeGreaterThanOrEqual(before);
  });

  it('lets an explicit nanosecond time win over nowMs in direct Rego evaluation', () => {
    const run = compileRego({ 'p.rego': CLOCK_MODULE }).entrypoint('envoy/authz/now_ns');
    expect(run({}, undefined, { nowMs: 1_000 })).toBe(1_000_000_000);
    expect(run({}, undefined, { nowMs: 1_000, now: 5n })).toBe(5);
  });
});
