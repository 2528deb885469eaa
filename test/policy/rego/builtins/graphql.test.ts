import { describe, expect, it } from 'vitest';
import { call, callError } from './helpers.ts';

const schema = `
  type Employee { id: String! salary: Int! }
  type Query { employeeByID(id: String): Employee }
`;

describe('graphql', () => {
  it('parses queries into the gqlparser AST shape OPA returns', () => {
    expect(call('graphql.parse_query', '{hero {name}}')).toEqual({
      Operations: [{ Name: '', Operation: 'query', SelectionSet: [{ Alias: 'hero', Name: 'hero', SelectionSet: [{ Alias: 'name', Name: 'name' }] }] }],
    });
  });

  it('parses schemas with descriptions, arguments and kinds', () => {
    expect(call('graphql.parse_schema', '"Greeting" type Hello { world(flag: Boolean): String }')).toEqual({
      Definitions: [
        {
          BuiltIn: false,
          Description: 'Greeting',
          Fields: [
            { Arguments: [{ Description: '', Name: 'flag', Type: { NamedType: 'Boolean', NonNull: false } }], Description: '', Name: 'world', Type: { NamedType: 'String', NonNull: false } },
          ],
          Kind: 'OBJECT',
          Name: 'Hello',
        },
      ],
    });
  });

  it('reports syntax errors as gqlparser words them', () => {
    expect(callError('graphql.parse_schema', 'type Hello {}').message).toBe(
      'graphql.parse_schema: expected at least one definition, found } in GraphQL string at location 1:13',
    );
    expect(callError('graphql.parse_query', '{').message).toContain('Expected Name, found <EOF>');
  });

  it('accepts a query the schema allows and rejects one it does not', () => {
    expect(call('graphql.is_valid', '{ employeeByID(id: "alice") { salary } }', schema)).toBe(true);
    expect(call('graphql.is_valid', '{ employeeByID(id: "alice") { password } }', schema)).toBe(false);
    expect(callError('graphql.parse', '{ employeeByID(id: "a") { password } }', schema).message).toContain('Cannot query field "password" on type "Employee"');
    const [valid] = call('graphql.parse_and_verify', '{ employeeByID { id } }', schema) as [boolean];
    expect(valid).toBe(true);
  });

  it('accepts AST objects from parse_query and parse_schema as operands', () => {
    const q = call('graphql.parse_query', 'query { employeeByID(id: "alice") { salary } }')!;
    const s = call('graphql.parse_schema', schema)!;
    expect(call('graphql.is_valid', q, s)).toBe(true);
    expect(call('graphql.schema_is_valid', s)).toBe(true);
  });

  it('validates schemas, allowing federation-style extensions of undefined types', () => {
    expect(call('graphql.schema_is_valid', 'extend type User { id: ID! } extend type Query { me: User }')).toBe(true);
    expect(call('graphql.schema_is_valid', 'type Pupil { f: Int } input P { friends: [Pupil] }')).toBe(false);
  });
});
