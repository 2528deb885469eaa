import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/lib/clock.ts';
import { Debouncer } from '../../src/xds/debounce.ts';

describe('push debounce', () => {
  it('pushes once after 100 ms of quiet, however many changes came before', () => {
    const clock = new FakeClock();
    const fired: number[] = [];
    const d = new Debouncer(clock, { quietMs: 100, maxMs: 1000 }, (first) => fired.push(first));
    const start = clock.now();
    d.trigger();
    clock.advance(60);
    d.trigger();
    clock.advance(60);
    d.trigger();
    clock.advance(99);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual([start]);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('pushes after at most 1 s even while changes keep coming', () => {
    const clock = new FakeClock();
    let fired = 0;
    const d = new Debouncer(clock, { quietMs: 100, maxMs: 1000 }, () => fired++);
    for (let t = 0; t < 1000; t += 50) {
      d.trigger();
      clock.advance(50);
    }
    expect(fired).toBe(1);
    expect(d.pending).toBe(false);
  });

  it('rejects a maximum shorter than the quiet period', () => {
    expect(() => new Debouncer(new FakeClock(), { quietMs: 500, maxMs: 100 }, () => {})).toThrow(RangeError);
  });
});
