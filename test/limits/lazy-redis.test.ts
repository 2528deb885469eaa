import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Starts and stops a default meshward in a fresh process; reports whether ioredis was loaded. */
function loadsIoredis(extra: Record<string, string>): boolean {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mw-lazy-redis-'));
  const script = `
    import { createRequire } from 'node:module';
    import { createMeshward } from './src/meshward.ts';
    import { silentLogger } from './src/lib/logger.ts';
    const mw = await createMeshward({ configDir: 'policies', dataDir: ${JSON.stringify(dataDir)}, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', watchConfig: false, ...${JSON.stringify(extra)} }, { logger: silentLogger() });
    await mw.start();
    await mw.stop();
    const cache = createRequire(import.meta.url).cache;
    process.stdout.write(String(Object.keys(cache).some((k) => k.includes('/node_modules/ioredis/'))));`;
  try {
    return execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 }).trim() === 'true';
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

describe('Redis client loading', () => {
  // ioredis subclasses String, which makes V8 stop inlining charCodeAt process-wide (redis-client.ts).
  it('does not load ioredis when no Redis is configured', () => {
    expect(loadsIoredis({})).toBe(false);
  });

  it('loads ioredis when a Redis URL is configured', () => {
    expect(loadsIoredis({ redisUrl: 'redis://127.0.0.1:1' })).toBe(true);
  });
});
