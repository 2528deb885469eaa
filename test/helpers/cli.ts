/** The CLI run in-process (src/cli runCli), its output captured: what a test of a command checks. */
import { runCli } from '../../src/cli/index.ts';

export async function cli(args: string[], env: Record<string, string> = {}, cwd = process.cwd()): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { stdout: (t) => { stdout += t; }, stderr: (t) => { stderr += t; }, env, cwd });
  return { code, stdout, stderr };
}
