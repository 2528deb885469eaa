/**
 * `npm run conformance [-- --folder NAME] [--verbose]`: runs OPA's v1 conformance cases, prints
 * pass/fail per folder and a total line, and writes test/conformance-summary.json (full runs only).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROJECT_ROOT, SUITE_DIR, runSuite } from './harness.ts';

const args = process.argv.slice(2);
const folderArg = args.includes('--folder') ? args[args.indexOf('--folder') + 1] : undefined;
const verbose = args.includes('--verbose') || args.includes('-v');

if (!fs.existsSync(SUITE_DIR)) {
  process.stderr.write(
    [
      `conformance suite not found at ${SUITE_DIR}`,
      'It is the folder v1/test/cases/testdata/v1 of the OPA repository (https://github.com/open-policy-agent/opa,',
      'commit 2605e2c7e686; see docs/rego.md). Point MESHWARD_CONFORMANCE_DIR at a copy of that folder, e.g.',
      '  git clone --filter=blob:none https://github.com/open-policy-agent/opa /tmp/opa',
      '  MESHWARD_CONFORMANCE_DIR=/tmp/opa/v1/test/cases/testdata/v1 npm run conformance',
      '',
    ].join('\n'),
  );
  process.exit(2);
}

const { summary, outcomes } = runSuite(folderArg ? (f) => f === folderArg : undefined);
for (const [folder, r] of Object.entries(summary.folders)) {
  const mark = r.passed === r.total ? 'PASS' : 'FAIL';
  process.stdout.write(`${mark} ${folder.padEnd(40)} ${r.passed}/${r.total}\n`);
}
if (verbose) {
  for (const o of outcomes.filter((x) => !x.pass)) process.stdout.write(`  ✗ ${o.folder}/${o.file}: ${o.note}\n      ${o.detail}\n`);
}
process.stdout.write(`TOTAL ${summary.passed}/${summary.total} passed (${summary.percent}%), ${summary.failed} failed\n`);
if (!folderArg) {
  fs.writeFileSync(path.join(PROJECT_ROOT, 'test/conformance-summary.json'), JSON.stringify(summary, null, 2) + '\n');
}
