/**
 * json.verify_schema and json.match_schema: JSON Schema (draft 4–7 core keywords) with the error
 * objects and messages of gojsonschema, which OPA uses. Schemas and documents may be given as values
 * or as JSON text. Local `$ref`s (`#`, `#/definitions/...`, `#/$defs/...`) are resolved.
 */
import { equals, isNumber, isObject, isSet, objectEntries, objectGet, stringifyJSON, toNumber, type Value } from '../value.ts';
import { fail, operandTypeError } from './args.ts';
import { builtin, type BuiltinDefinition } from './definition.ts';
import { compileRe2 } from './re2.ts';
import { T_ANY, T_BOOLEAN, tArray, tUnion, T_NULL, T_STRING } from './types.ts';

const PRIMITIVES = ['array', 'boolean', 'integer', 'number', 'null', 'object', 'string'];

class SchemaError extends Error {}

interface SchemaProblem {
  error: string;
  type: string;
  field: string;
  desc: string;
}

function parseOperand(v: Value, pos: number): Value {
  if (typeof v === 'string') {
    try {
      return JSON.parse(v) as Value;
    } catch (err) {
      fail(`operand ${pos}: invalid JSON: ${(err as Error).message}`);
    }
  }
  if (isObject(v) || typeof v === 'boolean') return v;
  throw operandTypeError(pos, v, 'string', 'object');
}

// ----- schema checks (verify_schema) ---------------------------------------------------------

const SUBSCHEMA_MAPS = ['properties', 'patternProperties', 'definitions', '$defs', 'dependencies'];
const SUBSCHEMA_LISTS = ['allOf', 'anyOf', 'oneOf'];
const SUBSCHEMAS = ['not', 'additionalProperties', 'additionalItems', 'contains', 'propertyNames', 'if', 'then', 'else'];

function checkSchema(s: Value): void {
  if (typeof s === 'boolean') return;
  if (!isObject(s)) throw new SchemaError('Invalid JSON schema: schema must be an object or a boolean');
  const type = objectGet(s, 'type');
  if (type !== undefined) {
    const types = Array.isArray(type) ? type : [type];
    for (const t of types) {
      if (typeof t !== 'string' || !PRIMITIVES.includes(t)) {
        throw new SchemaError(`has a primitive type that is NOT VALID -- given: /${typeof t === 'string' ? t : stringifyJSON(t)}/ Expected valid values are:[${PRIMITIVES.join(' ')}]`);
      }
    }
  }
  const required = objectGet(s, 'required');
  if (required !== undefined && !(Array.isArray(required) && required.every((r) => typeof r === 'string'))) {
    throw new SchemaError('Invalid JSON schema: required must be an array of strings');
  }
  const pattern = objectGet(s, 'pattern');
  if (typeof pattern === 'string') {
    try {
      compileRe2(pattern);
    } catch {
      throw new SchemaError(`Invalid regex pattern '${pattern}'`);
    }
  }
  for (const k of SUBSCHEMA_MAPS) {
    const m = objectGet(s, k);
    if (m !== undefined && isObject(m)) for (const [, sub] of objectEntries(m)) if (!Array.isArray(sub)) checkSchema(sub);
  }
  for (const k of SUBSCHEMA_LISTS) {
    const l = objectGet(s, k);
    if (Array.isArray(l)) l.forEach(checkSchema);
  }
  for (const k of SUBSCHEMAS) {
    const sub = objectGet(s, k);
    if (sub !== undefined) checkSchema(sub);
  }
  const items = objectGet(s, 'items');
  if (Array.isArray(items)) items.forEach(checkSchema);
  else if (items !== undefined) checkSchema(items);
}

// ----- validation (match_schema) -------------------------------------------------------------

function jsonType(v: Value): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'boolean';
  if (isNumber(v)) return Number.isInteger(toNumber(v)) ? 'integer' : 'number';
  if (typeof v === 'string') return 'string';
  if (Array.isArray(v) || isSet(v)) return 'array';
  return 'object';
}

function typeMatches(v: Value, t: string): boolean {
  const actual = jsonType(v);
  return actual === t || (t === 'number' && actual === 'integer');
}

class Validator {
  readonly problems: SchemaProblem[] = [];
  readonly #root: Value;

  constructor(root: Value) {
    this.#root = root;
  }

  #add(path: string[], type: string, desc: string): void {
    const field = path.length ? path.join('.') : '(root)';
    this.problems.push({ error: `${field}: ${desc}`, type, field, desc });
  }

  #resolve(ref: string): Value {
    if (!ref.startsWith('#')) fail(`unsupported remote $ref ${JSON.stringify(ref)}`);
    let cur: Value | undefined = this.#root;
    for (const seg of ref.slice(1).split('/').filter(Boolean)) {
      const key = decodeURIComponent(seg).replace(/~1/g, '/').replace(/~0/g, '~');
      cur = cur !== undefined && isObject(cur) ? objectGet(cur, key) : undefined;
    }
    if (cur === undefined) fail(`unresolvable $ref ${JSON.stringify(ref)}`);
    return cur;
  }

  /** True when valid; records problems unless `quiet`. */
  validate(v: Value, s: Value, path: string[], quiet = false): boolean {
    if (s === true) return true;
    if (s === false) {
      if (!quiet) this.#add(path, 'false', 'False always fails validation');
      return false;
    }
    if (!isObject(s)) return true;
    const sub = quiet ? new Validator(this.#root) : this;
    const before = sub.problems.length;
    const get = (k: string) => objectGet(s, k);
    const ref = get('$ref');
    if (typeof ref === 'string') return sub.validate(v, this.#resolve(ref), path, quiet) && true;

    const type = get('type');
    if (type !== undefined) {
      const types = (Array.isArray(type) ? type : [type]) as string[];
      if (!types.some((t) => typeMatches(v, t))) {
        sub.#add(path, 'invalid_type', `Invalid type. Expected: ${types.join('/')}, given: ${jsonType(v)}`);
        return false;
      }
    }
    const en = get('enum');
    if (Array.isArray(en) && !en.some((e) => equals(e, v))) {
      sub.#add(path, 'enum', `${path.length ? path.join('.') : '(root)'} must be one of the following: ${en.map(stringifyJSON).join(', ')}`);
    }
    const cst = get('const');
    if (cst !== undefined && !equals(cst, v)) sub.#add(path, 'const', `${path.length ? path.join('.') : '(root)'} does not match: ${stringifyJSON(cst)}`);

    if (isNumber(v)) sub.#numberChecks(v, s, path);
    if (typeof v === 'string') sub.#stringChecks(v, s, path);
    if (Array.isArray(v)) sub.#arrayChecks(v, s, path);
    if (isObject(v)) sub.#objectChecks(v, s, path);

    const all = get('allOf');
    if (Array.isArray(all) && !all.every((x) => sub.validate(v, x, path, true))) sub.#add(path, 'number_all_of', 'Must validate all the schemas (allOf)');
    const any = get('anyOf');
    if (Array.isArray(any) && !any.some((x) => sub.validate(v, x, path, true))) sub.#add(path, 'number_any_of', 'Must validate at least one schema (anyOf)');
    const one = get('oneOf');
    if (Array.isArray(one) && one.filter((x) => sub.validate(v, x, path, true)).length !== 1) {
      sub.#add(path, 'number_one_of', 'Must validate one and only one schema (oneOf)');
    }
    const not = get('not');
    if (not !== undefined && sub.validate(v, not, path, true)) sub.#add(path, 'number_not', 'Must not validate the schema (not)');
    const cond = get('if');
    if (cond !== undefined) {
      const branch = sub.validate(v, cond, path, true) ? get('then') : get('else');
      if (branch !== undefined) sub.validate(v, branch, path);
    }
    return sub.problems.length === before;
  }

  #numberChecks(n: number | bigint, s: Value & object, path: string[]): void {
    const x = toNumber(n);
    const num = (k: string) => {
      const v = objectGet(s as never, k);
      return isNumber(v) ? toNumber(v) : undefined;
    };
    const exclusiveMin = objectGet(s as never, 'exclusiveMinimum');
    const exclusiveMax = objectGet(s as never, 'exclusiveMaximum');
    const min = num('minimum');
    const max = num('maximum');
    if (min !== undefined && (exclusiveMin === true ? x <= min : x < min)) {
      this.#add(path, exclusiveMin === true ? 'number_gt' : 'number_gte', `Must be greater than ${exclusiveMin === true ? '' : 'or equal to '}${min}`);
    }
    if (max !== undefined && (exclusiveMax === true ? x >= max : x > max)) {
      this.#add(path, exclusiveMax === true ? 'number_lt' : 'number_lte', `Must be less than ${exclusiveMax === true ? '' : 'or equal to '}${max}`);
    }
    if (isNumber(exclusiveMin) && x <= toNumber(exclusiveMin)) this.#add(path, 'number_gt', `Must be greater than ${toNumber(exclusiveMin)}`);
    if (isNumber(exclusiveMax) && x >= toNumber(exclusiveMax)) this.#add(path, 'number_lt', `Must be less than ${toNumber(exclusiveMax)}`);
    const multiple = num('multipleOf');
    if (multiple !== undefined && multiple > 0 && !Number.isInteger(x / multiple)) this.#add(path, 'multiple_of', `Must be a multiple of ${multiple}`);
  }

  #stringChecks(str: string, s: Value & object, path: string[]): void {
    const len = [...str].length;
    const minLength = objectGet(s as never, 'minLength');
    const maxLength = objectGet(s as never, 'maxLength');
    if (isNumber(minLength) && len < toNumber(minLength)) this.#add(path, 'string_gte', `String length must be greater than or equal to ${minLength}`);
    if (isNumber(maxLength) && len > toNumber(maxLength)) this.#add(path, 'string_lte', `String length must be less than or equal to ${maxLength}`);
    const pattern = objectGet(s as never, 'pattern');
    if (typeof pattern === 'string' && !compileRe2(pattern).test(str)) this.#add(path, 'pattern', `Does not match pattern '${pattern}'`);
  }

  #arrayChecks(arr: Value[], s: Value & object, path: string[]): void {
    const minItems = objectGet(s as never, 'minItems');
    const maxItems = objectGet(s as never, 'maxItems');
    if (isNumber(minItems) && arr.length < toNumber(minItems)) this.#add(path, 'array_min_items', `Array must have at least ${minItems} items`);
    if (isNumber(maxItems) && arr.length > toNumber(maxItems)) this.#add(path, 'array_max_items', `Array must have at most ${maxItems} items`);
    if (objectGet(s as never, 'uniqueItems') === true) {
      outer: for (let i = 0; i < arr.length; i++) {
        for (let j = i + 1; j < arr.length; j++) {
          if (equals(arr[i]!, arr[j]!)) {
            this.#add(path, 'unique', `array items[${i},${j}] must be unique`);
            break outer;
          }
        }
      }
    }
    const items = objectGet(s as never, 'items');
    if (Array.isArray(items)) {
      items.forEach((sub, i) => i < arr.length && this.validate(arr[i]!, sub, [...path, String(i)]));
      const extra = objectGet(s as never, 'additionalItems');
      if (extra === false && arr.length > items.length) this.#add(path, 'array_no_additional_items', `No additional items allowed on array`);
      else if (extra !== undefined && isObject(extra)) for (let i = items.length; i < arr.length; i++) this.validate(arr[i]!, extra, [...path, String(i)]);
    } else if (items !== undefined) {
      arr.forEach((x, i) => this.validate(x, items, [...path, String(i)]));
    }
    const contains = objectGet(s as never, 'contains');
    if (contains !== undefined && !arr.some((x) => this.validate(x, contains, path, true))) this.#add(path, 'contains', 'At least one of the items must match');
  }

  #objectChecks(o: Value & object, s: Value & object, path: string[]): void {
    const entries = objectEntries(o as never).filter(([k]) => typeof k === 'string') as Array<readonly [string, Value]>;
    const required = objectGet(s as never, 'required');
    if (Array.isArray(required)) {
      for (const r of required) if (typeof r === 'string' && !entries.some(([k]) => k === r)) this.#add(path, 'required', `${r} is required`);
    }
    const minP = objectGet(s as never, 'minProperties');
    const maxP = objectGet(s as never, 'maxProperties');
    if (isNumber(minP) && entries.length < toNumber(minP)) this.#add(path, 'array_min_properties', `Must have at least ${minP} properties`);
    if (isNumber(maxP) && entries.length > toNumber(maxP)) this.#add(path, 'array_max_properties', `Must have at most ${maxP} properties`);
    const props = objectGet(s as never, 'properties');
    const patternProps = objectGet(s as never, 'patternProperties');
    const additional = objectGet(s as never, 'additionalProperties');
    for (const [k, x] of entries) {
      let matched = false;
      const ps = props !== undefined && isObject(props) ? objectGet(props, k) : undefined;
      if (ps !== undefined) {
        matched = true;
        this.validate(x, ps, [...path, k]);
      }
      if (patternProps !== undefined && isObject(patternProps)) {
        for (const [p, sub] of objectEntries(patternProps)) {
          if (typeof p === 'string' && compileRe2(p).test(k)) {
            matched = true;
            this.validate(x, sub, [...path, k]);
          }
        }
      }
      if (!matched && additional === false) this.#add(path, 'additional_property_not_allowed', `Additional property ${k} is not allowed`);
      else if (!matched && additional !== undefined && isObject(additional)) this.validate(x, additional, [...path, k]);
      const names = objectGet(s as never, 'propertyNames');
      if (names !== undefined && !this.validate(k, names, [...path, k], true)) this.#add(path, 'invalid_property_name', `Property "${k}" does not match pattern`);
    }
    const deps = objectGet(s as never, 'dependencies');
    if (deps !== undefined && isObject(deps)) {
      for (const [k, dep] of objectEntries(deps)) {
        if (!entries.some(([name]) => name === k)) continue;
        if (Array.isArray(dep)) {
          for (const d of dep) if (!entries.some(([name]) => name === d)) this.#add(path, 'missing_dependency', `Has a dependency on ${d}`);
        } else this.validate(o, dep, path);
      }
    }
  }
}

function verifySchema(args: Value[]): Value {
  const schema = parseOperand(args[0]!, 1);
  try {
    checkSchema(schema);
    return [true, null];
  } catch (err) {
    if (err instanceof SchemaError) return [false, `jsonschema: ${err.message}`];
    throw err;
  }
}

function matchSchema(args: Value[]): Value {
  const doc = parseOperand(args[0]!, 1);
  const schema = parseOperand(args[1]!, 2);
  try {
    checkSchema(schema);
  } catch (err) {
    if (err instanceof SchemaError) fail(err.message);
    throw err;
  }
  const v = new Validator(schema);
  v.validate(doc, schema, []);
  const problems = v.problems.map((p) => ({ error: p.error, type: p.type, field: p.field, desc: p.desc }));
  return [problems.length === 0, problems];
}

const T_SCHEMA = tUnion(T_STRING, { kind: 'object', key: T_ANY, value: T_ANY }, T_BOOLEAN);

export const JSON_SCHEMA: readonly BuiltinDefinition[] = [
  builtin('json.verify_schema', [T_SCHEMA], tArray(tUnion(T_BOOLEAN, T_STRING, T_NULL)), verifySchema),
  builtin('json.match_schema', [tUnion(T_STRING, { kind: 'object', key: T_ANY, value: T_ANY }), T_SCHEMA], tArray(), matchSchema),
];
