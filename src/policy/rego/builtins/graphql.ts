/**
 * graphql.* built-ins. Parsing and validation use the reference implementation (graphql-js); the
 * results are shaped like the gqlparser AST OPA returns (Go field names, empty lists and nulls
 * pruned), and syntax errors are worded like gqlparser's with OPA's "in GraphQL string at location
 * L:C" suffix.
 */
import {
  buildASTSchema,
  type ConstDirectiveNode,
  type DefinitionNode,
  type DirectiveNode,
  type DocumentNode,
  type FieldDefinitionNode,
  GraphQLBoolean,
  GraphQLError,
  GraphQLObjectType,
  GraphQLSchema,
  type InputValueDefinitionNode,
  Kind,
  parse,
  type SelectionNode,
  type TypeNode,
  validate,
  validateSchema,
  type ValueNode,
  type VariableDefinitionNode,
} from 'graphql';
import { fromJSON, isObject, type Value } from '../value.ts';
import { fail, operandTypeError } from './args.ts';
import { builtin, type BuiltinDefinition } from './definition.ts';
import { T_ANY, T_BOOLEAN, T_OBJECT_ANY, T_STRING, tArray, tUnion } from './types.ts';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Drops nulls, empty lists and empty objects, as OPA does with gqlparser's AST. */
function prune(v: Json | undefined): Json | undefined {
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) {
    const items = v.map(prune).filter((x): x is Json => x !== undefined);
    return items.length ? items : undefined;
  }
  if (typeof v === 'object') {
    const out: { [k: string]: Json } = {};
    for (const [k, x] of Object.entries(v)) {
      const p = prune(x);
      if (p !== undefined) out[k] = p;
    }
    return Object.keys(out).length ? out : undefined;
  }
  return v;
}

// ----- errors --------------------------------------------------------------------------------

/** The string literal starting at `offset` (for gqlparser's `Unexpected String "..."`). */
function stringAt(source: string, offset: number): string {
  const m = /^"((?:[^"\\\n]|\\.)*)"/.exec(source.slice(offset));
  return m ? m[1]! : '';
}

/** gqlparser wording for a graphql-js syntax error, with OPA's location suffix. */
function syntaxError(err: GraphQLError, source: string): never {
  let msg = err.message.replace(/^Syntax Error: /, '').replace(/\.$/, '');
  const offset = err.positions?.[0] ?? 0;
  let loc = err.locations?.[0] ?? { line: 0, column: 0 };
  msg = msg.replace(/found "([^"A-Za-z0-9]{1,3})"/, 'found $1').replace(/^Expected "([^"A-Za-z0-9]{1,3})"/, 'Expected $1');
  msg = msg.replace(/^Unexpected "([^"A-Za-z0-9]{1,3})"/, 'Unexpected $1');
  if (/^Unexpected character|^Unterminated string|^Invalid character/.test(msg)) msg = 'Unexpected <Invalid>';
  if (/^Unexpected variable "\$/.test(msg)) msg = 'Unexpected $';
  if (/^Unexpected description/.test(msg) || /^Unexpected string /i.test(msg)) {
    // gqlparser names the string token and points just inside its opening quote.
    msg = `Unexpected String "${stringAt(source, offset)}"`;
    loc = { line: loc.line, column: loc.column + 1 };
  }
  if (/^Expected Name, found [}\])]$/.test(msg)) {
    // An empty `{}` list: gqlparser reports the missing definition instead of the missing name.
    const prev = source.slice(0, offset).trimEnd().slice(-1);
    if (prev === '{' || prev === '(') msg = `expected at least one definition, found ${msg.slice(-1)}`;
  }
  fail(`${msg} in GraphQL string at location ${loc.line}:${loc.column}`);
}

function parseDocument(source: string): DocumentNode {
  // gqlparser accepts an empty document.
  if (source.trim() === '') return { kind: Kind.DOCUMENT, definitions: [] };
  try {
    return parse(source, { noLocation: false, allowLegacyFragmentVariables: true });
  } catch (err) {
    if (err instanceof GraphQLError) syntaxError(err, source);
    throw err;
  }
}

// ----- AST conversion (gqlparser shape) -------------------------------------------------------

const VALUE_KIND: Record<string, number> = {
  [Kind.VARIABLE]: 0,
  [Kind.INT]: 1,
  [Kind.FLOAT]: 2,
  [Kind.STRING]: 3,
  [Kind.BOOLEAN]: 5,
  [Kind.NULL]: 6,
  [Kind.ENUM]: 7,
  [Kind.LIST]: 8,
  [Kind.OBJECT]: 9,
};

function valueJson(v: ValueNode): Json {
  const base = { ExpectedTypeHasDefault: false };
  switch (v.kind) {
    case Kind.VARIABLE:
      return { ...base, Kind: 0, Raw: v.name.value };
    case Kind.INT:
    case Kind.FLOAT:
    case Kind.ENUM:
      return { ...base, Kind: VALUE_KIND[v.kind]!, Raw: v.value };
    case Kind.STRING:
      return { ...base, Kind: v.block ? 4 : 3, Raw: v.value };
    case Kind.BOOLEAN:
      return { ...base, Kind: 5, Raw: v.value ? 'true' : 'false' };
    case Kind.NULL:
      return { ...base, Kind: 6, Raw: 'null' };
    case Kind.LIST:
      return { ...base, Kind: 8, Raw: '', Children: v.values.map((x) => ({ Name: '', Value: valueJson(x) })) };
    case Kind.OBJECT:
      return { ...base, Kind: 9, Raw: '', Children: v.fields.map((f) => ({ Name: f.name.value, Value: valueJson(f.value) })) };
  }
}

function typeJson(t: TypeNode): Json {
  switch (t.kind) {
    case Kind.NAMED_TYPE:
      return { NamedType: t.name.value, NonNull: false };
    case Kind.LIST_TYPE:
      return { NamedType: '', Elem: typeJson(t.type), NonNull: false };
    case Kind.NON_NULL_TYPE:
      return { ...(typeJson(t.type) as { [k: string]: Json }), NonNull: true };
  }
}

function directivesJson(ds: readonly (DirectiveNode | ConstDirectiveNode)[] | undefined): Json {
  return (ds ?? []).map((d) => ({ Name: d.name.value, Arguments: argsJson(d.arguments), Location: '' }));
}

function argsJson(args: DirectiveNode['arguments']): Json {
  return (args ?? []).map((a) => ({ Name: a.name.value, Value: valueJson(a.value) }));
}

function selectionsJson(sel: readonly SelectionNode[] | undefined): Json {
  return (sel ?? []).map((s): Json => {
    switch (s.kind) {
      case Kind.FIELD:
        return {
          Alias: s.alias?.value ?? s.name.value,
          Name: s.name.value,
          Arguments: argsJson(s.arguments),
          Directives: directivesJson(s.directives),
          SelectionSet: selectionsJson(s.selectionSet?.selections),
        };
      case Kind.FRAGMENT_SPREAD:
        return { Name: s.name.value, Directives: directivesJson(s.directives) };
      case Kind.INLINE_FRAGMENT:
        return {
          TypeCondition: s.typeCondition?.name.value ?? '',
          Directives: directivesJson(s.directives),
          SelectionSet: selectionsJson(s.selectionSet.selections),
        };
    }
  });
}

function variablesJson(vars: readonly VariableDefinitionNode[] | undefined): Json {
  return (vars ?? []).map((v) => ({
    Variable: v.variable.name.value,
    Type: typeJson(v.type),
    DefaultValue: v.defaultValue ? valueJson(v.defaultValue) : null,
    Directives: directivesJson(v.directives),
    Used: false,
  }));
}

function queryJson(doc: DocumentNode): Json {
  const operations: Json[] = [];
  const fragments: Json[] = [];
  for (const d of doc.definitions) {
    if (d.kind === Kind.OPERATION_DEFINITION) {
      operations.push({
        Operation: d.operation,
        Name: d.name?.value ?? '',
        VariableDefinitions: variablesJson(d.variableDefinitions),
        Directives: directivesJson(d.directives),
        SelectionSet: selectionsJson(d.selectionSet.selections),
      });
    } else if (d.kind === Kind.FRAGMENT_DEFINITION) {
      fragments.push({
        Name: d.name.value,
        VariableDefinition: variablesJson(d.variableDefinitions),
        TypeCondition: d.typeCondition.name.value,
        Directives: directivesJson(d.directives),
        SelectionSet: selectionsJson(d.selectionSet.selections),
      });
    }
  }
  return { Operations: operations, Fragments: fragments };
}

function inputValueJson(a: InputValueDefinitionNode): Json {
  return {
    Description: a.description?.value ?? '',
    Name: a.name.value,
    DefaultValue: a.defaultValue ? valueJson(a.defaultValue) : null,
    Type: typeJson(a.type),
    Directives: directivesJson(a.directives),
  };
}

function fieldJson(f: FieldDefinitionNode | InputValueDefinitionNode): Json {
  if (f.kind === Kind.INPUT_VALUE_DEFINITION) return inputValueJson(f);
  return {
    Description: f.description?.value ?? '',
    Name: f.name.value,
    Arguments: (f.arguments ?? []).map(inputValueJson),
    Type: typeJson(f.type),
    Directives: directivesJson(f.directives),
  };
}

const DEFINITION_KIND: Partial<Record<string, string>> = {
  [Kind.SCALAR_TYPE_DEFINITION]: 'SCALAR',
  [Kind.SCALAR_TYPE_EXTENSION]: 'SCALAR',
  [Kind.OBJECT_TYPE_DEFINITION]: 'OBJECT',
  [Kind.OBJECT_TYPE_EXTENSION]: 'OBJECT',
  [Kind.INTERFACE_TYPE_DEFINITION]: 'INTERFACE',
  [Kind.INTERFACE_TYPE_EXTENSION]: 'INTERFACE',
  [Kind.UNION_TYPE_DEFINITION]: 'UNION',
  [Kind.UNION_TYPE_EXTENSION]: 'UNION',
  [Kind.ENUM_TYPE_DEFINITION]: 'ENUM',
  [Kind.ENUM_TYPE_EXTENSION]: 'ENUM',
  [Kind.INPUT_OBJECT_TYPE_DEFINITION]: 'INPUT_OBJECT',
  [Kind.INPUT_OBJECT_TYPE_EXTENSION]: 'INPUT_OBJECT',
};

function definitionJson(d: DefinitionNode): Json {
  const n = d as DefinitionNode & {
    name: { value: string };
    description?: { value: string };
    directives?: readonly ConstDirectiveNode[];
    interfaces?: readonly { name: { value: string } }[];
    fields?: readonly (FieldDefinitionNode | InputValueDefinitionNode)[];
    types?: readonly { name: { value: string } }[];
    values?: readonly { name: { value: string }; description?: { value: string }; directives?: readonly ConstDirectiveNode[] }[];
  };
  return {
    Kind: DEFINITION_KIND[d.kind] ?? '',
    Description: n.description?.value ?? '',
    Name: n.name.value,
    Directives: directivesJson(n.directives),
    Interfaces: (n.interfaces ?? []).map((i) => i.name.value),
    Fields: (n.fields ?? []).map(fieldJson),
    Types: (n.types ?? []).map((t) => t.name.value),
    EnumValues: (n.values ?? []).map((v) => ({ Description: v.description?.value ?? '', Name: v.name.value, Directives: directivesJson(v.directives) })),
    BuiltIn: false,
  };
}

function schemaJson(doc: DocumentNode): Json {
  const out: Record<string, Json[]> = { Schema: [], SchemaExtension: [], Directives: [], Definitions: [], Extensions: [] };
  for (const d of doc.definitions) {
    switch (d.kind) {
      case Kind.SCHEMA_DEFINITION:
      case Kind.SCHEMA_EXTENSION:
        out[d.kind === Kind.SCHEMA_DEFINITION ? 'Schema' : 'SchemaExtension']!.push({
          Description: d.kind === Kind.SCHEMA_DEFINITION ? (d.description?.value ?? '') : '',
          Directives: directivesJson(d.directives),
          OperationTypes: (d.operationTypes ?? []).map((o) => ({ Operation: o.operation, Type: o.type.name.value })),
        });
        break;
      case Kind.DIRECTIVE_DEFINITION:
        out.Directives!.push({
          Description: d.description?.value ?? '',
          Name: d.name.value,
          Arguments: (d.arguments ?? []).map(inputValueJson),
          Locations: d.locations.map((l) => l.value),
          IsRepeatable: d.repeatable,
        });
        break;
      default:
        if (d.kind.endsWith('Extension')) out.Extensions!.push(definitionJson(d));
        else if (d.kind.endsWith('Definition') && DEFINITION_KIND[d.kind]) out.Definitions!.push(definitionJson(d));
    }
  }
  return out as Json;
}

function toValue(j: Json): Value {
  return fromJSON(prune(j) ?? {});
}

// ----- validation ----------------------------------------------------------------------------

// ----- AST objects back to text (operands may be ASTs from parse_query / parse_schema) -------

type Node = { [k: string]: Value };

function node(v: Value | undefined): Node {
  return (v !== undefined && isObject(v) && !(v instanceof Map) ? v : {}) as Node;
}

function list(v: Value | undefined): Node[] {
  return Array.isArray(v) ? (v.map(node) as Node[]) : [];
}

function str(v: Value | undefined): string {
  return typeof v === 'string' ? v : '';
}

function printValue(v: Node): string {
  const raw = str(v.Raw);
  switch (v.Kind) {
    case 0:
      return `$${raw}`;
    case 3:
    case 4:
      return JSON.stringify(raw);
    case 6:
      return 'null';
    case 8:
      return `[${list(v.Children).map((c) => printValue(node(c.Value))).join(', ')}]`;
    case 9:
      return `{${list(v.Children).map((c) => `${str(c.Name)}: ${printValue(node(c.Value))}`).join(', ')}}`;
    default:
      return raw;
  }
}

function printType(t: Node): string {
  const base = str(t.NamedType) || `[${printType(node(t.Elem))}]`;
  return t.NonNull === true ? `${base}!` : base;
}

function printArgs(args: Node[]): string {
  return args.length ? `(${args.map((a) => `${str(a.Name)}: ${printValue(node(a.Value))}`).join(', ')})` : '';
}

function printDirectives(ds: Node[]): string {
  return ds.map((d) => ` @${str(d.Name)}${printArgs(list(d.Arguments))}`).join('');
}

function printVariables(vs: Node[]): string {
  if (!vs.length) return '';
  const one = (v: Node) =>
    `$${str(v.Variable)}: ${printType(node(v.Type))}${v.DefaultValue ? ` = ${printValue(node(v.DefaultValue))}` : ''}${printDirectives(list(v.Directives))}`;
  return `(${vs.map(one).join(', ')})`;
}

function printSelections(sel: Node[]): string {
  if (!sel.length) return '';
  const one = (s: Node): string => {
    if ('TypeCondition' in s) {
      const on = str(s.TypeCondition) ? ` on ${str(s.TypeCondition)}` : '';
      return `...${on}${printDirectives(list(s.Directives))}${printSelections(list(s.SelectionSet))}`;
    }
    if (!('Alias' in s)) return `...${str(s.Name)}${printDirectives(list(s.Directives))}`;
    const alias = str(s.Alias) && s.Alias !== s.Name ? `${str(s.Alias)}: ` : '';
    return `${alias}${str(s.Name)}${printArgs(list(s.Arguments))}${printDirectives(list(s.Directives))}${printSelections(list(s.SelectionSet))}`;
  };
  return ` { ${sel.map(one).join(' ')} }`;
}

function printQuery(q: Node): string {
  const ops = list(q.Operations).map(
    (o) => `${str(o.Operation) || 'query'} ${str(o.Name)}${printVariables(list(o.VariableDefinitions))}${printDirectives(list(o.Directives))}${printSelections(list(o.SelectionSet))}`,
  );
  const frags = list(q.Fragments).map(
    (f) =>
      `fragment ${str(f.Name)}${printVariables(list(f.VariableDefinition))} on ${str(f.TypeCondition)}${printDirectives(list(f.Directives))}${printSelections(list(f.SelectionSet))}`,
  );
  return [...ops, ...frags].join('\n');
}

function printDescription(d: Node): string {
  return str(d.Description) ? `${JSON.stringify(str(d.Description))}\n` : '';
}

function printInputValue(a: Node): string {
  const dflt = a.DefaultValue ? ` = ${printValue(node(a.DefaultValue))}` : '';
  return `${printDescription(a)}${str(a.Name)}: ${printType(node(a.Type))}${dflt}${printDirectives(list(a.Directives))}`;
}

function printField(f: Node): string {
  const args = list(f.Arguments);
  if (!('Arguments' in f) && f.DefaultValue !== undefined) return printInputValue(f);
  return `${printDescription(f)}${str(f.Name)}${args.length ? `(${args.map(printInputValue).join(', ')})` : ''}: ${printType(node(f.Type))}${printDirectives(list(f.Directives))}`;
}

const KEYWORD: Record<string, string> = { SCALAR: 'scalar', OBJECT: 'type', INTERFACE: 'interface', UNION: 'union', ENUM: 'enum', INPUT_OBJECT: 'input' };

function printDefinition(d: Node, extension: boolean): string {
  const interfaces = (Array.isArray(d.Interfaces) ? d.Interfaces : []).map(String);
  const impl = interfaces.length ? ` implements ${interfaces.join(' & ')}` : '';
  const head = `${extension ? 'extend ' : printDescription(d)}${KEYWORD[str(d.Kind)] ?? 'type'} ${str(d.Name)}${impl}${printDirectives(list(d.Directives))}`;
  const types = (Array.isArray(d.Types) ? d.Types : []).map(String);
  if (d.Kind === 'UNION') return types.length ? `${head} = ${types.join(' | ')}` : head;
  if (d.Kind === 'ENUM') {
    const values = list(d.EnumValues).map((v) => `${printDescription(v)}${str(v.Name)}${printDirectives(list(v.Directives))}`);
    return values.length ? `${head} { ${values.join(' ')} }` : head;
  }
  const fields = list(d.Fields).map((f) => (d.Kind === 'INPUT_OBJECT' ? printInputValue(f) : printField(f)));
  return fields.length ? `${head} { ${fields.join(' ')} }` : head;
}

function printSchema(s: Node): string {
  const out: string[] = [];
  const ops = (x: Node) => list(x.OperationTypes).map((o) => `${str(o.Operation)}: ${str(o.Type)}`);
  for (const sd of list(s.Schema)) out.push(`${printDescription(sd)}schema${printDirectives(list(sd.Directives))} { ${ops(sd).join(' ')} }`);
  for (const sd of list(s.SchemaExtension)) {
    const body = ops(sd);
    out.push(`extend schema${printDirectives(list(sd.Directives))}${body.length ? ` { ${body.join(' ')} }` : ''}`);
  }
  for (const dd of list(s.Directives)) {
    const args = list(dd.Arguments);
    const locations = (Array.isArray(dd.Locations) ? dd.Locations : []).map(String);
    out.push(
      `${printDescription(dd)}directive @${str(dd.Name)}${args.length ? `(${args.map(printInputValue).join(', ')})` : ''}${dd.IsRepeatable === true ? ' repeatable' : ''} on ${locations.join(' | ')}`,
    );
  }
  for (const d of list(s.Definitions)) out.push(printDefinition(d, false));
  for (const d of list(s.Extensions)) out.push(printDefinition(d, true));
  return out.join('\n');
}

/** A schema operand: SDL text or the AST object graphql.parse_schema returns. */
function schemaSource(v: Value, pos: number): string {
  if (typeof v === 'string') return v;
  if (isObject(v)) return printSchema(node(v));
  throw operandTypeError(pos, v, 'string', 'object');
}

/** A query operand: text or the AST object graphql.parse_query returns. */
function querySource(v: Value, pos: number): string {
  if (typeof v === 'string') return v;
  if (isObject(v)) return printQuery(node(v));
  throw operandTypeError(pos, v, 'string', 'object');
}

/**
 * gqlparser accepts `extend type X` for a type defined nowhere (federation schemas do this): the
 * first such extension becomes the definition.
 */
function definePhantomExtensions(doc: DocumentNode): DocumentNode {
  const defined = new Set<string>();
  for (const d of doc.definitions) if ('name' in d && d.name && d.kind.endsWith('Definition')) defined.add(d.name.value);
  const toDefinition: Partial<Record<string, Kind>> = {
    [Kind.OBJECT_TYPE_EXTENSION]: Kind.OBJECT_TYPE_DEFINITION,
    [Kind.INTERFACE_TYPE_EXTENSION]: Kind.INTERFACE_TYPE_DEFINITION,
    [Kind.UNION_TYPE_EXTENSION]: Kind.UNION_TYPE_DEFINITION,
    [Kind.ENUM_TYPE_EXTENSION]: Kind.ENUM_TYPE_DEFINITION,
    [Kind.INPUT_OBJECT_TYPE_EXTENSION]: Kind.INPUT_OBJECT_TYPE_DEFINITION,
    [Kind.SCALAR_TYPE_EXTENSION]: Kind.SCALAR_TYPE_DEFINITION,
  };
  const definitions = doc.definitions.map((d) => {
    const kind = toDefinition[d.kind];
    if (!kind || !('name' in d) || !d.name || defined.has(d.name.value)) return d;
    defined.add(d.name.value);
    return { ...d, kind } as DefinitionNode;
  });
  return { ...doc, definitions };
}

/** Schema checks gqlparser does not make (it has no mandatory Query type). */
const IGNORED_SCHEMA_ERRORS = /^Query root type must be provided/;

function buildSchema(source: string) {
  const doc = parseDocument(source);
  try {
    const schema = buildASTSchema(definePhantomExtensions(doc), { assumeValidSDL: false });
    const errors = validateSchema(schema).filter((e) => !IGNORED_SCHEMA_ERRORS.test(e.message));
    if (errors.length) fail(located(errors[0]!));
    return { doc, schema: withQueryRoot(schema) };
  } catch (err) {
    if (err instanceof GraphQLError) fail(located(err));
    if (err instanceof TypeError) fail(err.message);
    throw err;
  }
}

/**
 * graphql-js refuses to validate queries against a schema without a query root, which gqlparser
 * allows; a placeholder root (one unused field) keeps validation going.
 */
function withQueryRoot(schema: GraphQLSchema): GraphQLSchema {
  if (schema.getQueryType() || schema.getType('Query')) return schema;
  const query = new GraphQLObjectType({ name: 'Query', fields: { _placeholder: { type: GraphQLBoolean } } });
  return new GraphQLSchema({ ...schema.toConfig(), query });
}

function located(err: GraphQLError): string {
  const loc = err.locations?.[0];
  return `${err.message.replace(/\.$/, '')}${loc ? ` in GraphQL string at location ${loc.line}:${loc.column}` : ''}`;
}

function verify(querySrc: string, schemaSrc: string): { query: DocumentNode; schema: DocumentNode } {
  const { doc: schemaDoc, schema } = buildSchema(schemaSrc);
  const query = parseDocument(querySrc);
  const errors = validate(schema, query);
  if (errors.length) fail(located(errors[0]!));
  return { query, schema: schemaDoc };
}

function quietly(f: () => unknown): boolean {
  try {
    f();
    return true;
  } catch {
    return false;
  }
}

const T_DOC = tUnion(T_STRING, T_OBJECT_ANY);

export const GRAPHQL: readonly BuiltinDefinition[] = [
  builtin('graphql.parse_query', [T_STRING], T_OBJECT_ANY, (a) => toValue(queryJson(parseDocument(querySource(a[0]!, 1))))),
  builtin('graphql.parse_schema', [T_STRING], T_OBJECT_ANY, (a) => toValue(schemaJson(parseDocument(schemaSource(a[0]!, 1))))),
  builtin('graphql.parse', [T_DOC, T_DOC], tArray(T_OBJECT_ANY), (a) => {
    const { query, schema } = verify(querySource(a[0]!, 1), schemaSource(a[1]!, 2));
    return [toValue(queryJson(query)), toValue(schemaJson(schema))];
  }),
  builtin('graphql.parse_and_verify', [T_DOC, T_DOC], tArray(T_ANY), (a) => {
    const q = querySource(a[0]!, 1);
    const s = schemaSource(a[1]!, 2);
    try {
      const { query, schema } = verify(q, s);
      return [true, toValue(queryJson(query)), toValue(schemaJson(schema))];
    } catch {
      return [false, {}, {}];
    }
  }),
  builtin('graphql.is_valid', [T_DOC, T_DOC], T_BOOLEAN, (a) => {
    const q = querySource(a[0]!, 1);
    const s = schemaSource(a[1]!, 2);
    return quietly(() => verify(q, s));
  }),
  builtin('graphql.schema_is_valid', [T_DOC], T_BOOLEAN, (a) => {
    const s = schemaSource(a[0]!, 1);
    return quietly(() => buildSchema(s));
  }),
];
