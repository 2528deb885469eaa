import { createSnapshot, formatIssue, loadConfigDir, ConfigInvalidError } from '../../config/index.ts';
import type { CliCommand } from '../command.ts';

export const command: CliCommand = {
  name: 'config validate',
  summary: 'Validate a configuration directory; print every error as file:line: field: message.',
  usage: 'DIR',
  options: { json: { type: 'boolean', description: 'Print JSON instead of text' } },
  async run({ values, positionals }, io) {
    const dir = positionals[0] ?? 'policies';
    try {
      const snapshot = createSnapshot(loadConfigDir(dir));
      if (values.json) io.stdout(JSON.stringify({ valid: true, version: snapshot.version, documents: snapshot.documents.length }) + '\n');
      else io.stdout(`${dir}: valid (${snapshot.documents.length} documents, version ${snapshot.version})\n`);
      return 0;
    } catch (err) {
      if (!(err instanceof ConfigInvalidError)) throw err;
      if (values.json) io.stdout(JSON.stringify({ valid: false, errors: err.issues }) + '\n');
      else io.stderr(err.issues.map(formatIssue).join('\n') + `\n${err.issues.length} error${err.issues.length === 1 ? '' : 's'}\n`);
      return 1;
    }
  },
};
