/** Process entry: runs the CLI and returns its exit code (bin/meshward.js sets process.exitCode). */
import 'reflect-metadata'; // @peculiar/x509 2.x needs it loaded before it is imported anywhere
import { runCli } from './cli/index.ts';

export async function main(argv: string[]): Promise<number> {
  return runCli(argv);
}
