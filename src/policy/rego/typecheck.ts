/** Static types of literal arguments, for `rego_type_error` on built-in calls. */
import type { Term } from './ast.ts';
import type { RegoType } from './builtins/index.ts';

export function literalType(t: Term): RegoType | undefined {
  switch (t.type) {
    case 'null':
      return { kind: 'null' };
    case 'boolean':
      return { kind: 'boolean' };
    case 'number':
      return { kind: 'number' };
    case 'string':
    case 'template':
      return { kind: 'string' };
    case 'array':
    case 'arraycomp':
      return { kind: 'array', of: { kind: 'any' } };
    case 'set':
    case 'setcomp':
      return { kind: 'set', of: { kind: 'any' } };
    case 'object':
    case 'objectcomp':
      return { kind: 'object', key: { kind: 'any' }, value: { kind: 'any' } };
    default:
      return undefined;
  }
}

export function formatTypeOf(t: RegoType | undefined): string {
  return t ? typeText(t) : 'any';
}

export function typeText(t: RegoType): string {
  switch (t.kind) {
    case 'array':
      return `array[${typeText(t.of)}]`;
    case 'set':
      return `set[${typeText(t.of)}]`;
    case 'object':
      return `object[${typeText(t.key)}: ${typeText(t.value)}]`;
    case 'union':
      return `any<${t.of.map(typeText).join(', ')}>`;
    default:
      return t.kind;
  }
}
