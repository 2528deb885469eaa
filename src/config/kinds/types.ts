import type { TSchema } from '@sinclair/typebox';
import type { ConfigDocument } from '../document.ts';

/** A semantic problem found after schema validation; path is relative to the document root. */
export interface KindIssue {
  path: (string | number)[];
  message: string;
  /** Names a document that was not found: the loader hides these while a file did not parse (it may hold it). */
  unresolvedReference?: true;
}

/** What a kind check can see besides its own document: every other document, for cross-references. */
export interface CheckContext {
  documents: readonly ConfigDocument[];
  find(kind: string, name: string, namespace: string): ConfigDocument | undefined;
  /** Reads a file referenced by a document, relative to that document's file; undefined if absent. */
  fileExists(relativeTo: string, file: string): boolean;
  /** Contents of a referenced file (as `fileExists` reads it), for kinds that check what files hold. */
  readFile?(relativeTo: string, file: string): Buffer | undefined;
}

export interface KindDefinition<S extends TSchema = TSchema> {
  kind: string;
  /** Schema of `spec`, with defaults. */
  spec: S;
  /** One line for the configuration reference. */
  description: string;
  /** Semantic checks beyond the schema: cross-references, mutually exclusive fields. */
  check?(doc: ConfigDocument, ctx: CheckContext): KindIssue[];
}
