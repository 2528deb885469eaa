/** uuid.*, semver.*, graph.* built-ins. */
import { randomUUID } from 'node:crypto';
import { compareStrings, isObject, isSet, objectGet, objectHas, RegoSet, type Value } from '../value.ts';
import { fail, objectArg, operandTypeError, stringArg } from './args.ts';
import { builtin, type BuiltinDefinition } from './definition.ts';
import { T_ANY, T_BOOLEAN, T_NUMBER, T_OBJECT_ANY, T_STRING, tArray, tSet, tUnion } from './types.ts';

// ----- uuid ----------------------------------------------------------------------------------

function uuidBytes(s: string): Buffer | undefined {
  let t = s;
  if (t.length === 45 && t.toLowerCase().startsWith('urn:uuid:')) t = t.slice(9);
  else if (t.length === 38 && t.startsWith('{') && t.endsWith('}')) t = t.slice(1, -1);
  if (t.length === 36) {
    if (!/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(t)) return undefined;
    t = t.replace(/-/g, '');
  }
  if (!/^[0-9a-fA-F]{32}$/.test(t)) return undefined;
  return Buffer.from(t, 'hex');
}

const GREGORIAN_OFFSET_100NS = 122192928000000000n;

function parseUuid(s: string): Value | undefined {
  const b = uuidBytes(s);
  if (!b) return undefined;
  const version = b[6]! >> 4;
  const v8 = b[8]!;
  const variant = (v8 & 0xc0) === 0x80 ? 'RFC4122' : (v8 & 0x80) === 0 ? 'Reserved' : (v8 & 0xe0) === 0xc0 ? 'Microsoft' : 'Future';
  const out: Record<string, Value> = { version, variant };
  if (version === 1 || version === 2) {
    const t = BigInt(b.readUInt32BE(0)) | (BigInt(b.readUInt16BE(4)) << 32n) | (BigInt(b.readUInt16BE(6) & 0xfff) << 48n);
    const ns = (t - GREGORIAN_OFFSET_100NS) * 100n;
    out.time = Number.isSafeInteger(Number(ns)) ? Number(ns) : ns;
    out.clocksequence = b.readUInt16BE(8) & 0x3fff;
    const node = b.subarray(10, 16);
    out.nodeid = [...node].map((x) => x.toString(16).padStart(2, '0')).join('-');
    out.macvariables = `${node[0]! & 2 ? 'local' : 'global'}:${node[0]! & 1 ? 'multicast' : 'unicast'}`;
    if (version === 2) {
      out.domain = ['Person', 'Group', 'Org'][b[9]!] ?? `Domain${b[9]}`;
      out.id = b.readUInt32BE(0);
    }
  }
  return out;
}

// ----- semver --------------------------------------------------------------------------------

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

function semverOf(s: string, pos: number): RegExpExecArray {
  const m = SEMVER.exec(s);
  if (!m) fail(`operand ${pos}: string ${JSON.stringify(s)} is not a valid SemVer`);
  return m;
}

function compareIdentifiers(a: string, b: string): number {
  const an = /^\d+$/.test(a);
  const bn = /^\d+$/.test(b);
  if (an && bn) return Math.sign(Number(BigInt(a) - BigInt(b)));
  if (an) return -1;
  if (bn) return 1;
  return compareStrings(a, b);
}

export function compareSemver(x: string, y: string): number {
  const a = semverOf(x, 1);
  const b = semverOf(y, 2);
  for (let i = 1; i <= 3; i++) {
    const d = BigInt(a[i]!) - BigInt(b[i]!);
    if (d !== 0n) return d < 0n ? -1 : 1;
  }
  const pa = a[4];
  const pb = b[4];
  if (pa === undefined || pb === undefined) return pa === pb ? 0 : pa === undefined ? 1 : -1;
  const ia = pa.split('.');
  const ib = pb.split('.');
  for (let i = 0; i < Math.min(ia.length, ib.length); i++) {
    const c = compareIdentifiers(ia[i]!, ib[i]!);
    if (c !== 0) return c;
  }
  return Math.sign(ia.length - ib.length);
}

// ----- graph ---------------------------------------------------------------------------------

function edgesOf(graph: Value, node: Value): readonly Value[] {
  const e = objectGet(graph as Parameters<typeof objectGet>[0], node);
  if (Array.isArray(e)) return e;
  if (isSet(e)) return e.values();
  return [];
}

function graphArgs(args: Value[]): [Value, readonly Value[]] {
  const graph = objectArg(args, 0);
  const initial = args[1]!;
  if (Array.isArray(initial)) return [graph, initial];
  if (isSet(initial)) return [graph, initial.values()];
  throw operandTypeError(2, initial, 'array', 'set');
}

function reachable(args: Value[]): RegoSet {
  const [graph, initial] = graphArgs(args);
  const out = new RegoSet();
  const queue = [...initial];
  while (queue.length) {
    const node = queue.shift()!;
    if (out.has(node) || !isObject(graph) || !objectHas(graph, node)) continue;
    out.add(node);
    queue.push(...edgesOf(graph, node));
  }
  return out;
}

/**
 * OPA's reachable_paths: depth-first from each initial node with a visited set per root; a path
 * ends at a node without edges into the graph, or before a visited node that has such edges.
 */
function reachablePaths(args: Value[]): RegoSet {
  const [graph, initial] = graphArgs(args);
  const out = new RegoSet();
  const inGraph = (n: Value) => isObject(graph) && objectHas(graph, n);
  const terminal = (n: Value) => !edgesOf(graph, n).some(inGraph);
  for (const root of initial) {
    const visited = new RegoSet();
    const walk = (node: Value, path: Value[]) => {
      if (!inGraph(node)) {
        if (path.length) out.add(path);
        return;
      }
      if (visited.has(node)) {
        out.add(terminal(node) ? [...path, node] : path);
        return;
      }
      visited.add(node);
      const next = [...path, node];
      if (terminal(node)) {
        out.add(next);
        return;
      }
      for (const e of edgesOf(graph, node)) if (inGraph(e)) walk(e, next);
    };
    walk(root, []);
  }
  return out;
}

export const MISC: readonly BuiltinDefinition[] = [
  // Notes for OPA's explain output; meshward has no explain trace, so trace only succeeds.
  builtin('trace', [T_STRING], T_BOOLEAN, (a) => typeof stringArg(a, 0) === 'string'),
  // The environment and configuration are not exposed to policies (they may hold secrets).
  builtin('opa.runtime', [], T_OBJECT_ANY, () => ({}), { nondeterministic: true }),
  builtin(
    'uuid.rfc4122',
    [T_STRING],
    T_STRING,
    (a, ctx) => {
      const key = `uuid.rfc4122:${stringArg(a, 0)}`;
      const cached = ctx.cache.get(key);
      if (typeof cached === 'string') return cached;
      const id = randomUUID();
      ctx.cache.set(key, id);
      return id;
    },
    { nondeterministic: true },
  ),
  builtin('uuid.parse', [T_STRING], T_OBJECT_ANY, (a) => parseUuid(stringArg(a, 0))),
  builtin('semver.compare', [T_STRING, T_STRING], T_NUMBER, (a) => compareSemver(stringArg(a, 0), stringArg(a, 1))),
  builtin('semver.is_valid', [T_ANY], T_BOOLEAN, (a) => typeof a[0] === 'string' && SEMVER.test(a[0])),
  builtin('graph.reachable', [T_OBJECT_ANY, tUnion(tArray(), tSet())], tSet(), reachable),
  builtin('graph.reachable_paths', [T_OBJECT_ANY, tUnion(tArray(), tSet())], tSet(tArray()), reachablePaths),
];
