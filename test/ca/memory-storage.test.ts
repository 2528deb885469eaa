/** The authority over in-memory storage (what a CA shared through PostgreSQL uses), without a database. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Authority } from '../../src/ca/authority.ts';
import { MemoryCaStorage } from '../../src/ca/storage.ts';
import { FakeClock } from '../../src/lib/clock.ts';
import { openSealed, seal } from '../../src/state/index.ts';
import { caSettings, TRUST_DOMAIN } from './helpers.ts';

const kek = randomBytes(32);
const sealer = (name: string, plain: Buffer) => seal(kek, name, plain);
const opener = (name: string, sealed: string) => openSealed(kek, name, sealed);

function open(storage: MemoryCaStorage, clock: FakeClock, create = false): Authority {
  return Authority.open({ caDir: '(memory)', trustDomain: TRUST_DOMAIN, settings: () => caSettings(), clock, storage }, create);
}

describe('CA over memory storage', () => {
  it('exports every key sealed, and a second storage importing it signs with the same CA', () => {
    const clock = new FakeClock();
    const a = new MemoryCaStorage('a');
    const first = open(a, clock, true);
    const stored = a.export(sealer);
    expect(JSON.stringify(stored)).not.toMatch(/PRIVATE KEY/);
    const b = new MemoryCaStorage('b');
    b.import(stored, opener);
    const second = open(b, clock);
    expect(second.active().slotId).toBe(first.active().slotId);
    expect(second.bundle().rootsPem).toBe(first.bundle().rootsPem);
  });

  it('marks itself dirty on every write, and not on reads', () => {
    const clock = new FakeClock();
    const s = new MemoryCaStorage('s');
    const authority = open(s, clock, true);
    s.dirty = false;
    authority.bundle();
    authority.active();
    expect(s.dirty).toBe(false);
    authority.rotate({ activateAfterMs: 1000 });
    expect(s.dirty).toBe(true);
  });

  it('reload adopts a journal another copy changed and tells bundle listeners once per new sequence', () => {
    const clock = new FakeClock();
    const a = new MemoryCaStorage('a');
    const leader = open(a, clock, true);
    const b = new MemoryCaStorage('b');
    b.import(a.export(sealer), opener);
    const follower = open(b, clock);
    const seen: number[] = [];
    follower.onBundleChange((bundle) => seen.push(bundle.sequence));
    leader.rotate({ newRoot: true, activateAfterMs: 0 });
    b.import(a.export(sealer), opener);
    follower.reload();
    expect(seen).toEqual([leader.bundle().sequence]);
    expect(follower.bundle().roots).toHaveLength(2);
    leader.advance(); // activates: the bundle does not change
    b.import(a.export(sealer), opener);
    follower.reload();
    expect(seen).toHaveLength(1);
    expect(follower.active().slotId).toBe(leader.active().slotId);
  });

  it('holds back a due activation while the gate says no, and activates when it says yes', () => {
    const clock = new FakeClock();
    const authority = open(new MemoryCaStorage('s'), clock, true);
    const before = authority.active().slotId;
    authority.rotate({ activateAfterMs: 0 });
    expect(authority.advance({ mayActivate: () => false })).toBe(false);
    expect(authority.active().slotId).toBe(before);
    expect(authority.advance({ mayActivate: (seq) => seq === authority.bundle().sequence })).toBe(true);
    expect(authority.active().slotId).not.toBe(before);
  });
});
