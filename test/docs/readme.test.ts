import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applySections, generatedDocs } from '../../src/cli/docs.ts';

const DOCS = readdirSync('docs').filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const h = !fenced && /^#{1,6} (.*)$/.exec(line);
    if (h) out.add(h[1].trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-'));
  }
  return out;
}

describe('README.md and docs/', () => {
  it('have their generated sections in sync with the code and bench/results/ (run `npm run docs`)', async () => {
    for (const { file, sections } of await generatedDocs()) {
      const text = readFileSync(file, 'utf8');
      expect(applySections(text, sections), file).toBe(text);
    }
  });

  it('documents the quick start and the test command CI runs', () => {
    const readme = readFileSync('README.md', 'utf8');
    expect(readme).toContain('npm install && npm start');
    expect(readme).toMatch(/^npm test\b/m);
    expect(readFileSync('.ci/run', 'utf8')).toMatch(/^npm test$/m);
  });

  it('keeps the README to a newcomer page that links every doc', () => {
    const readme = readFileSync('README.md', 'utf8');
    expect(readme.split('\n').length).toBeLessThanOrEqual(400);
    for (const doc of DOCS) expect(readme, doc).toContain(`](${doc}`);
  });

  it('has no relative link to a missing file or heading', () => {
    const broken: string[] = [];
    for (const file of ['README.md', ...DOCS]) {
      const text = readFileSync(file, 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target)) continue;
        const [path, anchor] = target.split('#');
        const dest = path ? normalize(join(dirname(file), path)) : file;
        if (!existsSync(dest)) broken.push(`${file}: ${target} (no such file)`);
        else if (anchor && dest.endsWith('.md') && !anchors(readFileSync(dest, 'utf8')).has(anchor)) broken.push(`${file}: ${target} (no such heading)`);
      }
    }
    expect(broken).toEqual([]);
  });
});
