import { readFileSync } from 'node:fs';
import type { CliCommand } from '../command.ts';

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export const command: CliCommand = {
  name: 'version',
  summary: 'Print the meshward version.',
  async run(_args, io) {
    io.stdout(`meshward ${packageVersion()} (node ${process.versions.node})\n`);
    return 0;
  },
};
