import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { applySections, generatedSections } from '../../src/cli/docs.ts';

describe('README.md', () => {
  it('has its configuration reference, CLI reference and error catalog in sync with the code (run `npm run docs`)', async () => {
    const readme = readFileSync('README.md', 'utf8');
    expect(applySections(readme, await generatedSections())).toBe(readme);
  });

  it('documents the quick start and the test command CI runs', () => {
    const readme = readFileSync('README.md', 'utf8');
    expect(readme).toContain('npm install && npm start');
    expect(readme).toContain('npm test');
    expect(readFileSync('.ci/run', 'utf8')).toMatch(/^npm test$/m);
  });
});
