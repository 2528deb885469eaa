import { describe, expect, it } from 'vitest';
import { LimitsBackendUnavailableError, LimitsBadRequestError } from '../../src/limits/errors.ts';
import type { LimitBackend } from '../../src/limits/backend.ts';
import { MemoryBackend } from '../../src/limits/memory.ts';
import { RateLimitEngine, counterKey, counterScope } from '../../src/limits/engine.ts';
import { compileRateLimits } from '../../src/limits/policies.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import { engineFor, entries, rateLimitPolicy, snapshotOf } from './helpers.ts';

const POLICY = rateLimitPolicy('api', `  domain: api
  algorithm: fixed-window
  descriptors:
    - key: user
      rate_limit: { unit: second, requests_per_unit: 2 }
    - key: plan
      value: gold
      rate_limit: { name: gold, unit: second, requests_per_unit: 100 }
    - key: plan
      rate_limit: { name: default-plan, unit: second, requests_per_unit: 1 }
    - key: tier
      value: premium
      rate_limit: { unit: second, requests_per_unit: 50, replaces: [{ name: default-plan }] }
    - key: internal
      rate_limit: { unlimited: true }
    - key: canary
      shadow_mode: true
      rate_limit: { unit: second, requests_per_unit: 1 }
`);

async function codes(engine: Awaited<ReturnType<typeof engineFor>>['engine'], descriptors: [string, string][][], times: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < times; i++) {
    const v = await engine.shouldRateLimit({ domain: 'api', descriptors: descriptors.map((d) => ({ entries: entries(...d) })) });
    out.push(v.overall);
  }
  return out;
}

describe('rate-limit engine (ShouldRateLimit semantics)', () => {
  it('limits each distinct value of a bare key separately', async () => {
    const { engine } = engineFor(POLICY, new MemoryBackend());
    expect(await codes(engine, [[['user', 'alice']]], 3)).toEqual(['OK', 'OK', 'OVER_LIMIT']);
    expect(await codes(engine, [[['user', 'bob']]], 1)).toEqual(['OK']);
  });

  it('is over limit when any descriptor is, and reports every status', async () => {
    const { engine } = engineFor(POLICY, new MemoryBackend());
    await codes(engine, [[['plan', 'free']]], 1);
    const v = await engine.shouldRateLimit({ domain: 'api', descriptors: [{ entries: entries(['user', 'carol']) }, { entries: entries(['plan', 'free']) }] });
    expect(v.overall).toBe('OVER_LIMIT');
    expect(v.statuses.map((s) => s.code)).toEqual(['OK', 'OVER_LIMIT']);
    expect(v.statuses[0]).toMatchObject({ remaining: 1, limit: { requestsPerUnit: 2 } });
  });

  it('drops a limit replaced by another matching limit in the same request', async () => {
    const { engine } = engineFor(POLICY, new MemoryBackend());
    const both = [[['plan', 'free']], [['tier', 'premium']]] as [string, string][][];
    expect(await codes(engine, both, 3)).toEqual(['OK', 'OK', 'OK']);
    const v = await engine.shouldRateLimit({ domain: 'api', descriptors: both.map((d) => ({ entries: entries(...d) })) });
    expect(v.statuses[0]!.limit).toBeUndefined();
    // Without the replacing descriptor, default-plan applies again (and was never counted meanwhile).
    expect(await codes(engine, [[['plan', 'free']]], 2)).toEqual(['OK', 'OVER_LIMIT']);
  });

  it('never counts unlimited descriptors and reports the maximum remaining', async () => {
    const backend = new MemoryBackend();
    const { engine } = engineFor(POLICY, backend);
    expect(await codes(engine, [[['internal', 'x']]], 5)).toEqual(Array(5).fill('OK'));
    const v = await engine.shouldRateLimit({ domain: 'api', descriptors: [{ entries: entries(['internal', 'x']) }] });
    expect(v.statuses[0]).toMatchObject({ code: 'OK', unlimited: true, remaining: 4294967295 });
    expect(backend.size()).toBe(0);
  });

  it('shadow mode reports OK while over the limit and marks the status', async () => {
    const { engine } = engineFor(POLICY, new MemoryBackend());
    expect(await codes(engine, [[['canary', 'c']]], 3)).toEqual(['OK', 'OK', 'OK']);
    const v = await engine.shouldRateLimit({ domain: 'api', descriptors: [{ entries: entries(['canary', 'c']) }] });
    expect(v.statuses[0]).toMatchObject({ code: 'OK', shadowed: true, remaining: 0 });
  });

  it('answers OK without a limit for unknown domains and descriptors', async () => {
    const { engine } = engineFor(POLICY, new MemoryBackend());
    const v = await engine.shouldRateLimit({ domain: 'other', descriptors: [{ entries: entries(['user', 'a']) }] });
    expect(v.overall).toBe('OK');
    expect(v.statuses).toHaveLength(1);
    expect(v.statuses[0]!.code).toBe('OK');
    expect(v.statuses[0]!.limit).toBeUndefined();
  });

  it('applies a per-request limit override and hits_addend', async () => {
    const { engine } = engineFor(POLICY, new MemoryBackend());
    const q = { domain: 'api', descriptors: [{ entries: entries(['anything', 'x']), limitOverride: { requestsPerUnit: 10, unit: 'MINUTE' } }], hitsAddend: 6 };
    expect((await engine.shouldRateLimit(q)).overall).toBe('OK');
    const second = await engine.shouldRateLimit(q);
    expect(second.overall).toBe('OVER_LIMIT');
    expect(second.statuses[0]!.limit).toMatchObject({ requestsPerUnit: 10, unit: 'minute' });
  });

  it('resets fixed windows on the clock', async () => {
    const { engine, clock } = engineFor(POLICY, new MemoryBackend());
    expect(await codes(engine, [[['user', 'dave']]], 3)).toEqual(['OK', 'OK', 'OVER_LIMIT']);
    clock.advance(1000);
    expect(await codes(engine, [[['user', 'dave']]], 1)).toEqual(['OK']);
  });

  it('rejects an empty domain, no descriptors, or an empty entry list', async () => {
    const { engine } = engineFor(POLICY, new MemoryBackend());
    await expect(engine.shouldRateLimit({ domain: '', descriptors: [{ entries: entries(['a', 'b']) }] })).rejects.toMatchObject({ code: 'LIMITS_BAD_REQUEST' });
    await expect(engine.shouldRateLimit({ domain: 'api', descriptors: [] })).rejects.toBeInstanceOf(LimitsBadRequestError);
    await expect(engine.shouldRateLimit({ domain: 'api', descriptors: [{ entries: [] }] })).rejects.toMatchObject({ code: 'LIMITS_BAD_REQUEST' });
  });

  it('exports per-domain results as a Prometheus counter when scraped', async () => {
    const registry = createRegistry();
    const engine = new RateLimitEngine({ backend: new MemoryBackend(), clock: new FakeClock(), logger: silentLogger(), registry, failureMode: 'open' });
    engine.setPolicies(compileRateLimits(snapshotOf(POLICY)));
    for (let i = 0; i < 3; i++) await engine.shouldRateLimit({ domain: 'api', descriptors: [{ entries: entries(['user', 'm']) }] });
    const text = await registry.metrics();
    expect(text).toContain('meshward_ratelimit_descriptors_total{domain="api",result="ok"} 2');
    expect(text).toContain('meshward_ratelimit_descriptors_total{domain="api",result="over_limit"} 1');
  });

  it('keys counters so that a crafted value cannot collide with another descriptor', () => {
    const key = (...pairs: [string, string][]) => {
      const e = entries(...pairs);
      return counterKey({ scope: counterScope('d', e), value: e[e.length - 1]!.value });
    };
    expect(key(['a', 'x/b=1:y'])).not.toBe(key(['a', 'x'], ['b', 'y']));
    expect(key(['a', 'x'], ['b', 'y'])).not.toBe(key(['a', 'x/b'], ['b', 'y']));
    expect(key(['a', 'x'], ['b', 'y'])).toBe(key(['a', 'x'], ['b', 'y']));
  });
});

describe('failure mode when the backend cannot answer', () => {
  const broken: LimitBackend = {
    kind: 'redis',
    hit: async () => { throw new LimitsBackendUnavailableError('connection refused'); },
    healthy: () => false,
    close: async () => {},
  };

  it('fails open by default: allowed, marked as failed over', async () => {
    const { engine } = engineFor(POLICY, broken);
    const v = await engine.shouldRateLimit({ domain: 'api', descriptors: [{ entries: entries(['user', 'a']) }] });
    expect(v.overall).toBe('OK');
    expect(v.statuses[0]!.failedOver).toBe('open');
  });

  it('fails closed when configured: over limit with a retry hint', async () => {
    const { engine } = engineFor(POLICY, broken, { failureMode: 'closed' });
    const v = await engine.shouldRateLimit({ domain: 'api', descriptors: [{ entries: entries(['user', 'a']) }] });
    expect(v.overall).toBe('OVER_LIMIT');
    expect(v.statuses[0]).toMatchObject({ failedOver: 'closed', retryAfterMs: 1000 });
  });

  it('does not hide programming errors behind the failure mode', async () => {
    const buggy: LimitBackend = { ...broken, hit: async () => { throw new TypeError('bug'); } };
    const { engine } = engineFor(POLICY, buggy);
    await expect(engine.shouldRateLimit({ domain: 'api', descriptors: [{ entries: entries(['user', 'a']) }] })).rejects.toBeInstanceOf(TypeError);
  });
});
