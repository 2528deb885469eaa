/**
 * Errors raised by built-in functions. The evaluator maps them to OPA's codes:
 * `BuiltinError` → `eval_builtin_error`, `BuiltinTypeError` → `eval_type_error`. As in OPA, both make
 * the call undefined unless strict built-in errors are on (the conformance suite's `strict_error`).
 */
export class BuiltinError extends Error {
  readonly code = 'eval_builtin_error';
  constructor(message: string) {
    super(message);
    this.name = 'BuiltinError';
  }
}

export class BuiltinTypeError extends Error {
  readonly code = 'eval_type_error';
  constructor(message: string) {
    super(message);
    this.name = 'BuiltinTypeError';
  }
}
