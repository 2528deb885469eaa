/**
 * Istio string and IP matching, compiled once into closures (pure).
 * String values: `abc` exact, `abc*` prefix, `*abc` suffix, `*` presence (non-empty). Paths also
 * take templates: `{*}` one segment, `{**}` one or more segments (last operator only).
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { PolicyCompileError } from '../errors.ts';

export type StringTest = (value: string) => boolean;

export type StringPattern =
  | { kind: 'exact'; value: string }
  | { kind: 'prefix'; value: string }
  | { kind: 'suffix'; value: string }
  | { kind: 'presence' }
  /** `literalPrefix`: the literal leading segments (for the rule index), e.g. `/api/v1`. */
  | { kind: 'template'; regex: RegExp; literalPrefix?: string };

export function parsePattern(raw: string, options: { templates?: boolean; lowerCase?: boolean } = {}): StringPattern {
  const v = options.lowerCase ? raw.toLowerCase() : raw;
  if (options.templates && v.includes('{')) {
    const regex = templateRegex(v);
    // The literal segments before the first operator, e.g. `/api/v1` for `/api/v1/{*}/items`.
    const brace = v.indexOf('{');
    const literal = v.slice(0, v.lastIndexOf('/', brace));
    return literal.length > 1 ? { kind: 'template', regex, literalPrefix: literal } : { kind: 'template', regex };
  }
  if (v === '*') return { kind: 'presence' };
  if (v.endsWith('*')) return { kind: 'prefix', value: v.slice(0, -1) };
  if (v.startsWith('*')) return { kind: 'suffix', value: v.slice(1) };
  return { kind: 'exact', value: v };
}

function templateRegex(template: string): RegExp {
  if (!template.startsWith('/')) throw new PolicyCompileError(`path template "${template}" must start with "/"`);
  const segments = template.slice(1).split('/');
  const parts = segments.map((s, i) => {
    if (s === '{*}') return '[^/]+';
    if (s === '{**}') {
      if (i !== segments.length - 1) throw new PolicyCompileError(`path template "${template}": {**} must be the last operator`);
      return '[^/]+(?:/[^/]*)*';
    }
    if (s.includes('{') || s.includes('}') || s.includes('*')) {
      throw new PolicyCompileError(`path template "${template}": a segment is either literal, {*} or {**} (got "${s}")`);
    }
    return s.replace(/[.+?^$()[\]\\|]/g, '\\$&');
  });
  return new RegExp(`^/${parts.join('/')}$`);
}

export function patternTest(p: StringPattern): StringTest {
  switch (p.kind) {
    case 'exact': { const v = p.value; return (s) => s === v; }
    case 'prefix': { const v = p.value; return (s) => s.startsWith(v); }
    case 'suffix': { const v = p.value; return (s) => s.endsWith(v); }
    case 'presence': return (s) => s.length > 0;
    case 'template': { const r = p.regex; return (s) => r.test(s); }
  }
}

/** A test that is true when any pattern matches; exact values go through a Set. */
export function anyOf(patterns: readonly StringPattern[]): StringTest {
  const exact = new Set<string>();
  const others: StringTest[] = [];
  for (const p of patterns) {
    if (p.kind === 'exact') exact.add(p.value);
    else others.push(patternTest(p));
  }
  if (others.length === 0) return (s) => exact.has(s);
  if (exact.size === 0 && others.length === 1) return others[0]!;
  return (s) => {
    if (exact.has(s)) return true;
    for (const t of others) if (t(s)) return true;
    return false;
  };
}

/** CIDR or single-address blocks (`10.0.0.0/8`, `2001:db8::/32`, `1.2.3.4`). */
export function ipBlocks(values: readonly string[], where: string): StringTest {
  const list = new BlockList();
  for (const v of values) {
    const [addr = '', prefixText] = v.split('/');
    const type = isIPv4(addr) ? 'ipv4' : isIPv6(addr) ? 'ipv6' : undefined;
    if (!type) throw new PolicyCompileError(`${where}: "${v}" is not an IP address or CIDR block`);
    if (prefixText === undefined) {
      list.addAddress(addr, type);
      continue;
    }
    const prefix = Number(prefixText);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > (type === 'ipv4' ? 32 : 128)) {
      throw new PolicyCompileError(`${where}: "${v}" has an invalid prefix length`);
    }
    list.addSubnet(addr, prefix, type);
  }
  return (ip) => {
    const type = isIPv4(ip) ? 'ipv4' : isIPv6(ip) ? 'ipv6' : undefined;
    return type !== undefined && list.check(ip, type);
  };
}
