import { statSync } from 'node:fs';
import path from 'node:path';
import { type ConfigIssue, ConfigInvalidError, createSnapshot, errorCount, formatIssue, loadConfigDir } from '../../config/index.ts';
import type { CliCommand, CliIo } from '../command.ts';

const CONFIG_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/** What was asked: a directory, or one file checked against the other documents of its directory. */
interface Target {
  dir: string;
  file?: string;
}

function targetOf(arg: string): Target {
  let isFile = false;
  try {
    isFile = statSync(arg).isFile();
  } catch {
    // missing: loadConfigDir reports it
  }
  if (!isFile) return { dir: arg };
  if (!CONFIG_EXTENSIONS.has(path.extname(arg))) {
    throw new ConfigInvalidError([{ file: arg, line: 0, path: '', message: 'not a configuration file (.yaml, .yml or .json)' }]);
  }
  return { dir: path.dirname(arg), file: arg };
}

const sameFile = (a: string, b: string) => path.resolve(a) === path.resolve(b);
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function printIssues(issues: readonly ConfigIssue[], json: boolean, io: CliIo, extra: Record<string, unknown> = {}): void {
  if (json) io.stdout(JSON.stringify({ valid: false, errors: issues, ...extra }) + '\n');
  else io.stderr(issues.map(formatIssue).join('\n') + `\n${plural(errorCount(issues), 'error')}\n`);
}

/** A file's own issues (and notes, which may concern it); the count of the others. */
function issuesOfFile(file: string, err: ConfigInvalidError): { own: ConfigIssue[]; others: number } {
  const own = err.issues.filter((i) => sameFile(i.file, file) || i.category === 'note');
  return { own, others: errorCount(err.issues.filter((i) => !own.includes(i))) };
}

export const command: CliCommand = {
  name: 'config validate',
  summary: 'Validate a configuration directory, or one file against its directory; print every error as file:line: field: message.',
  usage: 'DIR|FILE',
  options: {
    json: { type: 'boolean', description: 'Print JSON instead of text' },
    'allow-empty': { type: 'boolean', description: 'Exit 0 for a directory without documents (by default it exits 1: a mistyped path is not a valid configuration)' },
  },
  async run({ values, positionals }, io) {
    const json = values.json === true;
    const { dir, file } = targetOf(positionals[0] ?? 'policies');
    try {
      const snapshot = createSnapshot(loadConfigDir(dir));
      const count = file ? snapshot.documents.filter((d) => sameFile(d.source.file, file)).length : snapshot.documents.length;
      const empty = count === 0;
      if (json) io.stdout(JSON.stringify({ valid: true, version: snapshot.version, documents: count, ...(empty ? { warning: 'no documents' } : {}) }) + '\n');
      else if (file) io.stdout(`${file}: valid (${plural(count, 'document')}, checked against the ${snapshot.documents.length - count} other documents in ${dir})\n`);
      else io.stdout(`${dir}: valid (${plural(count, 'document')}, version ${snapshot.version})\n`);
      if (!empty) return 0;
      io.stderr(`warning: ${file ?? dir}: no configuration documents found${values['allow-empty'] ? '' : ' (exit 1; --allow-empty accepts this)'}\n`);
      return values['allow-empty'] ? 0 : 1;
    } catch (err) {
      if (!(err instanceof ConfigInvalidError)) throw err;
      if (!file) {
        printIssues(err.issues, json, io);
        return 1;
      }
      const { own, others } = issuesOfFile(file, err);
      if (others > 0 && !json) io.stderr(`note: ${plural(others, 'error')} in other files of ${dir} not shown (run: meshward config validate ${dir})\n`);
      if (own.length === 0) {
        if (json) io.stdout(JSON.stringify({ valid: true, documents: null, otherErrors: others }) + '\n');
        else io.stdout(`${file}: valid\n`);
        return 0;
      }
      printIssues(own, json, io, { otherErrors: others });
      return 1;
    }
  },
};
