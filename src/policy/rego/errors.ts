/**
 * Rego errors with OPA's codes. Compile-time errors carry a location (file:line:col) and are
 * raised together (`RegoCompileErrors` holds all of them, like OPA's ast.Errors); evaluation
 * errors stop the query.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { MeshwardError, registerErrorCodes } from '../../lib/errors.ts';

const compile = (description: string) => ({ grpc: GrpcStatus.INVALID_ARGUMENT, http: 400, exit: 1, description });
const runtime = (description: string) => ({ grpc: GrpcStatus.INTERNAL, http: 500, exit: 2, description });

registerErrorCodes({
  rego_parse_error: compile('A Rego module or query has a syntax error.'),
  rego_compile_error: compile('A Rego module does not compile (undefined reference, conflicting rules, bad import...).'),
  rego_type_error: compile('A Rego expression has a statically known type error (wrong built-in argument type or arity).'),
  rego_unsafe_var_error: compile('A Rego variable cannot be bound by any expression (unsafe variable).'),
  rego_recursion_error: compile('Rego rules or functions refer to themselves (recursion is not allowed).'),
  eval_conflict_error: runtime('A Rego complete rule, function or object key produced two different values.'),
  eval_builtin_error: runtime('A Rego built-in failed (strict built-in errors, or an error that always aborts).'),
  eval_type_error: runtime('A Rego operation got an operand of the wrong type at evaluation time.'),
  rego_evaluation_error: runtime('Rego evaluation failed (cancelled or exceeded a limit).'),
});

export interface RegoLocation {
  file: string;
  line: number;
  col: number;
}

export type RegoErrorCode =
  | 'rego_parse_error'
  | 'rego_compile_error'
  | 'rego_type_error'
  | 'rego_unsafe_var_error'
  | 'rego_recursion_error'
  | 'eval_conflict_error'
  | 'eval_builtin_error'
  | 'eval_type_error'
  | 'rego_evaluation_error';

export function formatLocation(loc: RegoLocation | undefined): string {
  return loc ? `${loc.file}:${loc.line}:${loc.col}` : '';
}

/** One Rego error; `message` is `file:line:col: code: text` as OPA prints it. */
export class RegoError extends MeshwardError {
  readonly location?: RegoLocation;
  /** The message without location and code. */
  readonly text: string;
  /** For compile errors raised together: every error (this one first). */
  readonly errors: readonly RegoError[];

  constructor(code: RegoErrorCode, text: string, location?: RegoLocation, errors?: readonly RegoError[]) {
    // Evaluation errors name file:line as OPA prints them; compile errors add the column.
    const where = location ? (code.startsWith('eval_') ? `${location.file}:${location.line}` : formatLocation(location)) : '';
    super(code, where ? `${where}: ${code}: ${text}` : `${code}: ${text}`, {
      details: location ? { location } : {},
    });
    this.text = text;
    if (location) this.location = location;
    this.errors = errors ?? [this];
  }
}

export class RegoParseError extends RegoError {
  constructor(text: string, location?: RegoLocation) {
    super('rego_parse_error', text, location);
  }
}

/** Several compile errors at once; `code` is the first error's code. */
export function compileErrors(errors: RegoError[]): RegoError {
  const first = errors[0]!;
  if (errors.length === 1) return first;
  const joined = `${errors.length} errors occurred:\n${errors.map((e) => e.message).join('\n')}`;
  const err = new RegoError(first.code as RegoErrorCode, first.text, first.location, errors);
  Object.defineProperty(err, 'message', { value: joined });
  return err;
}

/** Thrown during evaluation; positions refer to the expression being evaluated. */
export class RegoEvalError extends RegoError {}
