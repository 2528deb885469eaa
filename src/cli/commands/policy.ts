/**
 * `meshward policy eval|test|check`: the Rego engine from the command line, shaped like
 * `opa eval --format json`, `opa test` and `opa check`.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { MeshwardError, registerErrorCodes } from '../../lib/errors.ts';
import { RegoError } from '../../policy/rego/errors.ts';
import { loadPolicyFiles, mergeData, readDataFile } from '../../policy/rego/files.ts';
import { compileRego } from '../../policy/rego/policy.ts';
import { runRegoTests } from '../../policy/rego/testing.ts';
import { type Value, stringifyJSON } from '../../policy/rego/value.ts';
import type { CliCommand, CliIo, CliValues } from '../command.ts';

// `opa test` exits 0 when it runs no test unless given --fail-on-empty (then 1); failing is the
// default here, so a CI job whose test files or rules are mis-named does not pass silently.
registerErrorCodes({
  POLICY_NO_TESTS: { grpc: GrpcStatus.NOT_FOUND, http: 404, exit: 1, description: '`meshward policy test` found no test to run (no rule named test_*, or none matching --run) in the paths given; --allow-empty exits 0.' },
});

function list(v: CliValues[string]): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

function printErrors(err: RegoError, io: CliIo): void {
  const errors = err.errors;
  io.stderr(`${errors.length} error${errors.length === 1 ? '' : 's'} occurred:\n${errors.map((e) => e.message).join('\n')}\n`);
}

const evalCommand: CliCommand = {
  name: 'policy eval',
  summary: 'Evaluate a Rego query against policy files; prints JSON like `opa eval --format json`.',
  usage: 'QUERY',
  options: {
    // `-d` takes policy files or directories (and data files), as `opa eval -d`; `--data` a data document.
    policy: { type: 'string', short: 'd', multiple: true, value: 'PATH', description: 'Rego file or directory (and data files in it), as opa eval -d' },
    input: { type: 'string', short: 'i', value: 'FILE', description: 'Input document (JSON or YAML)' },
    data: { type: 'string', multiple: true, value: 'FILE', description: 'Data document (JSON or YAML) merged under data' },
    fail: { type: 'boolean', description: 'Exit 1 when the query has no result' },
    'strict-builtin-errors': { type: 'boolean', description: 'Fail on the first built-in error instead of treating it as undefined' },
  },
  async run({ values, positionals }, io) {
    const query = positionals.join(' ').trim();
    if (!query) throw new MeshwardError('INVALID_ARGUMENT', 'a query is required, e.g. data.envoy.authz.allow');
    const loaded = loadPolicyFiles(list(values.policy));
    let data = loaded.data;
    for (const f of list(values.data)) data = mergeData(data, readDataFile(f));
    const input: Value | undefined = typeof values.input === 'string' ? readDataFile(values.input) : undefined;
    const output: string[] = [];
    try {
      const policy = compileRego(loaded.modules);
      const rows = policy.evaluate(query, input, data, {
        strictBuiltinErrors: values['strict-builtin-errors'] === true,
        print: (t) => output.push(t),
      });
      for (const line of output) io.stderr(`${line}\n`);
      const result = rows.map((r) => ({
        expressions: r.expressions.map((value) => ({ value, text: query })),
        ...(Object.keys(r.bindings).length ? { bindings: r.bindings } : {}),
      }));
      io.stdout(`${toJSONText(rows.length ? { result } : {})}\n`);
      return values.fail && rows.length === 0 ? 1 : 0;
    } catch (err) {
      if (!(err instanceof RegoError)) throw err;
      io.stdout(`${toJSONText({ errors: err.errors.map((e) => ({ code: e.code, message: e.text, ...(e.location ? { location: e.location } : {}) })) })}\n`);
      return 1;
    }
  },
};

/** JSON text with Rego values inside (sets as arrays, big integers exact). */
function toJSONText(x: unknown, indent = ''): string {
  const next = indent + '  ';
  if (Array.isArray(x)) return x.length ? `[\n${x.map((v) => next + toJSONText(v, next)).join(',\n')}\n${indent}]` : '[]';
  if (x !== null && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) {
    const entries = Object.entries(x as Record<string, unknown>);
    return entries.length ? `{\n${entries.map(([k, v]) => `${next}${JSON.stringify(k)}: ${toJSONText(v, next)}`).join(',\n')}\n${indent}}` : '{}';
  }
  return stringifyJSON(x as Value);
}

const testCommand: CliCommand = {
  name: 'policy test',
  summary: 'Run Rego tests (rules named test_*) like `opa test`; exit 2 when a test fails, 1 when no test was found (POLICY_NO_TESTS; `opa test` needs --fail-on-empty for that) unless --allow-empty.',
  usage: 'DIR_OR_FILE...',
  options: {
    verbose: { type: 'boolean', short: 'v', description: 'Print every test, not only failures' },
    run: { type: 'string', short: 'r', value: 'REGEX', description: 'Run only tests whose name matches' },
    json: { type: 'boolean', description: 'Print JSON instead of text' },
    'allow-empty': { type: 'boolean', description: 'Exit 0 when no test is found (the default is exit 1, POLICY_NO_TESTS)' },
    'fail-on-empty': { type: 'boolean', description: 'As opa test --fail-on-empty: exit 1 when no test is found (the default here)' },
  },
  async run({ values, positionals }, io) {
    if (positionals.length === 0) throw new MeshwardError('INVALID_ARGUMENT', 'a directory or file is required');
    if (values['allow-empty'] && values['fail-on-empty']) throw new MeshwardError('INVALID_ARGUMENT', '--allow-empty and --fail-on-empty contradict each other');
    const loaded = loadPolicyFiles(positionals);
    let policy: ReturnType<typeof compileRego>;
    try {
      policy = compileRego(loaded.modules, { data: loaded.data });
    } catch (err) {
      if (!(err instanceof RegoError)) throw err;
      printErrors(err, io);
      return 1;
    }
    const results = runRegoTests(policy, typeof values.run === 'string' ? { filter: new RegExp(values.run) } : {});
    if (values.json) {
      io.stdout(`${JSON.stringify(results, null, 2)}\n`);
    } else {
      for (const r of results) {
        if (values.verbose || r.status !== 'PASS') {
          io.stdout(`${r.name}: ${r.status} (${r.durationMs.toFixed(3)}ms)${r.error ? `\n  ${r.error}` : ''}\n`);
          for (const line of r.output) io.stdout(`  ${line}\n`);
        }
      }
      const passed = results.filter((r) => r.status === 'PASS').length;
      const failed = results.filter((r) => r.status === 'FAIL').length;
      const errored = results.length - passed - failed;
      io.stdout(`${'-'.repeat(80)}\n`);
      if (passed) io.stdout(`PASS: ${passed}/${results.length}\n`);
      if (failed) io.stdout(`FAIL: ${failed}/${results.length}\n`);
      if (errored) io.stdout(`ERROR: ${errored}/${results.length}\n`);
      if (results.length === 0) io.stdout('no tests found\n');
    }
    if (results.length === 0 && !values['allow-empty']) throw noTests(positionals, Object.keys(loaded.modules).length, values.run);
    return results.every((r) => r.status === 'PASS') ? 0 : 2;
  },
};

/** What was searched, so a mis-named file or rule, or a --run that matches nothing, is easy to spot. */
function noTests(paths: string[], modules: number, run: CliValues[string]): MeshwardError {
  const filter = typeof run === 'string' ? ` matching --run ${JSON.stringify(run)}` : '';
  return new MeshwardError('POLICY_NO_TESTS',
    `no tests found${filter} in ${paths.join(', ')} (${modules} Rego module${modules === 1 ? '' : 's'} loaded; tests are rules named test_*); pass --allow-empty to exit 0`);
}

const checkCommand: CliCommand = {
  name: 'policy check',
  summary: 'Parse and compile Rego files; print every error as file:line:col: code: message.',
  usage: 'DIR_OR_FILE...',
  options: { json: { type: 'boolean', description: 'Print JSON instead of text' }, strict: { type: 'boolean', short: 's', description: 'Strict mode, as opa check --strict (unused variables and imports are errors)' } },
  async run({ values, positionals }, io) {
    if (positionals.length === 0) throw new MeshwardError('INVALID_ARGUMENT', 'a directory or file is required');
    const loaded = loadPolicyFiles(positionals);
    try {
      const policy = compileRego(loaded.modules, { strict: values.strict === true });
      const n = Object.keys(loaded.modules).length;
      if (values.json) io.stdout(`${JSON.stringify({ valid: true, modules: n, packages: policy.packages })}\n`);
      else io.stdout(`${n} module${n === 1 ? '' : 's'} OK (${policy.packages.join(', ')})\n`);
      return 0;
    } catch (err) {
      if (!(err instanceof RegoError)) throw err;
      if (values.json) {
        io.stdout(`${JSON.stringify({ valid: false, errors: err.errors.map((e) => ({ code: e.code, message: e.text, location: e.location })) })}\n`);
      } else printErrors(err, io);
      return 1;
    }
  },
};

export const commands: CliCommand[] = [evalCommand, testCommand, checkCommand];
