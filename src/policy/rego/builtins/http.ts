/**
 * http.send is declared so policies type-check, `with http.send as mock` works and request objects
 * are validated with OPA's messages — but meshward never makes outbound calls from a policy: an
 * authorization decision that depends on the network is slow and a server-side request forgery
 * risk. Calls fail with a built-in error (undefined unless strict) after validation.
 */
import { isObject, objectEntries, type Value } from '../value.ts';
import { operandTypeError } from './args.ts';
import { builtin, type BuiltinDefinition } from './definition.ts';
import { BuiltinError, BuiltinTypeError } from './errors.ts';
import { T_OBJECT_ANY } from './types.ts';

const ALLOWED = new Set([
  'method', 'url', 'body', 'enable_redirect', 'force_json_decode', 'force_yaml_decode', 'headers', 'raw_body',
  'tls_use_system_certs', 'tls_ca_cert', 'tls_ca_cert_file', 'tls_ca_cert_env_variable', 'tls_client_cert',
  'tls_client_cert_file', 'tls_client_cert_env_variable', 'tls_client_key', 'tls_client_key_file',
  'tls_client_key_env_variable', 'tls_insecure_skip_verify', 'tls_server_name', 'timeout', 'cache', 'force_cache',
  'force_cache_duration_seconds', 'raise_error', 'caching_mode', 'max_retry_attempts', 'cache_ignored_headers',
]);
const REQUIRED = ['method', 'url'];

function set(names: string[]): string {
  return `{${names.sort().map((n) => JSON.stringify(n)).join(', ')}}`;
}

function send(args: Value[]): Value {
  const req = args[0]!;
  if (!isObject(req)) throw operandTypeError(1, req, 'object');
  const keys = objectEntries(req).map(([k]) => k);
  const invalid = keys.filter((k) => typeof k !== 'string' || !ALLOWED.has(k)).map(String);
  if (invalid.length) throw new BuiltinTypeError(`invalid request parameters(s): ${set(invalid)}`);
  const missing = REQUIRED.filter((k) => !keys.includes(k));
  if (missing.length) throw new BuiltinTypeError(`missing required request parameters(s): ${set(missing)}`);
  throw new BuiltinError('outbound requests are disabled in meshward policies (mock http.send with `with` in tests)');
}

export const HTTP: readonly BuiltinDefinition[] = [builtin('http.send', [T_OBJECT_ANY], T_OBJECT_ANY, send, { nondeterministic: true })];
