import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { applySections, benchmarkSections, generatedSections } from '../../src/cli/docs.ts';

describe('README.md and BENCHMARKS.md', () => {
  it('have their generated sections in sync with the code, docs/ and bench/results/ (run `npm run docs`)', async () => {
    const readme = readFileSync('README.md', 'utf8');
    expect(applySections(readme, await generatedSections())).toBe(readme);
    const benchmarks = readFileSync('BENCHMARKS.md', 'utf8');
    expect(applySections(benchmarks, benchmarkSections())).toBe(benchmarks);
  });

  it('documents the quick start and the test command CI runs', () => {
    const readme = readFileSync('README.md', 'utf8');
    expect(readme).toContain('npm install && npm start');
    expect(readme).toContain('npm test');
    expect(readFileSync('.ci/run', 'utf8')).toMatch(/^npm test$/m);
  });
});
