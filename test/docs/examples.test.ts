/** Runs the shell examples of README.md and docs/*.md (how: test/docs/examples.ts). */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FILES, examplesOf, missingOutput, run, sandbox } from './examples.ts';

const examples = FILES.flatMap((f) => examplesOf(f, readFileSync(f, 'utf8')));
const work = mkdtempSync(join(tmpdir(), 'meshward-examples-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));



describe('shell examples in README.md and docs/', () => {
  it('finds the examples', () => {
    expect(examples.filter((e) => !e.skip).length).toBeGreaterThan(3);
  });

  for (const [n, ex] of examples.entries()) {
    const title = `${ex.file}:${ex.line}: ${ex.commands[0].command.slice(0, 70)}`;
    if (ex.skip) {
      it.skip(`${title} (${ex.skip})`, () => {});
      continue;
    }
    it(title, () => {
      const cwd = sandbox(join(work, String(n)));
      for (const { command, output } of ex.commands) {
        const r = run(command, cwd);
        const where = `${ex.file}:${ex.line}: \`${command}\`\n${r.stdout}\n${r.stderr}`;
        expect(r.status, where).toBe(ex.exit);
        expect(missingOutput(output, r.stdout + r.stderr), where).toEqual([]);
      }
    }, 60_000);
  }
});

describe('the example checker', () => {
  it('refuses an example whose command fails or does not print what the block shows', () => {
    const doc = ['```console', '$ meshward limits match -c policies --domain edge other=x', 'other=x: no limit', '```', '```console', '$ meshward config validate policies', 'policies: valid (1 document, version 0)', '```'].join('\n');
    const [limits, validate] = examplesOf('doc.md', doc);
    const cwd = sandbox(join(work, 'checker'));
    expect(run(limits.commands[0].command, cwd).status).toBe(1);
    const r = run(validate.commands[0].command, cwd);
    expect(r.status).toBe(0);
    expect(missingOutput(validate.commands[0].output, r.stdout)).toEqual(['policies: valid (1 document, version 0)']);
    expect(missingOutput(['policies: valid (15 documents, version 0)'], r.stdout)).toEqual([]);
  }, 60_000);

  it('skips a block marked as needing what the test does not start, with the reason', () => {
    const doc = ['<!-- example: needs-envoy -->', '```sh', 'meshward proxy status', '```'].join('\n');
    expect(examplesOf('doc.md', doc)[0].skip).toBe('needs-envoy');
  });
});
