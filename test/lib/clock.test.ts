import { afterEach, describe, expect, it, vi } from 'vitest';
import { FakeClock, systemClock } from '../../src/lib/clock.ts';

afterEach(() => {
  vi.useRealTimers();
});

describe('systemClock', () => {
  it('fires a timer longer than setTimeout allows (≈ 24.8 days) at its time, not at once', () => {
    vi.useFakeTimers();
    const fired = vi.fn();
    const day = 86_400_000;
    systemClock.setTimer(60 * day, fired);
    vi.advanceTimersByTime(30 * day);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(30 * day - 1);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fired).toHaveBeenCalledTimes(1);
  });

  it('cancels a long timer in any of its hops', () => {
    vi.useFakeTimers();
    const fired = vi.fn();
    const cancel = systemClock.setTimer(40 * 86_400_000, fired);
    vi.advanceTimersByTime(30 * 86_400_000);
    cancel();
    vi.advanceTimersByTime(20 * 86_400_000);
    expect(fired).not.toHaveBeenCalled();
  });
});

describe('FakeClock', () => {
  it('runs due timers in order as time advances, and not cancelled ones', () => {
    const clock = new FakeClock(0);
    const order: string[] = [];
    clock.setTimer(20, () => order.push('b'));
    clock.setTimer(10, () => order.push('a'));
    const cancel = clock.setTimer(15, () => order.push('x'));
    cancel();
    clock.advance(19);
    expect(order).toEqual(['a']);
    clock.advance(1);
    expect(order).toEqual(['a', 'b']);
    expect(clock.now()).toBe(20);
  });
});
