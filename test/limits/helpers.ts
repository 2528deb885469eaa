/** Shared fixtures of the limits suites: configuration snapshots from YAML, descriptors, engines. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type ConfigSnapshot, createSnapshot, loadConfigDir } from '../../src/config/index.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { createRegistry } from '../../src/lib/metrics.ts';
import type { LimitBackend } from '../../src/limits/backend.ts';
import { type FailureMode, RateLimitEngine } from '../../src/limits/engine.ts';
import { compileRateLimits } from '../../src/limits/policies.ts';

/** Writes `yaml` into a fresh config directory; returns the directory. */
export function configDir(yaml: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mw-limits-cfg-'));
  fs.writeFileSync(path.join(dir, 'limits.yaml'), yaml);
  return dir;
}

export function snapshotOf(yaml: string): ConfigSnapshot {
  const dir = configDir(yaml);
  try {
    return createSnapshot(loadConfigDir(dir));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A RateLimitPolicy document (namespace `shop`) with the given spec body (YAML, indented 2). */
export function rateLimitPolicy(name: string, spec: string, namespace = 'shop'): string {
  return `apiVersion: meshward.io/v1\nkind: RateLimitPolicy\nmetadata: { name: ${name}, namespace: ${namespace} }\nspec:\n${spec}\n`;
}

/** `[["k","v"],["k2","v2"]]` → descriptor entries. */
export function entries(...pairs: [string, string][]): { key: string; value: string }[] {
  return pairs.map(([key, value]) => ({ key, value }));
}

export function engineFor(yaml: string, backend: LimitBackend, options: { clock?: FakeClock; failureMode?: FailureMode } = {}): { engine: RateLimitEngine; clock: FakeClock } {
  const clock = options.clock ?? new FakeClock(Date.UTC(2026, 0, 1, 0, 0, 0));
  const engine = new RateLimitEngine({ backend, clock, logger: silentLogger(), registry: createRegistry(), failureMode: options.failureMode ?? 'open' });
  engine.setPolicies(compileRateLimits(snapshotOf(yaml)));
  return { engine, clock };
}
