/** array.*, object.*, set union/intersection, json.filter/remove/patch, type tests and casts. */
import {
  equals,
  isInteger,
  isNumber,
  isObject,
  isSet,
  makeObject,
  NumberText,
  numberFromText,
  objectEntries,
  objectGet,
  objectHas,
  type PlainObject,
  type RegoObject,
  RegoSet,
  toNumber,
  typeName,
  type Value,
} from '../value.ts';
import { arrayArg, fail, intArg, objectArg, operandTypeError, setArg } from './args.ts';
import { builtin, type BuiltinDefinition } from './definition.ts';
import { BuiltinTypeError } from './errors.ts';
import {
  T_ANY,
  T_ARRAY_ANY,
  T_BOOLEAN,
  T_COLLECTION,
  T_NUMBER,
  T_OBJECT_ANY,
  T_SET_ANY,
  T_STRING,
  tArray,
  tSet,
  tUnion,
} from './types.ts';

type Obj = PlainObject | RegoObject;

// ----- arrays ------------------------------------------------------------------------------

function slice(args: Value[]): Value[] {
  const arr = arrayArg(args, 0);
  let start = intArg(args, 1);
  let stop = intArg(args, 2);
  if (start < 0) start = 0;
  if (stop > arr.length) stop = arr.length;
  return start >= stop ? [] : arr.slice(start, stop);
}

/** One level only, as OPA's array.flatten. */
function flatten(v: Value[]): Value[] {
  const out: Value[] = [];
  for (const x of v) {
    if (Array.isArray(x)) out.push(...x);
    else out.push(x);
  }
  return out;
}

// ----- objects -----------------------------------------------------------------------------

/** Keys named by an array, set or object (its keys) operand. */
function keysOperand(args: Value[], i: number): Value[] {
  const v = args[i]!;
  if (Array.isArray(v)) return v;
  if (isSet(v)) return [...v.values()];
  if (isObject(v)) return objectEntries(v).map((e) => e[0]);
  throw operandTypeError(i + 1, v, 'object', 'set', 'array');
}

function objectGetPath(args: Value[]): Value {
  const obj = objectArg(args, 0);
  const key = args[1]!;
  const fallback = args[2]!;
  if (!Array.isArray(key)) {
    const v = objectGet(obj, key);
    return v === undefined ? fallback : v;
  }
  let cur: Value = obj;
  for (const seg of key) {
    if (isObject(cur)) {
      const next = objectGet(cur, seg);
      if (next === undefined) return fallback;
      cur = next;
    } else if (Array.isArray(cur)) {
      if (!isNumber(seg) || !isInteger(seg)) return fallback;
      const idx = toNumber(seg);
      if (idx < 0 || idx >= cur.length) return fallback;
      cur = cur[idx]!;
    } else if (isSet(cur)) {
      if (!cur.has(seg)) return fallback;
      cur = seg;
    } else return fallback;
  }
  return cur;
}

/** Deep merge; values of `b` win, objects merge recursively. */
function union(a: Obj, b: Obj): Obj {
  const out: Array<[Value, Value]> = [];
  for (const [k, v] of objectEntries(a)) out.push([k, v]);
  for (const [k, v] of objectEntries(b)) {
    const existing = objectGet(a, k);
    out.push([k, existing !== undefined && isObject(existing) && isObject(v) ? union(existing, v) : v]);
  }
  return makeObject(out);
}

function subset(sup: Value, sub: Value): boolean {
  if (isObject(sup) && isObject(sub)) {
    for (const [k, v] of objectEntries(sub)) {
      const sv = objectGet(sup, k);
      if (sv === undefined) return false;
      const sameKind = (isObject(sv) && isObject(v)) || (isSet(sv) && isSet(v)) || (Array.isArray(sv) && Array.isArray(v));
      if (sameKind ? !subset(sv, v) : !equals(sv, v)) return false;
    }
    return true;
  }
  if (isSet(sup) && isSet(sub)) {
    for (const v of sub.unorderedValues()) if (!sup.has(v)) return false;
    return true;
  }
  if (Array.isArray(sup) && isSet(sub)) {
    const have = new RegoSet(sup);
    for (const v of sub.unorderedValues()) if (!have.has(v)) return false;
    return true;
  }
  if (Array.isArray(sup) && Array.isArray(sub)) {
    if (sub.length === 0) return true;
    outer: for (let i = 0; i + sub.length <= sup.length; i++) {
      for (let j = 0; j < sub.length; j++) if (!equals(sup[i + j]!, sub[j]!)) continue outer;
      return true;
    }
    return false;
  }
  return false;
}

function collectionOperand(args: Value[], i: number): void {
  const v = args[i]!;
  if (!isObject(v) && !isSet(v) && !Array.isArray(v)) throw operandTypeError(i + 1, v, 'object', 'set', 'array');
}

// ----- json paths --------------------------------------------------------------------------

type Path = Value[];

/** JSON pointer ("/a/b", "/" is the key "") or OPA's relative form ("a/b", "" is the root). */
function parsePathString(s: string): Path {
  if (s === '') return [];
  const body = s.startsWith('/') ? s.slice(1) : s;
  return body.split('/').map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Paths of json.filter/json.remove: strings "a/b" or arrays of segments, in an array or set. */
function pathsOperand(args: Value[], i: number): Path[] {
  const v = args[i]!;
  const items = Array.isArray(v) ? v : isSet(v) ? v.values() : undefined;
  if (!items) throw operandTypeError(i + 1, v, 'set', 'array');
  return items.map((p) => {
    if (typeof p === 'string') return parsePathString(p);
    if (Array.isArray(p)) return p;
    throw new BuiltinTypeError(
      `operand ${i + 1} must be one of {set, array} containing string paths or array of path segments but got ${typeName(p)}`,
    );
  });
}

interface PathTree {
  /** A path ends here: the whole value is selected. */
  leaf: boolean;
  children: Map<string, { seg: Value; tree: PathTree }>;
}

function segKey(seg: Value): string {
  return typeof seg === 'string' ? seg : isNumber(seg) ? String(seg) : JSON.stringify(seg);
}

function buildTree(paths: Path[]): PathTree {
  const root: PathTree = { leaf: false, children: new Map() };
  for (const p of paths) {
    let node = root;
    for (const seg of p) {
      const k = segKey(seg);
      let child = node.children.get(k);
      if (!child) node.children.set(k, (child = { seg, tree: { leaf: false, children: new Map() } }));
      node = child.tree;
    }
    node.leaf = true;
  }
  return root;
}

function arrayIndex(seg: Value, length: number): number | undefined {
  const n = typeof seg === 'string' ? (/^(0|[1-9]\d*)$/.test(seg) ? Number(seg) : Number.NaN) : isNumber(seg) ? toNumber(seg) : Number.NaN;
  return Number.isInteger(n) && n >= 0 && n < length ? n : undefined;
}

function childOf(v: Value, seg: Value): Value | undefined {
  if (isObject(v)) {
    const direct = objectGet(v, seg);
    return direct !== undefined || typeof seg === 'string' ? direct : objectGet(v, segKey(seg));
  }
  if (Array.isArray(v)) {
    const i = arrayIndex(seg, v.length);
    return i === undefined ? undefined : v[i];
  }
  if (isSet(v)) return v.has(seg) ? seg : undefined;
  return undefined;
}

function filterValue(v: Value, tree: PathTree): Value | undefined {
  if (tree.leaf) return v;
  if (isObject(v)) {
    const out: Array<[Value, Value]> = [];
    for (const { seg } of tree.children.values()) {
      const child = childOf(v, seg);
      if (child === undefined) continue;
      const f = filterValue(child, tree.children.get(segKey(seg))!.tree);
      if (f !== undefined) out.push([objectHas(v, seg) ? seg : segKey(seg), f]);
    }
    return makeObject(out);
  }
  if (Array.isArray(v)) {
    const out: Value[] = [];
    v.forEach((x, i) => {
      const child = tree.children.get(String(i));
      if (!child) return;
      const f = filterValue(x, child.tree);
      if (f !== undefined) out.push(f);
    });
    return out;
  }
  if (isSet(v)) {
    const out = new RegoSet();
    for (const x of v.values()) {
      const child = tree.children.get(segKey(x));
      if (child) out.add(x);
    }
    return out;
  }
  return undefined;
}

function removeValue(v: Value, tree: PathTree): Value | undefined {
  if (tree.leaf) return undefined;
  if (isObject(v)) {
    const out: Array<[Value, Value]> = [];
    for (const [k, x] of objectEntries(v)) {
      const child = tree.children.get(segKey(k));
      if (!child) out.push([k, x]);
      else {
        const r = removeValue(x, child.tree);
        if (r !== undefined) out.push([k, r]);
      }
    }
    return makeObject(out);
  }
  if (Array.isArray(v)) {
    const out: Value[] = [];
    v.forEach((x, i) => {
      const child = tree.children.get(String(i));
      if (!child) out.push(x);
      else {
        const r = removeValue(x, child.tree);
        if (r !== undefined) out.push(r);
      }
    });
    return out;
  }
  if (isSet(v)) {
    const out = new RegoSet();
    for (const x of v.values()) if (!tree.children.get(segKey(x))?.tree.leaf) out.add(x);
    return out;
  }
  return v;
}

// ----- json.patch --------------------------------------------------------------------------

function patchPath(v: Value | undefined, what: string): Path {
  if (typeof v === 'string') return parsePathString(v);
  if (Array.isArray(v)) return v;
  fail(`invalid patch: ${what} must be a string or array`);
}

function getAt(doc: Value, path: Path): Value | undefined {
  let cur: Value | undefined = doc;
  for (const seg of path) {
    if (cur === undefined) return undefined;
    cur = childOf(cur, seg);
  }
  return cur;
}

/** Returns a copy of `doc` with `f` applied to the parent of `path`. */
function updateAt(doc: Value, path: Path, f: (parent: Value, last: Value) => Value): Value {
  if (path.length === 0) fail('invalid patch: empty path');
  const [head, ...rest] = path as [Value, ...Value[]];
  if (rest.length === 0) return f(doc, head);
  const child = childOf(doc, head);
  if (child === undefined) fail(`invalid patch: path not found: ${segKey(head)}`);
  return replaceChild(doc, head, updateAt(child, rest, f));
}

function replaceChild(parent: Value, seg: Value, value: Value): Value {
  if (isObject(parent)) return makeObject([...objectEntries(parent).filter(([k]) => segKey(k) !== segKey(seg)), [objectHas(parent, seg) ? seg : segKey(seg), value]]);
  if (Array.isArray(parent)) {
    const i = arrayIndex(seg, parent.length);
    if (i === undefined) fail('invalid patch: array index out of range');
    const out = parent.slice();
    out[i] = value;
    return out;
  }
  if (isSet(parent)) {
    const out = new RegoSet([...parent.values()].filter((x) => !equals(x, seg)));
    return out.add(value);
  }
  fail('invalid patch: path through a scalar');
}

function addChild(parent: Value, seg: Value, value: Value): Value {
  if (isObject(parent)) return makeObject([...objectEntries(parent).filter(([k]) => segKey(k) !== segKey(seg)), [seg, value]]);
  if (Array.isArray(parent)) {
    const i = seg === '-' ? parent.length : arrayIndex(seg, parent.length + 1);
    if (i === undefined) fail('invalid patch: array index out of range');
    return [...parent.slice(0, i), value, ...parent.slice(i)];
  }
  if (isSet(parent)) {
    if (!equals(seg, value)) fail('invalid patch: set element and path segment differ');
    return new RegoSet(parent.values()).add(value);
  }
  fail('invalid patch: path through a scalar');
}

function removeChild(parent: Value, seg: Value): Value {
  if (isObject(parent)) {
    if (childOf(parent, seg) === undefined) fail(`invalid patch: path not found: ${segKey(seg)}`);
    return makeObject(objectEntries(parent).filter(([k]) => segKey(k) !== segKey(seg)));
  }
  if (Array.isArray(parent)) {
    const i = arrayIndex(seg, parent.length);
    if (i === undefined) fail('invalid patch: array index out of range');
    return [...parent.slice(0, i), ...parent.slice(i + 1)];
  }
  if (isSet(parent)) {
    if (!parent.has(seg)) fail(`invalid patch: path not found: ${segKey(seg)}`);
    return new RegoSet(parent.values().filter((x) => !equals(x, seg)));
  }
  fail('invalid patch: path through a scalar');
}

function applyPatch(doc: Value, op: Value): Value {
  if (!isObject(op)) fail('invalid patch: operation must be an object');
  const kind = objectGet(op, 'op');
  const path = patchPath(objectGet(op, 'path'), 'path');
  const value = objectGet(op, 'value');
  switch (kind) {
    case 'add':
      if (value === undefined) fail('invalid patch: add needs a value');
      return path.length === 0 ? value : updateAt(doc, path, (p, last) => addChild(p, last, value));
    case 'remove':
      return updateAt(doc, path, (p, last) => removeChild(p, last));
    case 'replace':
      if (value === undefined) fail('invalid patch: replace needs a value');
      if (path.length === 0) return value;
      return updateAt(doc, path, (p, last) => {
        if (childOf(p, last) === undefined) fail('invalid patch: path not found');
        return replaceChild(p, last, value);
      });
    case 'test': {
      const got = getAt(doc, path);
      if (got === undefined || value === undefined || !equals(got, value)) fail('invalid patch: test failed');
      return doc;
    }
    case 'move':
    case 'copy': {
      const from = patchPath(objectGet(op, 'from'), 'from');
      const moved = getAt(doc, from);
      if (moved === undefined) fail('invalid patch: from path not found');
      const base = kind === 'move' ? updateAt(doc, from, (p, last) => removeChild(p, last)) : doc;
      return path.length === 0 ? moved : updateAt(base, path, (p, last) => addChild(p, last, moved));
    }
    default:
      fail(`invalid patch: unknown op ${JSON.stringify(kind)}`);
  }
}

// ----- casts and types ---------------------------------------------------------------------

function toNumberCast(v: Value): Value {
  if (v === null) return 0;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (isNumber(v) || v instanceof NumberText) return v;
  if (typeof v === 'string') {
    // Go's strconv/json number syntax only: no Inf/NaN, no hex, no surrounding space.
    if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(v)) {
      if (/^[+-]?(inf(inity)?|nan)$/i.test(v)) throw new BuiltinTypeError(`operand 1 must be a valid number string but got ${JSON.stringify(v)}`);
      fail('strconv.ParseFloat: parsing ' + JSON.stringify(v) + ': invalid syntax');
    }
    return numberFromText(v.startsWith('+') ? v.slice(1) : v);
  }
  throw operandTypeError(1, v, 'null', 'boolean', 'number', 'string');
}

function typeTest(name: string, t: string): BuiltinDefinition {
  return builtin(name, [T_ANY], T_BOOLEAN, (a) => typeName(a[0]!) === t);
}

function setOfSets(args: Value[]): RegoSet[] {
  const s = setArg(args, 0);
  return s.values().map((x) => {
    if (!isSet(x)) throw new BuiltinTypeError(`operand 1 must be set of sets but got set containing ${typeName(x)}`);
    return x;
  });
}

export const COLLECTIONS: readonly BuiltinDefinition[] = [
  builtin('array.concat', [T_ARRAY_ANY, T_ARRAY_ANY], T_ARRAY_ANY, (a) => [...arrayArg(a, 0), ...arrayArg(a, 1)]),
  builtin('array.slice', [T_ARRAY_ANY, T_NUMBER, T_NUMBER], T_ARRAY_ANY, slice),
  builtin('array.reverse', [T_ARRAY_ANY], T_ARRAY_ANY, (a) => [...arrayArg(a, 0)].reverse()),
  builtin('array.flatten', [T_ARRAY_ANY], T_ARRAY_ANY, (a) => flatten(arrayArg(a, 0))),
  builtin('object.get', [T_OBJECT_ANY, T_ANY, T_ANY], T_ANY, objectGetPath),
  builtin('object.keys', [T_OBJECT_ANY], T_SET_ANY, (a) => new RegoSet(objectEntries(objectArg(a, 0)).map((e) => e[0]))),
  builtin('object.remove', [T_OBJECT_ANY, T_COLLECTION], T_OBJECT_ANY, (a) => {
    const obj = objectArg(a, 0);
    const drop = new RegoSet(keysOperand(a, 1));
    return makeObject(objectEntries(obj).filter(([k]) => !drop.has(k)));
  }),
  builtin('object.filter', [T_OBJECT_ANY, T_COLLECTION], T_OBJECT_ANY, (a) => {
    const obj = objectArg(a, 0);
    const keep = new RegoSet(keysOperand(a, 1));
    return makeObject(objectEntries(obj).filter(([k]) => keep.has(k)));
  }),
  builtin('object.union', [T_OBJECT_ANY, T_OBJECT_ANY], T_OBJECT_ANY, (a) => union(objectArg(a, 0), objectArg(a, 1))),
  builtin('object.union_n', [tArray(T_OBJECT_ANY)], T_OBJECT_ANY, (a) => {
    const objs = arrayArg(a, 0);
    let acc: Obj = {};
    for (const o of objs) {
      if (!isObject(o)) throw new BuiltinTypeError(`operand 1 must be array of object but got array containing ${typeName(o)}`);
      acc = union(acc, o);
    }
    return acc;
  }),
  builtin('object.subset', [T_COLLECTION, T_COLLECTION], T_BOOLEAN, (a) => {
    collectionOperand(a, 0);
    collectionOperand(a, 1);
    return subset(a[0]!, a[1]!);
  }),
  builtin('intersection', [tSet(T_SET_ANY)], T_SET_ANY, (a) => {
    const sets = setOfSets(a);
    if (sets.length === 0) return new RegoSet();
    const [first, ...rest] = sets as [RegoSet, ...RegoSet[]];
    return new RegoSet(first.values().filter((v) => rest.every((s) => s.has(v))));
  }),
  builtin('union', [tSet(T_SET_ANY)], T_SET_ANY, (a) => {
    const out = new RegoSet();
    for (const s of setOfSets(a)) for (const v of s.unorderedValues()) out.add(v);
    return out;
  }),
  builtin('json.filter', [T_OBJECT_ANY, tUnion(tArray(), tSet())], T_ANY, (a) => {
    objectArg(a, 0);
    return filterValue(a[0]!, buildTree(pathsOperand(a, 1))) ?? {};
  }),
  builtin('json.remove', [T_OBJECT_ANY, tUnion(tArray(), tSet())], T_ANY, (a) => {
    objectArg(a, 0);
    return removeValue(a[0]!, buildTree(pathsOperand(a, 1))) ?? {};
  }),
  builtin('json.patch', [T_ANY, tArray(T_OBJECT_ANY)], T_ANY, (a) => {
    const ops = arrayArg(a, 1);
    let doc: Value = a[0] as Value;
    for (const op of ops) doc = applyPatch(doc, op);
    return doc;
  }),
  builtin('to_number', [tUnion(T_NUMBER, T_STRING, T_BOOLEAN, { kind: 'null' })], T_NUMBER, (a) => toNumberCast(a[0]!)),
  typeTest('is_number', 'number'),
  typeTest('is_string', 'string'),
  typeTest('is_boolean', 'boolean'),
  typeTest('is_array', 'array'),
  typeTest('is_set', 'set'),
  typeTest('is_object', 'object'),
  typeTest('is_null', 'null'),
  builtin('type_name', [T_ANY], T_STRING, (a) => typeName(a[0]!)),
];
