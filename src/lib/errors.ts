/**
 * Typed errors with stable codes. Every capability registers its codes once in the catalog
 * (`registerErrorCodes`), giving each the gRPC status, HTTP status and CLI exit code the edges
 * use. Tests assert `code`, never just "throws".
 */
import { status as GrpcStatus } from '@grpc/grpc-js';

export interface ErrorCodeSpec {
  /** gRPC status code the gRPC edge answers with. */
  grpc: GrpcStatus;
  /** HTTP status the HTTP edge answers with. */
  http: number;
  /** CLI exit code. */
  exit: number;
  /** One line for the README's error catalog. */
  description: string;
}

const catalog = new Map<string, ErrorCodeSpec>();

/** Registers codes; a code registered twice with a different meaning is a programming error. */
export function registerErrorCodes(specs: Record<string, ErrorCodeSpec>): void {
  for (const [code, spec] of Object.entries(specs)) {
    const existing = catalog.get(code);
    if (existing && existing.description !== spec.description) {
      throw new Error(`error code ${code} registered twice with different meanings`);
    }
    catalog.set(code, spec);
  }
}

/** The full catalog (for the README and its test). */
export function errorCatalog(): ReadonlyMap<string, ErrorCodeSpec> {
  return catalog;
}

registerErrorCodes({
  INTERNAL: { grpc: GrpcStatus.INTERNAL, http: 500, exit: 70, description: 'Unexpected internal failure.' },
  INVALID_ARGUMENT: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 400, exit: 2, description: 'A request or command-line argument is malformed.' },
  UNAUTHENTICATED: { grpc: GrpcStatus.UNAUTHENTICATED, http: 401, exit: 77, description: 'No or invalid credentials.' },
  PERMISSION_DENIED: { grpc: GrpcStatus.PERMISSION_DENIED, http: 403, exit: 77, description: 'The caller may not do this.' },
  NOT_FOUND: { grpc: GrpcStatus.NOT_FOUND, http: 404, exit: 1, description: 'The named thing does not exist.' },
  UNAVAILABLE: { grpc: GrpcStatus.UNAVAILABLE, http: 503, exit: 69, description: 'A dependency (store, Redis) is unavailable.' },
});

/** Base class of every error meshward raises on purpose. */
export class MeshwardError extends Error {
  readonly code: string;
  readonly details?: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    if (!catalog.has(code)) throw new Error(`unregistered error code ${code}`);
    this.code = code;
    this.name = new.target.name;
    if (options?.details) this.details = Object.freeze({ ...options.details });
  }
}

function specOf(err: unknown): ErrorCodeSpec {
  if (err instanceof MeshwardError) return catalog.get(err.code)!;
  return catalog.get('INTERNAL')!;
}

export function toGrpcStatus(err: unknown): GrpcStatus {
  return specOf(err).grpc;
}

export function toHttpStatus(err: unknown): number {
  return specOf(err).http;
}

export function toExitCode(err: unknown): number {
  return specOf(err).exit;
}

/** Error code as a metric label: stable and low-cardinality. */
export function errorCodeOf(err: unknown): string {
  return err instanceof MeshwardError ? err.code : 'INTERNAL';
}
