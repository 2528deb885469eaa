/**
 * The `meshward` CLI. Commands are discovered from `cli/commands/*.ts`: each file exports
 * `command` (or `commands`). The longest matching name wins (`ca init` before `ca`).
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { MeshwardError, toExitCode } from '../lib/errors.ts';
import type { CliCommand, CliIo } from './command.ts';
import { optionHelpLines, parseArgsOptions } from './options.ts';

export type { CliCommand, CliIo } from './command.ts';

const COMMANDS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'commands');

export async function loadCommands(): Promise<CliCommand[]> {
  const files = readdirSync(COMMANDS_DIR).filter((f) => /\.(ts|js)$/.test(f) && !f.endsWith('.d.ts')).sort();
  const out: CliCommand[] = [];
  for (const f of files) {
    const mod = (await import(pathToFileURL(path.join(COMMANDS_DIR, f)).href)) as { command?: CliCommand; commands?: CliCommand[] };
    if (mod.command) out.push(mod.command);
    if (mod.commands) out.push(...mod.commands);
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

export function helpText(commands: CliCommand[]): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return ['Usage: meshward <command> [options]', '', 'Commands:', ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`), '', 'Run `meshward <command> --help` for its options, `meshward <group>` (ca, token, ...) for a group\'s commands, `meshward --version` for the version.', ''].join('\n');
}

function commandHelp(c: CliCommand): string {
  const opts = optionHelpLines(c.options ?? {});
  return [`Usage: meshward ${c.name}${c.options ? ' [options]' : ''}${c.usage ? ` ${c.usage}` : ''}`, '', c.summary, ...(opts.length ? ['', 'Options:', ...opts] : []), ''].join('\n');
}

/** `meshward ca`: the commands of a group, with their summaries. */
function groupHelp(group: string, commands: CliCommand[]): string {
  const members = commands.filter((c) => c.name.startsWith(`${group} `));
  const width = Math.max(...members.map((c) => c.name.length)) + 11;
  return [`Usage: meshward ${group} <command> [options]`, '', 'Commands:', ...members.map((c) => `  ${`meshward ${c.name}`.padEnd(width)}${c.summary}`), '', `Run \`meshward ${group} <command> --help\` for its options.`, ''].join('\n');
}

const isHelp = (arg: string | undefined) => arg === '--help' || arg === '-h' || arg === 'help';

export const processIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
  cwd: process.cwd(),
};

/** Runs argv; returns the exit code (0 ok, 1 failure/invalid, 2 usage, others from the error catalog). */
export async function runCli(args: string[], io: CliIo = processIo): Promise<number> {
  let argv = args;
  const commands = await loadCommands();
  if (argv.length === 0 || isHelp(argv[0])) {
    io.stdout(helpText(commands));
    return argv.length === 0 ? 2 : 0;
  }
  if (argv[0] === '--version' || argv[0] === '-V') argv = ['version', ...argv.slice(1)];
  let match: CliCommand | undefined;
  for (const c of commands) {
    const words = c.name.split(' ');
    if (words.every((w, i) => argv[i] === w) && (!match || words.length > match.name.split(' ').length)) match = c;
  }
  const group = argv[0]!;
  if (!match && commands.some((c) => c.name.startsWith(`${group} `)) && (argv.length === 1 || isHelp(argv[1]))) {
    // A group alone is a question (exit 2, as a bare `meshward`); with --help, an answer.
    io.stdout(groupHelp(group, commands));
    return argv.length === 1 ? 2 : 0;
  }
  if (!match) {
    io.stderr(`meshward: unknown command "${argv.slice(0, 2).join(' ')}"\n\n${helpText(commands)}`);
    return 2;
  }
  const rest = argv.slice(match.name.split(' ').length);
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout(commandHelp(match));
    return 0;
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: rest, options: parseArgsOptions(match.options ?? {}), allowPositionals: true, strict: true });
  } catch (err) {
    io.stderr(`meshward ${match.name}: ${(err as Error).message}\n\n${commandHelp(match)}`);
    return 2;
  }
  try {
    return await match.run(parsed, io);
  } catch (err) {
    if (err instanceof MeshwardError) {
      io.stderr(`meshward ${match.name}: ${err.message}\n`);
      return toExitCode(err);
    }
    io.stderr(`meshward ${match.name}: internal error: ${(err as Error).stack ?? String(err)}\n`);
    return 70;
  }
}
