import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../src/limits/memory.ts';
import { limitBackendContract } from './backend-contract.ts';

describe('memory backend', () => {
  limitBackendContract(() => ({ backend: new MemoryBackend(), prefix: '' }));

  it('drops counters that hold nothing any more when swept', () => {
    const b = new MemoryBackend();
    const t0 = Date.UTC(2026, 0, 1);
    b.hit([{ scope: 'g', value: 'v', algorithm: 'gcra', limit: 10, windowMs: 1000, cost: 1 }, { scope: 'f', value: 'v', algorithm: 'fixed-window', limit: 10, windowMs: 1000, cost: 1 }], t0);
    b.sweep(t0 + 50);
    expect(b.size()).toBe(2);
    b.sweep(t0 + 1000);
    expect(b.size()).toBe(0);
  });
});
