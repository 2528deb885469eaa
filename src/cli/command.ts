/** What a CLI command file exports. Adding a command = adding one file to `cli/commands/`. */

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
  /** Its options, from the table in options.ts (`pickOptions`) or its own, each with a description. */
  options?: Record<string, CliOption>;
  /** Returns the exit code. Throwing a MeshwardError exits with its code's exit status. */
  run(args: { values: CliValues; positionals: string[] }, io: CliIo): Promise<number>;
}

/** One option: how it parses (node:util parseArgs) and how help describes it. */
export interface CliOption {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  description: string;
  /** Placeholder of the value in help (`DIR`, `HOST:PORT`); string options only. */
  value?: string;
  /** What applies when neither the flag nor the environment variable is set (help text). */
  default?: string;
  /** The environment variable read when the flag is absent (`NAME` or `NAME=false` for switches). */
  env?: string;
}

/** Parsed option values (node:util parseArgs). */
export type CliValues = Record<string, string | boolean | (string | boolean)[] | undefined>;
