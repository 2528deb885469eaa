/** What a CLI command file exports. Adding a command = adding one file to `cli/commands/`. */
import type { ParseArgsConfig } from 'node:util';

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Environment (tests pass their own). */
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
}

export interface CliCommand {
  /** Words that select it, e.g. `config validate`. */
  name: string;
  summary: string;
  /** Usage after `meshward <name>`, e.g. `DIR`. */
  usage?: string;
  options?: ParseArgsConfig['options'];
  /** Returns the exit code. Throwing a MeshwardError exits with its code's exit status. */
  run(args: { values: CliValues; positionals: string[] }, io: CliIo): Promise<number>;
}

/** Parsed option values (node:util parseArgs). */
export type CliValues = Record<string, string | boolean | (string | boolean)[] | undefined>;
