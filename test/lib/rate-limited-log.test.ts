import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/lib/clock.ts';
import { RateLimitedLog } from '../../src/lib/rate-limited-log.ts';

function capture() {
  const lines: { msg: string; count: number; stream?: number }[] = [];
  const sink = new Writable({ write(chunk: Buffer, _e, done) { for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l)); done(); } });
  return { lines, logger: pino({ level: 'info' }, sink) };
}

const flushed = () => new Promise((r) => setImmediate(r));

describe('RateLimitedLog', () => {
  it('logs the first occurrence at once, then one line per interval with the count since the last line', async () => {
    const { lines, logger } = capture();
    const clock = new FakeClock();
    const log = new RateLimitedLog(logger, 'refused', { clock, intervalMs: 1000 });
    for (let i = 0; i < 10_000; i++) log.note({ stream: i });
    await flushed();
    expect(lines.map((l) => l.count)).toEqual([1]);
    clock.advance(1000);
    await flushed();
    expect(lines.map((l) => [l.count, l.stream])).toEqual([[1, 0], [9999, 9999]]);
    clock.advance(5000);
    log.note({ stream: 1 });
    await flushed();
    expect(lines.map((l) => l.count)).toEqual([1, 9999, 1]);
  });

  it('keeps no timer when nothing is pending, and close() logs what is pending', async () => {
    const { lines, logger } = capture();
    const clock = new FakeClock();
    const log = new RateLimitedLog(logger, 'refused', { clock, intervalMs: 1000 });
    log.note();
    expect(clock.pendingTimers()).toBe(0);
    log.note();
    log.note();
    expect(clock.pendingTimers()).toBe(1);
    log.close();
    await flushed();
    expect(clock.pendingTimers()).toBe(0);
    expect(lines.map((l) => l.count)).toEqual([1, 2]);
  });
});
