import { describe, expect, it } from 'vitest';
import { buildInput, MAX_BODY_DEPTH } from '../../src/authz/input.ts';

/** An array body nested `levels` deep. */
const body = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
const build = (text: string) => buildInput({ attributes: { request: { http: { method: 'POST', path: '/x', headers: { 'content-type': 'application/json' }, body: text } } } });

describe('JSON body nesting', () => {
  it(`gives the policy a body nested ${MAX_BODY_DEPTH} levels`, () => {
    const built = build(body(MAX_BODY_DEPTH));
    expect(built.badRequest).toBeUndefined();
    expect(built.input.parsed_body).toBeInstanceOf(Array);
  });

  it.each([MAX_BODY_DEPTH + 1, 100_000])('refuses a body nested %i levels as a bad request, without parsing it into the input', (levels) => {
    const built = build(body(levels));
    expect(built.badRequest).toBe(`the request body is JSON nested deeper than ${MAX_BODY_DEPTH} levels`);
    expect(built.input.parsed_body).toBeUndefined();
  });
});
