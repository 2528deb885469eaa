/**
 * strings.render_template: the core of Go's text/template — `{{.field.path}}`, `$` variables,
 * `if`/`else if`/`else`, `range` (with `$i, $v :=` and `else`), `with`, pipelines with `|`, trim
 * markers `{{-`/`-}}`, comments, and the functions len, index, print, printf, println, eq, ne, lt,
 * le, gt, ge, and, or, not. A missing key prints `<undefined>`, as in OPA.
 */
import { compare, equals, formatNumber, isNumber, isObject, isSet, NumberText, objectEntries, objectGet, type Value } from '../value.ts';
import { fail, objectArg, stringArg } from './args.ts';
import { builtin, type BuiltinDefinition } from './definition.ts';
import { goSprintf } from './sprintf.ts';
import { T_OBJECT_ANY, T_STRING } from './types.ts';

const UNDEFINED = Symbol('undefined');
type TValue = Value | typeof UNDEFINED;

type Node =
  | { t: 'text'; s: string }
  | { t: 'action'; expr: string }
  | { t: 'if'; branches: Array<{ cond: string | null; body: Node[] }> }
  | { t: 'range'; vars: string[]; expr: string; body: Node[]; otherwise: Node[] }
  | { t: 'with'; expr: string; body: Node[]; otherwise: Node[] };

/** Splits the template into text and trimmed action sources. */
function lex(src: string): Array<{ text: string } | { action: string }> {
  const out: Array<{ text: string } | { action: string }> = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) {
      out.push({ text: src.slice(i) });
      break;
    }
    let text = src.slice(i, open);
    const close = src.indexOf('}}', open + 2);
    if (close < 0) fail('template: unclosed action');
    let inner = src.slice(open + 2, close);
    if (inner.startsWith('- ') || inner === '-') {
      text = text.trimEnd();
      inner = inner.slice(1);
    }
    let next = close + 2;
    if (inner.endsWith(' -')) {
      inner = inner.slice(0, -1);
      const rest = src.slice(next);
      next += rest.length - rest.trimStart().length;
    }
    if (text) out.push({ text });
    inner = inner.trim();
    if (!(inner.startsWith('/*') && inner.endsWith('*/'))) out.push({ action: inner });
    i = next;
  }
  return out;
}

function parse(tokens: ReturnType<typeof lex>, pos: { i: number }, stops: string[]): { nodes: Node[]; stop: string } {
  const nodes: Node[] = [];
  while (pos.i < tokens.length) {
    const tok = tokens[pos.i++]!;
    if ('text' in tok) {
      nodes.push({ t: 'text', s: tok.text });
      continue;
    }
    const a = tok.action;
    const word = a.split(/\s+/)[0]!;
    if (stops.includes(word) || (word === 'else' && stops.includes('else'))) return { nodes, stop: a };
    if (word === 'if') {
      const branches: Array<{ cond: string | null; body: Node[] }> = [];
      let cond: string | null = a.slice(2).trim();
      for (;;) {
        const r = parse(tokens, pos, ['else', 'end']);
        branches.push({ cond, body: r.nodes });
        if (r.stop === 'end') break;
        const rest = r.stop.slice(4).trim();
        cond = rest.startsWith('if ') ? rest.slice(3).trim() : null;
        if (cond === null) {
          const last = parse(tokens, pos, ['end']);
          branches.push({ cond: null, body: last.nodes });
          break;
        }
      }
      nodes.push({ t: 'if', branches });
    } else if (word === 'range' || word === 'with') {
      let expr = a.slice(word.length).trim();
      let vars: string[] = [];
      const decl = /^((?:\$\w*\s*,\s*)?\$\w*)\s*:=\s*(.*)$/.exec(expr);
      if (decl) {
        vars = decl[1]!.split(',').map((v) => v.trim());
        expr = decl[2]!;
      }
      const body = parse(tokens, pos, ['else', 'end']);
      const otherwise = body.stop === 'end' ? [] : parse(tokens, pos, ['end']).nodes;
      nodes.push(word === 'range' ? { t: 'range', vars, expr, body: body.nodes, otherwise } : { t: 'with', expr, body: body.nodes, otherwise });
    } else if (word === 'end' || word === 'else') {
      fail(`template: unexpected {{${word}}}`);
    } else nodes.push({ t: 'action', expr: a });
  }
  if (stops.length) fail('template: unexpected EOF');
  return { nodes, stop: '' };
}

interface Scope {
  dot: TValue;
  root: TValue;
  vars: Map<string, TValue>;
}

function field(v: TValue, name: string): TValue {
  if (v === UNDEFINED || !isObject(v)) return UNDEFINED;
  const x = objectGet(v, name);
  return x === undefined ? UNDEFINED : x;
}

function truthy(v: TValue): boolean {
  if (v === UNDEFINED || v === null || v === false || v === '' || v === 0) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isSet(v)) return v.size > 0;
  if (isObject(v)) return objectEntries(v).length > 0;
  return true;
}

/** Go's %v of a JSON-ish value. */
function show(v: TValue): string {
  if (v === UNDEFINED) return '<undefined>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return String(v);
  if (isNumber(v)) return formatNumber(v);
  if (v instanceof NumberText) return v.text();
  if (Array.isArray(v)) return `[${v.map(show).join(' ')}]`;
  if (isSet(v)) return `[${v.values().map(show).join(' ')}]`;
  return `map[${objectEntries(v).map(([k, x]) => `${show(k)}:${show(x)}`).join(' ')}]`;
}

function splitArgs(src: string): string[] {
  const out: string[] = [];
  const re = /"(?:[^"\\]|\\.)*"|`[^`]*`|\([^()]*\)|[^\s()]+/g;
  for (const m of src.matchAll(re)) out.push(m[0]);
  return out;
}

function operand(tok: string, s: Scope): TValue {
  if (tok.startsWith('"')) return JSON.parse(tok) as string;
  if (tok.startsWith('`')) return tok.slice(1, -1);
  if (tok.startsWith('(')) return pipeline(tok.slice(1, -1), s);
  if (/^-?\d+(\.\d+)?$/.test(tok)) return Number(tok);
  if (tok === 'true' || tok === 'false') return tok === 'true';
  if (tok === 'nil') return null;
  if (tok === '.') return s.dot;
  if (tok.startsWith('$')) {
    const [name, ...path] = tok.split('.');
    let v = name === '$' ? s.root : (s.vars.get(name!) ?? fail(`template: undefined variable ${name}`));
    for (const p of path) v = field(v, p);
    return v;
  }
  if (tok.startsWith('.')) return tok.slice(1).split('.').reduce<TValue>((acc, p) => field(acc, p), s.dot);
  fail(`template: function ${JSON.stringify(tok)} not defined`);
}

const cmp = (a: TValue, b: TValue) => compare(a === UNDEFINED ? null : a, b === UNDEFINED ? null : b);

function call(fn: string, args: TValue[]): TValue {
  const v = (x: TValue) => (x === UNDEFINED ? null : x);
  switch (fn) {
    case 'len': {
      const x = args[0];
      if (x === undefined || x === UNDEFINED) return fail('template: len of undefined value');
      if (typeof x === 'string') return Buffer.byteLength(x);
      if (Array.isArray(x)) return x.length;
      if (isSet(x)) return x.size;
      if (isObject(x)) return objectEntries(x).length;
      return fail('template: len of invalid value');
    }
    case 'index':
      return args.slice(1).reduce<TValue>((acc, k) => (Array.isArray(acc) && typeof k === 'number' ? (acc[k] ?? UNDEFINED) : field(acc, String(k))), args[0]!);
    case 'print':
      return args.map(show).join('');
    case 'println':
      return `${args.map(show).join(' ')}\n`;
    case 'printf':
      return goSprintf(String(args[0]), args.slice(1).map(v));
    case 'eq':
      return args.slice(1).some((x) => equals(v(args[0]!), v(x)));
    case 'ne':
      return !equals(v(args[0]!), v(args[1]!));
    case 'lt':
      return cmp(args[0]!, args[1]!) < 0;
    case 'le':
      return cmp(args[0]!, args[1]!) <= 0;
    case 'gt':
      return cmp(args[0]!, args[1]!) > 0;
    case 'ge':
      return cmp(args[0]!, args[1]!) >= 0;
    case 'and':
      return args.find((x) => !truthy(x)) ?? args[args.length - 1]!;
    case 'or':
      return args.find((x) => truthy(x)) ?? args[args.length - 1]!;
    case 'not':
      return !truthy(args[0]!);
    default:
      return fail(`template: function ${JSON.stringify(fn)} not defined`);
  }
}

const FUNCTIONS = new Set(['len', 'index', 'print', 'printf', 'println', 'eq', 'ne', 'lt', 'le', 'gt', 'ge', 'and', 'or', 'not']);

function pipeline(src: string, s: Scope, declare?: string[]): TValue {
  let prev: TValue | undefined;
  for (const stage of src.split(/\|(?=(?:[^"`]*["`][^"`]*["`])*[^"`]*$)/)) {
    const toks = splitArgs(stage.trim());
    if (toks.length === 0) fail('template: empty pipeline');
    const [head, ...rest] = toks as [string, ...string[]];
    const args = rest.map((t) => operand(t, s));
    if (prev !== undefined) args.push(prev);
    prev = FUNCTIONS.has(head) ? call(head, args) : operand(head, s);
  }
  if (declare?.length) s.vars.set(declare[0]!, prev!);
  return prev!;
}

function exec(nodes: Node[], s: Scope): string {
  let out = '';
  for (const n of nodes) {
    switch (n.t) {
      case 'text':
        out += n.s;
        break;
      case 'action': {
        const decl = /^(\$\w+)\s*:?=\s*(.*)$/.exec(n.expr);
        if (decl) pipeline(decl[2]!, s, [decl[1]!]);
        else out += show(pipeline(n.expr, s));
        break;
      }
      case 'if': {
        const branch = n.branches.find((b) => b.cond === null || truthy(pipeline(b.cond, s)));
        if (branch) out += exec(branch.body, s);
        break;
      }
      case 'with': {
        const v = pipeline(n.expr, s);
        out += truthy(v) ? exec(n.body, { ...s, dot: v }) : exec(n.otherwise, s);
        break;
      }
      case 'range': {
        const v = pipeline(n.expr, s);
        const entries: Array<[Value, Value]> =
          v === UNDEFINED
            ? []
            : Array.isArray(v)
              ? v.map((x, i) => [i, x])
              : isSet(v)
                ? v.values().map((x, i) => [i, x] as [Value, Value])
                : isObject(v)
                  ? (objectEntries(v) as Array<[Value, Value]>)
                  : isNumber(v)
                    ? Array.from({ length: Number(v) }, (_, i) => [i, i] as [Value, Value])
                    : [];
        if (entries.length === 0) {
          out += exec(n.otherwise, s);
          break;
        }
        for (const [k, x] of entries) {
          const vars = new Map(s.vars);
          if (n.vars.length === 1) vars.set(n.vars[0]!, x);
          if (n.vars.length === 2) {
            vars.set(n.vars[0]!, k);
            vars.set(n.vars[1]!, x);
          }
          out += exec(n.body, { ...s, dot: x, vars });
        }
        break;
      }
    }
  }
  return out;
}

export function renderTemplate(template: string, vars: Value): string {
  const { nodes } = parse(lex(template), { i: 0 }, []);
  return exec(nodes, { dot: vars, root: vars, vars: new Map([['$', vars]]) });
}

export const TEMPLATE: readonly BuiltinDefinition[] = [
  builtin('strings.render_template', [T_STRING, T_OBJECT_ANY], T_STRING, (a) => renderTemplate(stringArg(a, 0), objectArg(a, 1))),
];
