import { describe, expect, it } from 'vitest';
import { placeStage, type StageFactory } from '../../src/authz/stage.ts';

const f = (name: string): StageFactory => ({ name, compile: () => ({ name, run: () => undefined }) });
const names = (list: StageFactory[]) => list.map((s) => s.name);

describe('placeStage', () => {
  const base = [f('authenticate'), f('authorize')];
  it('places a stage after or before a named one, or last', () => {
    expect(names(placeStage(base, f('limits'), { after: 'authenticate' }))).toEqual(['authenticate', 'limits', 'authorize']);
    expect(names(placeStage(base, f('limits'), { before: 'authenticate' }))).toEqual(['limits', 'authenticate', 'authorize']);
    expect(names(placeStage(base, f('limits')))).toEqual(['authenticate', 'authorize', 'limits']);
  });
  it('refuses an unknown anchor and a duplicate name', () => {
    expect(() => placeStage(base, f('limits'), { after: 'nope' })).toThrow(/no stage "nope"/);
    expect(() => placeStage(base, f('authorize'))).toThrow(/already in the pipeline/);
  });
});
