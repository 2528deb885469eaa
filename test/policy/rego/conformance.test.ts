import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT, SUITE_DIR, type Summary, runSuite } from './conformance/harness.ts';

const summaryFile = path.join(PROJECT_ROOT, 'test/conformance-summary.json');
const present = fs.existsSync(SUITE_DIR);
if (!present) console.warn(`skipping OPA conformance: ${SUITE_DIR} is absent`);

describe.skipIf(!present)('OPA v1 conformance suite', () => {
  it('passes at least as many cases as the committed summary, folder by folder', () => {
    const committed = JSON.parse(fs.readFileSync(summaryFile, 'utf8')) as Summary;
    const { summary, outcomes } = runSuite();
    const regressions = Object.entries(committed.folders)
      .filter(([folder, c]) => (summary.folders[folder]?.passed ?? 0) < c.passed)
      .map(([folder, c]) => {
        const failing = outcomes.filter((o) => o.folder === folder && !o.pass).map((o) => `${o.note}: ${o.detail}`);
        return `${folder}: ${summary.folders[folder]?.passed ?? 0} < ${c.passed}\n  ${failing.slice(0, 3).join('\n  ')}`;
      });
    expect(regressions).toEqual([]);
    expect(summary.passed).toBeGreaterThanOrEqual(committed.passed);
  }, 120_000);
});
