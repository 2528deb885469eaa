/**
 * Every ```sh / ```console block of README.md and docs/*.md: the `meshward` / `npx meshward`
 * commands in it run against the sample configuration (a copy of policies/ in a temp directory,
 * whose `.meshward/` is the data directory) and must exit 0. A block that needs something this
 * test does not start says so in an HTML comment on the line before it,
 * `<!-- example: needs-envoy -->` (or needs-kubernetes, needs-server, synopsis ...): it is skipped
 * with that reason. `<!-- example: exit N -->` expects exit code N instead of 0. The output a
 * console block shows must be printed (numbers and hashes aside; a line with `…` is elided).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface Example {
  file: string;
  line: number;
  commands: Command[];
  /** Why the block is not run (from its `<!-- example: ... -->` comment). */
  skip?: string;
  exit: number;
}

export const FILES = ['README.md', ...readdirSync('docs').filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const CLI = resolve('bin/meshward-dev.js');
const MESHWARD = /^(?:npx )?meshward(?:\s|$)/;

export interface Command {
  command: string;
  /** What a console block shows after the command (compared, numbers aside). */
  output: string[];
}

/** The commands of a block: `$ `-prefixed lines of a console block (then their output), every line of a sh block. */
function commandsOf(lang: string, body: string[]): Command[] {
  const out: Command[] = [];
  let current = '';
  for (const raw of body) {
    if (lang === 'console' && !raw.startsWith('$ ') && !current) {
      out.at(-1)?.output.push(raw);
      continue;
    }
    const line = (lang === 'console' && raw.startsWith('$ ') ? raw.slice(2) : raw).trim();
    if (!current && (line === '' || line.startsWith('#'))) continue;
    current += line.endsWith('\\') ? `${line.slice(0, -1)} ` : line;
    if (!line.endsWith('\\')) {
      out.push({ command: current, output: [] });
      current = '';
    }
  }
  return out.filter((c) => MESHWARD.test(c.command));
}

/** Timings, counts and hashes vary: digits compare as one placeholder. */
const normal = (line: string) => line.trim().replace(/[0-9a-f]*\d[0-9a-f.]*/g, 'N');

/** The shown output lines the run did not print (`…` marks an elided line). */
export function missingOutput(shown: string[], printed: string): string[] {
  const actual = new Set(printed.split('\n').map(normal));
  return shown.filter((l) => l.trim() !== '' && !/…|\.\.\./.test(l) && !actual.has(normal(l)));
}

export function examplesOf(file: string, text: string): Example[] {
  const lines = text.split('\n');
  const out: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^\s*```(\w+)\s*$/.exec(lines[i]);
    if (!open) continue;
    const end = lines.findIndex((l, j) => j > i && /^\s*```\s*$/.test(l));
    const body = lines.slice(i + 1, end);
    const prev = lines.slice(0, i).reverse().find((l) => l.trim() !== '') ?? '';
    const mark = /<!-- example: (.*?) -->/.exec(prev)?.[1];
    const exit = mark && /^exit (\d+)$/.exec(mark);
    if (open[1] === 'sh' || open[1] === 'console') {
      const commands = commandsOf(open[1], body);
      if (commands.length > 0) {
        out.push({ file, line: i + 1, commands, exit: exit ? Number(exit[1]) : 0, skip: mark && !exit ? mark : undefined });
      }
    }
    i = end;
  }
  return out;
}

/** A fresh directory per block: the sample configuration as `policies/`, data under `.meshward/`. */
export function sandbox(dir: string): string {
  cpSync('policies', join(dir, 'policies'), { recursive: true });
  return dir;
}

export function run(command: string, cwd: string) {
  // `meshward` and `npx meshward` both run the sources (bin/meshward-dev.js); pipes and
  // redirections in the example stay the shell's.
  // HOME is the sandbox: an example writing under ~ stays in it.
  const prelude = `meshward() { node ${JSON.stringify(CLI)} "$@"; }\nnpx() { shift; meshward "$@"; }\n`;
  return spawnSync('bash', ['-c', prelude + command], { cwd, encoding: 'utf8', env: { ...process.env, HOME: cwd, MESHWARD_LOG_LEVEL: 'warn' } });
}
