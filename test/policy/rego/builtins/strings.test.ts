import { describe, expect, it } from 'vitest';
import { RegoSet } from '../../../../src/policy/rego/value.ts';
import { call, callError } from './helpers.ts';

describe('string built-ins', () => {
  it('concatenates arrays and sets, rejecting non-strings', () => {
    expect(call('concat', '/', ['a', 'b'])).toBe('a/b');
    expect(call('concat', ',', new RegoSet(['b', 'a']))).toBe('a,b');
    expect(callError('concat', ',', [1]).code).toBe('eval_type_error');
  });

  it('indexes by code point', () => {
    expect(call('indexof', 'héllo', 'l')).toBe(2);
    expect(call('indexof', 'abc', 'z')).toBe(-1);
    expect(call('indexof_n', 'sad sad', 'sad')).toEqual([0, 4]);
    expect(call('substring', 'héllo', 1, 3)).toBe('éll');
    expect(call('substring', 'abc', 1, -1)).toBe('bc');
    expect(call('substring', 'abc', 5, 1)).toBe('');
    expect(callError('substring', 'abc', -1, 1).message).toBe('substring: negative offset');
  });

  it('formats integers in the allowed bases only', () => {
    expect(call('format_int', 255, 16)).toBe('ff');
    expect(call('format_int', -3.9, 10)).toBe('-3');
    expect(callError('format_int', 1, 3).message).toBe('format_int: operand 2 must be one of {2, 8, 10, 16}');
  });

  it('trims with Go cutset semantics', () => {
    expect(call('trim', '  xx a xx ', ' x')).toBe('a');
    expect(call('trim_left', 'aab', 'a')).toBe('b');
    expect(call('trim_right', 'baa', 'a')).toBe('b');
    expect(call('trim_prefix', 'foo.bar', 'foo.')).toBe('bar');
    expect(call('trim_suffix', 'foo.bar', '.bar')).toBe('foo');
    expect(call('trim_space', ' \t x \n')).toBe('x');
  });

  it('replaces with replace_n in pattern order and validates the pattern object', () => {
    expect(call('strings.replace_n', { a: '1', b: '2' }, 'abcab')).toBe('12c12');
    expect(callError('strings.replace_n', { a: 1 }, 'x').message).toBe('strings.replace_n: operand 1 non-string value found in pattern object');
    expect(callError('strings.replace_n', { a: 'b' }, 1).message).toBe('strings.replace_n: operand 2 must be string but got number');
  });

  it('splits, reverses, counts and matches prefixes', () => {
    expect(call('split', 'a.b.c', '.')).toEqual(['a', 'b', 'c']);
    expect(call('strings.reverse', 'ab\u{1F600}')).toBe('\u{1F600}ba');
    expect(call('strings.count', 'cheese', 'e')).toBe(3);
    expect(call('strings.any_prefix_match', ['x/a', 'y/b'], 'y/')).toBe(true);
    expect(call('strings.any_suffix_match', 'abc', new RegoSet(['x']))).toBe(false);
    expect(callError('strings.any_prefix_match', [1], 'a').message).toBe(
      'strings.any_prefix_match: operand 1 must be array of strings but got array containing number',
    );
  });

  it('renders template strings with one value per part and <undefined> for none', () => {
    expect(call('internal.template_string', ['a=', new RegoSet([[1, 'x']]), ' ', new RegoSet()])).toBe('a=[1, "x"] <undefined>');
    expect(callError('internal.template_string', [new RegoSet([1, 2])]).message).toContain('multiple outputs');
  });
});

describe('sprintf', () => {
  it('formats Go verbs the way OPA passes arguments', () => {
    expect(call('sprintf', '%s is %d years, %v', ['bob', 42, [1, 'a']])).toBe('bob is 42 years, [1, "a"]');
    expect(call('sprintf', '%.2f|%5d|%-4s|%x|%05d', [1.23456, 42, 'ab', 255, -42])).toBe('1.23|   42|ab  |ff|-0042');
    expect(call('sprintf', '%v %v %v', [1.5, 1e21, true])).toBe('1.5 1e+21 true');
    expect(call('sprintf', '%d', ['x'])).toBe('%!d(string=x)');
    expect(call('sprintf', '%d %d', [1])).toBe('1 %!d(MISSING)');
    expect(call('sprintf', '%d', [1, 2])).toBe('1%!(EXTRA int=2)');
    expect(call('sprintf', '%s|%f', [5, 5])).toBe('%!s(int=5)|%!f(int=5)');
    expect(call('sprintf', '%s %x', [18446744073709551614n, 255])).toBe('18446744073709551614 ff');
    expect(call('sprintf', '100%%', [])).toBe('100%');
  });
});

describe('regex', () => {
  it('matches with RE2 semantics', () => {
    expect(call('regex.match', '^[a-z]+\\d$', 'abc1')).toBe(true);
    expect(call('regex.match', '(?i)^ABC$', 'abc')).toBe(true);
    expect(call('regex.match', '^a.c$', 'a\nc')).toBe(false);
    expect(call('regex.match', '\\Aab\\z', 'ab')).toBe(true);
    expect(call('regex.match', '[[:digit:]]+', 'x12')).toBe(true);
    expect(call('regex.match', '^\\pL+$', 'héllo')).toBe(true);
    expect(call('regex.match', 'a{', 'a{')).toBe(true);
  });

  it('rejects what RE2 rejects', () => {
    expect(call('regex.is_valid', '(?=x)')).toBe(false);
    expect(call('regex.is_valid', '(a)\\1')).toBe(false);
    expect(call('regex.is_valid', '[')).toBe(false);
    expect(call('regex.is_valid', 1)).toBe(false);
    expect(callError('regex.match', '[', 'x').code).toBe('eval_builtin_error');
  });

  it('finds, splits and replaces like Go', () => {
    expect(call('regex.find_n', 'a.', 'paranormal', -1)).toEqual(['ar', 'an', 'al']);
    expect(call('regex.find_n', 'a.', 'paranormal', 2)).toEqual(['ar', 'an']);
    expect(call('regex.find_all_string_submatch_n', 'a(x*)b(y)?', '-ab-axxb-', -1)).toEqual([
      ['ab', '', ''],
      ['axxb', 'xx', ''],
    ]);
    expect(call('regex.split', 'a', 'banana')).toEqual(['b', 'n', 'n', '']);
    expect(call('regex.split', '^[a-z ]+$', 'foobar baz')).toEqual(['', '']);
    expect(call('regex.replace', '-wy-wxxy-', 'w(x*)y', '0')).toBe('-0-0-');
    expect(call('regex.replace', 'foo', '(foo)', '$1$1')).toBe('foofoo');
    expect(call('regex.replace', 'baaac', 'a*', '-')).toBe('-b-c-');
  });

  it('matches templates with delimited patterns', () => {
    expect(call('regex.template_match', 'urn:foo:{.*}', 'urn:foo:bar:baz', '{', '}')).toBe(true);
    expect(call('regex.template_match', 'urn:foo.bar:{[0-9]{2}}', 'urn:foo.bar:1', '{', '}')).toBe(false);
  });
});

describe('glob', () => {
  it('matches with default, explicit and no delimiters', () => {
    expect(call('glob.match', '*.github.com', ['.'], 'api.github.com')).toBe(true);
    expect(call('glob.match', '*.github.com', [], 'api.cdn.github.com')).toBe(false);
    expect(call('glob.match', '*hub.com', null, 'api.cdn.github.com')).toBe(true);
    expect(call('glob.match', 'api.**.com', ['.'], 'api.cdn.github.com')).toBe(true);
    expect(call('glob.match', '?at', [], 'fat')).toBe(true);
    expect(call('glob.match', '[!a-c]at', [], 'bat')).toBe(false);
    expect(call('glob.match', '{cat,bat,[fr]at}', [], 'rat')).toBe(true);
    expect(call('glob.match', '{cat,bat,[fr]at}', [], 'at')).toBe(false);
  });

  it('quotes glob metacharacters', () => {
    expect(call('glob.quote_meta', '*.github.com')).toBe('\\*.github.com');
  });
});

describe('strings.render_template', () => {
  it('renders fields, ranges with variables and conditionals like Go templates', () => {
    expect(call('strings.render_template', '{{.test}}', { test: 2023 })).toBe('2023');
    expect(call('strings.render_template', '{{range $i, $name := .names}}{{if $i}},{{end}}hello {{$name}}{{end}}', { names: ['rohan', 'john doe'] })).toBe(
      'hello rohan,hello john doe',
    );
    expect(call('strings.render_template', '{{if eq .role "admin"}}yes{{else}}no{{end}} {{len .xs}} {{printf "%03d" .n}}', { role: 'dev', xs: [1, 2], n: 7 })).toBe(
      'no 2 007',
    );
    expect(call('strings.render_template', '{{- .a -}} {{with .b}}{{.c}}{{end}}', { a: 'x', b: { c: 'y' } })).toBe('xy');
  });

  it('prints <undefined> for missing keys and fails on unknown functions', () => {
    expect(call('strings.render_template', 'test {{.foo}} {{.baz}}', { baz: 1 })).toBe('test <undefined> 1');
    expect(callError('strings.render_template', '{{nosuch .a}}', {}).code).toBe('eval_builtin_error');
  });
});
