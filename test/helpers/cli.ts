/** The CLI run in-process (src/cli runCli), its output captured: what a test of a command checks. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { runCli } from '../../src/cli/index.ts';

export async function cli(args: string[], env: Record<string, string> = {}, cwd = process.cwd()): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { stdout: (t) => { stdout += t; }, stderr: (t) => { stderr += t; }, env, cwd });
  return { code, stdout, stderr };
}

/**
 * Call at a test file's top level: returns a maker of temporary directories holding the given
 * files (name → text) for a command to read, each removed after the test that made it.
 */
export function tempDirsOfFiles(prefix = 'mw-'): (files: Record<string, string>) => string {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  return (files) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    dirs.push(dir);
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
    return dir;
  };
}
