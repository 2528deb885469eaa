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
  return ['Usage: meshward <command> [options]', '', 'Commands:', ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`), '', 'Run `meshward <command> --help` for its options.', ''].join('\n');
}

function commandHelp(c: CliCommand): string {
  const opts = Object.entries(c.options ?? {}).map(([name, o]) => `  --${name}${o.short ? `, -${o.short}` : ''}${o.type === 'string' ? ' VALUE' : ''}${o.multiple ? ' (repeatable)' : ''}`);
  return [`Usage: meshward ${c.name}${c.options ? ' [options]' : ''}${c.usage ? ` ${c.usage}` : ''}`, '', c.summary, ...(opts.length ? ['', 'Options:', ...opts] : []), ''].join('\n');
}

export const processIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
  cwd: process.cwd(),
};

/** Runs argv; returns the exit code (0 ok, 1 failure/invalid, 2 usage, others from the error catalog). */
export async function runCli(argv: string[], io: CliIo = processIo): Promise<number> {
  const commands = await loadCommands();
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.stdout(helpText(commands));
    return argv.length === 0 ? 2 : 0;
  }
  let match: CliCommand | undefined;
  for (const c of commands) {
    const words = c.name.split(' ');
    if (words.every((w, i) => argv[i] === w) && (!match || words.length > match.name.split(' ').length)) match = c;
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
    parsed = parseArgs({ args: rest, options: match.options ?? {}, allowPositionals: true, strict: true });
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
