import { describe, expect, it } from 'vitest';
import { call, callError } from './helpers.ts';

const schema = { properties: { id: { type: 'integer' } }, required: ['id'] };

describe('json.verify_schema', () => {
  it('accepts valid schemas given as objects or JSON text', () => {
    expect(call('json.verify_schema', { type: 'boolean' })).toEqual([true, null]);
    expect(call('json.verify_schema', '{"type": "boolean"}')).toEqual([true, null]);
  });

  it('reports an unknown primitive type with gojsonschema wording', () => {
    expect(call('json.verify_schema', { type: 'unknown_type' })).toEqual([
      false,
      'jsonschema: has a primitive type that is NOT VALID -- given: /unknown_type/ Expected valid values are:[array boolean integer number null object string]',
    ]);
  });
});

describe('json.match_schema', () => {
  it('matches a conforming document given as a value or as JSON text', () => {
    expect(call('json.match_schema', { id: 5 }, schema)).toEqual([true, []]);
    expect(call('json.match_schema', '{"id": 5}', JSON.stringify(schema))).toEqual([true, []]);
  });

  it('describes each violation with its field and type', () => {
    expect(call('json.match_schema', { id: 'foo' }, schema)).toEqual([
      false,
      [{ desc: 'Invalid type. Expected: integer, given: string', error: 'id: Invalid type. Expected: integer, given: string', field: 'id', type: 'invalid_type' }],
    ]);
    const [ok, problems] = call('json.match_schema', { name: 'x', extra: 1, tags: ['a', 'a'] }, {
      type: 'object',
      required: ['id'],
      additionalProperties: false,
      properties: { name: { type: 'string', minLength: 2, pattern: '^[a-z]+$' }, tags: { type: 'array', uniqueItems: true } },
    }) as [boolean, Array<{ type: string; field: string }>];
    expect(ok).toBe(false);
    expect(problems.map((p) => `${p.field}:${p.type}`).sort()).toEqual([
      '(root):additional_property_not_allowed',
      '(root):required',
      'name:string_gte',
      'tags:unique',
    ]);
  });

  it('resolves local references and combinators', () => {
    const s = { definitions: { port: { type: 'integer', minimum: 1, maximum: 65535 } }, properties: { port: { $ref: '#/definitions/port' } } };
    expect((call('json.match_schema', { port: 8080 }, s) as unknown[])[0]).toBe(true);
    expect((call('json.match_schema', { port: 70000 }, s) as unknown[])[0]).toBe(false);
    const anyOf = { properties: { v: { anyOf: [{ type: 'string' }, { type: 'integer' }] } } };
    const oneOf = { properties: { v: { oneOf: [{ type: 'number' }, { type: 'integer' }] } } };
    expect((call('json.match_schema', { v: 3 }, anyOf) as unknown[])[0]).toBe(true);
    expect((call('json.match_schema', { v: true }, anyOf) as unknown[])[0]).toBe(false);
    expect((call('json.match_schema', { v: 3 }, oneOf) as unknown[])[0]).toBe(false);
    expect((call('json.match_schema', { v: 3.5 }, oneOf) as unknown[])[0]).toBe(true);
  });

  it('fails on an invalid schema', () => {
    expect(callError('json.match_schema', { id: 'foo' }, { properties: { id: { type: 'unknown' } } }).message).toBe(
      'json.match_schema: has a primitive type that is NOT VALID -- given: /unknown/ Expected valid values are:[array boolean integer number null object string]',
    );
  });
});
