import { status } from '@grpc/grpc-js';
import { MeshwardError, registerErrorCodes } from '../lib/errors.ts';

registerErrorCodes({
  CONFIG_INVALID: { grpc: status.INVALID_ARGUMENT, http: 400, exit: 1, description: 'The configuration has errors; each names file:line and field.' },
});

/** One problem in the configuration, located as precisely as the source allows. */
export interface ConfigIssue {
  file: string;
  line: number;
  /** Column (1-based), when known (YAML syntax errors). */
  column?: number;
  /**
   * `syntax`: the file did not parse (listed first: later errors may follow from it); `note`: not
   * an error, a remark about the errors shown (listed after the syntax errors, not counted).
   */
  category?: 'syntax' | 'note';
  /** Field path like `spec.rules[0].to[0].operation.methods`; empty for document-level problems. */
  path: string;
  message: string;
}

export function formatIssue(i: ConfigIssue): string {
  // Line 0: about the file or directory as a whole.
  const at = i.line === 0 ? i.file : i.column ? `${i.file}:${i.line}:${i.column}` : `${i.file}:${i.line}`;
  return `${at}: ${i.category === 'note' ? 'note: ' : ''}${i.path ? `${i.path}: ` : ''}${i.message}`;
}

/** Errors among issues (notes are not errors). */
export function errorCount(issues: readonly ConfigIssue[]): number {
  return issues.filter((i) => i.category !== 'note').length;
}

const RANK = { syntax: 0, note: 1 } as const;
const rankOf = (i: ConfigIssue): number => (i.category ? RANK[i.category] : 2);

/** Syntax errors first (the rest may follow from them), then notes, then by file, line and column. */
export function sortIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  return [...issues].sort((a, b) => rankOf(a) - rankOf(b) || a.file.localeCompare(b.file) || a.line - b.line || (a.column ?? 0) - (b.column ?? 0));
}

/** Errors are capped so a broken directory does not flood the terminal (OPA caps at 10 by default). */
export const MAX_REPORTED_ISSUES = 50;

export class ConfigInvalidError extends MeshwardError {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: ConfigIssue[]) {
    const sorted = sortIssues(issues);
    const shown = sorted.slice(0, MAX_REPORTED_ISSUES).map(formatIssue);
    if (sorted.length > shown.length) shown.push(`... and ${sorted.length - shown.length} more`);
    const errors = errorCount(sorted);
    super('CONFIG_INVALID', `invalid configuration (${errors} error${errors === 1 ? '' : 's'}):\n${shown.join('\n')}`);
    this.issues = Object.freeze(sorted);
  }
}
