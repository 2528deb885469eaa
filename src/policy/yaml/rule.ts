/**
 * One AuthorizationPolicy rule → a matcher closure plus the keys it can be indexed by (pure).
 * Semantics (Istio): within a source/operation fields are ANDed and values ORed; sources are ORed,
 * operations are ORed; a rule is from AND to AND when. An empty rule matches everything.
 */
import type { AuthorizationRule } from '../../config/kinds/authorization-policy.ts';
import { compileCondition } from './conditions.ts';
import type { MatchAuth, MatchFacts, Matcher } from './request.ts';
import { anyOf, ipBlocks, parsePattern, type StringPattern, type StringTest } from './strings.ts';

type Source = NonNullable<AuthorizationRule['from']>[number]['source'];
type Operation = NonNullable<AuthorizationRule['to']>[number]['operation'];
type Value = (facts: MatchFacts, auth: MatchAuth | undefined) => string | undefined;

/** How the rule index can find this rule without evaluating it. */
export type IndexKeys =
  /** `prefixes`: whole leading segments every matching path starts with (followed by `/`), e.g. `/api/v1`. */
  | { kind: 'path'; exact: string[]; prefixes: string[] }
  | { kind: 'principal'; values: string[] }
  | { kind: 'none' };

export interface CompiledRule {
  match: Matcher;
  keys: IndexKeys;
}

const ALWAYS: Matcher = () => true;

/** `values` and `notValues` of one field ANDed; undefined when the field is unconstrained. */
function field(value: Value, test: (values: string[]) => StringTest, values: string[] | undefined, notValues: string[] | undefined): Matcher | undefined {
  const pos = values ? test(values) : undefined;
  const neg = notValues ? test(notValues) : undefined;
  if (pos && neg) return (f, a) => { const v = value(f, a); return v !== undefined && pos(v) && !neg(v); };
  if (pos) return (f, a) => { const v = value(f, a); return v !== undefined && pos(v); };
  if (neg) return (f, a) => { const v = value(f, a); return v === undefined || !neg(v); };
  return undefined;
}

function all(matchers: (Matcher | undefined)[]): Matcher {
  const ms = matchers.filter((m): m is Matcher => m !== undefined);
  if (ms.length === 0) return ALWAYS;
  if (ms.length === 1) return ms[0]!;
  return (f, a) => {
    for (const m of ms) if (!m(f, a)) return false;
    return true;
  };
}

function any(matchers: Matcher[]): Matcher {
  if (matchers.length === 1) return matchers[0]!;
  return (f, a) => {
    for (const m of matchers) if (m(f, a)) return true;
    return false;
  };
}

const strings = (options: { templates?: boolean; lowerCase?: boolean } = {}) => (values: string[]) => anyOf(values.map((v) => parsePattern(v, options)));
const hosts = (values: string[]) => anyOf(values.map((v) => parsePattern(v.replace(/:(\d+|\*)$/, ''), { lowerCase: true })));

function compileSource(s: Source, where: string): Matcher {
  const ips = (key: string) => (values: string[]) => ipBlocks(values, `${where} ${key}`);
  return all([
    field((f) => f.sourcePrincipal, strings(), s.principals, s.notPrincipals),
    field((_f, a) => a?.principal, strings(), s.requestPrincipals, s.notRequestPrincipals),
    field((f) => f.sourceNamespace, strings(), s.namespaces, s.notNamespaces),
    field((f) => f.sourceIp, ips('ipBlocks'), s.ipBlocks, s.notIpBlocks),
    field((f) => f.remoteIp, ips('remoteIpBlocks'), s.remoteIpBlocks, s.notRemoteIpBlocks),
  ]);
}

function compileOperation(o: Operation): Matcher {
  return all([
    field((f) => f.host, hosts, o.hosts, o.notHosts),
    field((f) => (f.port === undefined ? undefined : String(f.port)), strings(), o.ports, o.notPorts),
    field((f) => f.method, strings(), o.methods, o.notMethods),
    field((f) => f.path, strings({ templates: true }), o.paths, o.notPaths),
  ]);
}

export function compileRule(rule: AuthorizationRule, where: string): CompiledRule {
  const parts: Matcher[] = [];
  if (rule.from && rule.from.length > 0) parts.push(any(rule.from.map((f, i) => compileSource(f.source, `${where}.from[${i}]`))));
  if (rule.to && rule.to.length > 0) parts.push(any(rule.to.map((t) => compileOperation(t.operation))));
  (rule.when ?? []).forEach((c, i) => parts.push(compileCondition(c, `${where}.when[${i}]`)));
  return { match: all(parts), keys: indexKeys(rule) };
}

/** `/api/v1/orders*` → `/api/v1`; undefined when the pattern pins no whole leading segment. */
function segmentPrefixOf(p: StringPattern): string | undefined {
  if (p.kind === 'template') return p.literalPrefix;
  if (p.kind !== 'prefix' || !p.value.startsWith('/')) return undefined;
  const end = p.value.lastIndexOf('/');
  return end > 0 ? p.value.slice(0, end) : undefined;
}

function pathKeys(ops: Operation[]): IndexKeys | undefined {
  const exact: string[] = [];
  const prefixes: string[] = [];
  for (const o of ops) {
    if (!o.paths || o.paths.length === 0) return undefined;
    for (const raw of o.paths) {
      const p = parsePattern(raw, { templates: true });
      if (p.kind === 'exact') { exact.push(p.value); continue; }
      const prefix = segmentPrefixOf(p);
      if (prefix === undefined) return undefined;
      prefixes.push(prefix);
    }
  }
  return { kind: 'path', exact: [...new Set(exact)], prefixes: [...new Set(prefixes)] };
}

function principalKeys(sources: Source[]): IndexKeys | undefined {
  const values: string[] = [];
  for (const s of sources) {
    if (!s.principals || s.principals.length === 0) return undefined;
    for (const raw of s.principals) {
      const p = parsePattern(raw);
      if (p.kind !== 'exact') return undefined;
      values.push(p.value);
    }
  }
  return { kind: 'principal', values: [...new Set(values)] };
}

/**
 * The most selective key the rule can be found by: exact paths, then exact source principals,
 * then path prefixes (many rules share `/api`; few share a caller), else none.
 */
export function indexKeys(rule: AuthorizationRule): IndexKeys {
  const byPath = rule.to && rule.to.length > 0 ? pathKeys(rule.to.map((t) => t.operation)) : undefined;
  if (byPath?.kind === 'path' && byPath.prefixes.length === 0) return byPath;
  const byPrincipal = rule.from && rule.from.length > 0 ? principalKeys(rule.from.map((f) => f.source)) : undefined;
  return byPrincipal ?? byPath ?? { kind: 'none' };
}
