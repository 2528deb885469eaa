import { describe, expect, it } from 'vitest';
import { newDecisionId } from '../../src/lib/ids.ts';

describe('decision ids', () => {
  it('are RFC 9562 version-7 UUIDs carrying the time, so later ids sort after earlier ones', () => {
    const a = newDecisionId(Date.UTC(2026, 0, 1));
    const b = newDecisionId(Date.UTC(2026, 0, 1) + 1);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a < b).toBe(true);
    expect(Number.parseInt(a.replace(/-/g, '').slice(0, 12), 16)).toBe(Date.UTC(2026, 0, 1));
  });

  it('are unique within one millisecond', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newDecisionId(1)));
    expect(ids.size).toBe(1000);
  });
});
