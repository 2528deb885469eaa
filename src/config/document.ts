/** The Kubernetes-style envelope every configuration document has. */
import type { Static } from '@sinclair/typebox';
import { Labels, Name, Obj, Opt } from './kinds/common.ts';

export const API_VERSION = 'meshward.io/v1';

export const Metadata = Obj({
  name: Name,
  namespace: Opt(Name),
  labels: Opt(Labels),
  annotations: Opt(Labels),
});

export type Metadata = Static<typeof Metadata>;

/** Where a document came from, for error messages and `GET /v1/config`. */
export interface DocumentSource {
  file: string;
  line: number;
}

/** A validated document with defaults applied. `spec` is typed by kind via `specOf`. */
export interface ConfigDocument<Spec = unknown> {
  readonly apiVersion: typeof API_VERSION;
  readonly kind: string;
  readonly metadata: Readonly<Metadata> & { readonly namespace: string };
  readonly spec: Spec;
  readonly source: DocumentSource;
}

export const DEFAULT_NAMESPACE = 'default';
