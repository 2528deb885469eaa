/**
 * `when` conditions: key → value getter, compiled once. Unknown keys are a compile error (Istio
 * silently ignores them, which turns a typo into an open door).
 */
import { isKnownConditionKey } from '../../config/kinds/authorization-policy.ts';
import { PolicyCompileError } from '../errors.ts';
import type { MatchAuth, MatchFacts, Matcher } from './request.ts';
import { anyOf, ipBlocks, parsePattern, type StringTest } from './strings.ts';

/** Values a key yields: one string, several (audiences, array claims), or none. */
type Getter = (facts: MatchFacts, auth: MatchAuth | undefined) => string | readonly string[] | undefined;

const SIMPLE: Record<string, Getter> = {
  'source.ip': (f) => f.sourceIp,
  'remote.ip': (f) => f.remoteIp,
  'destination.ip': (f) => f.destinationIp,
  'source.namespace': (f) => f.sourceNamespace,
  'source.principal': (f) => f.sourcePrincipal,
  'request.auth.principal': (_f, a) => a?.principal,
  'request.auth.audiences': (_f, a) => a?.audiences,
  'request.auth.presenter': (_f, a) => a?.presenter,
  'destination.port': (f) => (f.port === undefined ? undefined : String(f.port)),
  'connection.sni': (f) => f.sni,
  'request.method': (f) => f.method,
  'request.path': (f) => f.path,
  'request.host': (f) => f.host,
};

const IP_KEYS = new Set(['source.ip', 'remote.ip', 'destination.ip']);

function claimValue(value: unknown): string | readonly string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map((v) => (typeof v === 'string' ? v : JSON.stringify(v)));
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function bracketed(key: string): string[] {
  return [...key.matchAll(/\[([^\][]+)\]/g)].map((m) => m[1]!);
}

function getterFor(key: string): Getter {
  const simple = SIMPLE[key];
  if (simple) return simple;
  if (key.startsWith('request.headers[')) {
    const name = bracketed(key)[0]!.toLowerCase();
    return (f) => f.headers[name];
  }
  if (key.startsWith('request.auth.claims[')) {
    const path = bracketed(key);
    return (_f, a) => {
      let v: unknown = a?.claims;
      for (const p of path) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[p] : undefined;
      return claimValue(v);
    };
  }
  throw new PolicyCompileError(`unknown condition key "${key}"`);
}

function testsAny(get: Getter, test: StringTest): Matcher {
  return (f, a) => {
    const v = get(f, a);
    if (v === undefined) return false;
    if (typeof v === 'string') return test(v);
    for (const x of v) if (test(x)) return true;
    return false;
  };
}

export function compileCondition(c: { key: string; values?: string[]; notValues?: string[] }, where: string): Matcher {
  if (!isKnownConditionKey(c.key)) throw new PolicyCompileError(`${where}: unknown condition key "${c.key}"`);
  const get = getterFor(c.key);
  const toTest = (values: string[]) => (IP_KEYS.has(c.key) ? ipBlocks(values, `${where} ${c.key}`) : anyOf(values.map((v) => parsePattern(v))));
  const positive = c.values ? testsAny(get, toTest(c.values)) : undefined;
  const negative = c.notValues ? testsAny(get, toTest(c.notValues)) : undefined;
  if (positive && negative) return (f, a) => positive(f, a) && !negative(f, a);
  if (positive) return positive;
  if (negative) return (f, a) => !negative(f, a);
  throw new PolicyCompileError(`${where}: condition "${c.key}" needs values or notValues`);
}
