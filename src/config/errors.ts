import { status } from '@grpc/grpc-js';
import { MeshwardError, registerErrorCodes } from '../lib/errors.ts';

registerErrorCodes({
  CONFIG_INVALID: { grpc: status.INVALID_ARGUMENT, http: 400, exit: 1, description: 'The configuration has errors; each names file:line and field.' },
});

/** One problem in the configuration, located as precisely as the source allows. */
export interface ConfigIssue {
  file: string;
  line: number;
  /** Field path like `spec.rules[0].to[0].operation.methods`; empty for document-level problems. */
  path: string;
  message: string;
}

export function formatIssue(i: ConfigIssue): string {
  return `${i.file}:${i.line}: ${i.path ? `${i.path}: ` : ''}${i.message}`;
}

/** Errors are capped so a broken directory does not flood the terminal (OPA caps at 10 by default). */
export const MAX_REPORTED_ISSUES = 50;

export class ConfigInvalidError extends MeshwardError {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: ConfigIssue[]) {
    const sorted = [...issues].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
    const shown = sorted.slice(0, MAX_REPORTED_ISSUES).map(formatIssue);
    if (sorted.length > shown.length) shown.push(`... and ${sorted.length - shown.length} more`);
    super('CONFIG_INVALID', `invalid configuration (${sorted.length} error${sorted.length === 1 ? '' : 's'}):\n${shown.join('\n')}`);
    this.issues = Object.freeze(sorted);
  }
}
