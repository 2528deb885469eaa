/**
 * Rego v1 parser (OPA 1.x syntax): recursive descent over the lexer's tokens. Operator
 * precedence follows OPA's parser, lowest first: `in`, relations (== != < <= > >=), `|`, `&`,
 * `+ -`, `* / %`. Body literals end at `;` or a newline (outside brackets).
 */
import type { Annotation, Expr, Import, Loc, Module, Rule, Term, With } from './ast.ts';
import { RegoParseError } from './errors.ts';
import { type Comment, KEYWORDS, Lexer, type Token } from './lexer.ts';

const REL_OPS: Record<string, string> = { '==': 'equal', '!=': 'neq', '<': 'lt', '<=': 'lte', '>': 'gt', '>=': 'gte' };
const ARITH_OPS: Record<string, string> = { '+': 'plus', '-': 'minus' };
const FACTOR_OPS: Record<string, string> = { '*': 'mul', '/': 'div', '%': 'rem' };

export function parseModule(source: string, file: string): Module {
  const lexer = new Lexer(source, file);
  const toks = lexer.tokenize();
  return new Parser(toks, file, metadataBlocks(lexer.comments, file)).module();
}

interface MetadataBlock extends Annotation {
  startLine: number;
  endLine: number;
}

/** `# METADATA` followed by consecutive comment lines of YAML. */
function metadataBlocks(comments: readonly Comment[], file: string): MetadataBlock[] {
  const out: MetadataBlock[] = [];
  for (let i = 0; i < comments.length; i++) {
    const c = comments[i]!;
    if (c.text.trim() !== 'METADATA') continue;
    const lines: string[] = [];
    let end = c.line;
    let j = i + 1;
    for (; j < comments.length && comments[j]!.line === end + 1; j++) {
      const t = comments[j]!.text;
      lines.push(t.startsWith(' ') ? t.slice(1) : t);
      end = comments[j]!.line;
    }
    out.push({ yaml: lines.join('\n'), loc: { file, line: c.line, col: c.col }, startLine: c.line, endLine: end });
    i = j - 1;
  }
  return out;
}

export function parseQuery(source: string, file = 'query'): Expr[] {
  return new Parser(new Lexer(source, file).tokenize(), file).query();
}

/** Parses one term (used for `input_term` and template expressions). */
export function parseTerm(source: string, file = 'term', line = 1, col = 1): Term {
  const p = new Parser(new Lexer(source, file, line, col).tokenize(), file);
  return p.singleTerm();
}

function opTerm(name: string, loc: Loc): Term {
  const parts = name.split('.');
  const head: Term = { type: 'var', name: parts[0]!, loc };
  if (parts.length === 1) return head;
  return { type: 'ref', head, path: parts.slice(1).map((value) => ({ type: 'string', value, loc })), loc };
}

export function callTerm(name: string, args: Term[], loc: Loc): Term {
  return { type: 'call', op: opTerm(name, loc), args, loc };
}

class Parser {
  readonly #toks: Token[];
  readonly #file: string;
  readonly #blocks: MetadataBlock[];
  #i = 0;
  /** Open bracket depth: newlines are insignificant inside brackets. */
  #depth = 0;

  constructor(toks: Token[], file: string, blocks: MetadataBlock[] = []) {
    this.#toks = toks;
    this.#file = file;
    this.#blocks = blocks;
  }

  /** The METADATA block that ends right above the token at index i (no code in between). */
  #annotationsBefore(i: number): Annotation | undefined {
    const t = this.#toks[i]!;
    const prevLine = i > 0 ? this.#toks[i - 1]!.line : 0;
    const b = this.#blocks.find((x) => x.endLine < t.line && x.startLine > prevLine);
    return b ? { yaml: b.yaml, loc: b.loc } : undefined;
  }

  get #tok(): Token {
    return this.#toks[this.#i]!;
  }
  #peek(n = 1): Token {
    return this.#toks[Math.min(this.#i + n, this.#toks.length - 1)]!;
  }
  #loc(t: Token = this.#tok): Loc {
    return { file: this.#file, line: t.line, col: t.col };
  }
  #error(msg: string, t: Token = this.#tok): never {
    throw new RegoParseError(msg, this.#loc(t));
  }
  #describe(t: Token): string {
    if (t.kind === 'eof') return 'eof token';
    if (t.kind === 'ident') return KEYWORDS.has(t.text) ? `${t.text} keyword` : 'ident';
    if (t.kind === 'string') return 'string';
    if (t.kind === 'number') return 'number';
    if (t.kind === 'template') return 'template string';
    return `${t.text} token`;
  }
  #unexpected(expected?: string): never {
    this.#error(`unexpected ${this.#describe(this.#tok)}${expected ? `: expected ${expected}` : ''}`);
  }
  #isPunct(p: string, t: Token = this.#tok): boolean {
    return t.kind === 'punct' && t.text === p;
  }
  /** A keyword used as a keyword: not immediately followed by `.` (then it is a name: `not.foo`). */
  #isKeyword(k: string, t: Token = this.#tok): boolean {
    if (t.kind !== 'ident' || t.text !== k) return false;
    const nx = t === this.#tok ? this.#toks[this.#i + 1] : this.#toks[this.#toks.indexOf(t) + 1];
    if (nx?.kind !== 'punct' || nx.ws) return true;
    return !(nx.text === '.' || (nx.text === '(' && k === 'contains'));
  }
  #expectPunct(p: string): Token {
    if (!this.#isPunct(p)) this.#unexpected(p);
    return this.#toks[this.#i++]!;
  }
  #advance(): Token {
    return this.#toks[this.#i++]!;
  }

  // ---------------------------------------------------------------- modules

  module(): Module {
    if (!this.#isKeyword('package')) this.#error(this.#tok.kind === 'eof' ? 'empty module' : 'package expected');
    const pkgAnnotations = this.#annotationsBefore(this.#i);
    const pkgTok = this.#advance();
    const pkgRef = this.#refTerm(true);
    const pkg = this.#refParts(pkgRef);
    const imports: Import[] = [];
    const rules: Rule[] = [];
    while (this.#tok.kind !== 'eof') {
      if (this.#isKeyword('import')) {
        imports.push(this.#import());
        continue;
      }
      if (this.#isKeyword('package')) this.#error('unexpected package keyword: only one package per module');
      const annotations = this.#annotationsBefore(this.#i);
      const rule = this.#rule();
      if (annotations) rule.annotations = annotations;
      rules.push(rule);
    }
    const mod: Module = { file: this.#file, package: pkg, packageLoc: this.#loc(pkgTok), imports, rules };
    if (pkgAnnotations) mod.annotations = pkgAnnotations;
    return mod;
  }

  #refParts(t: Term): Term[] {
    if (t.type === 'var') return [t];
    if (t.type === 'ref') return [t.head, ...t.path];
    this.#error('expected a reference');
  }

  #import(): Import {
    const tok = this.#advance();
    const path = this.#refTerm(true);
    let alias: string | undefined;
    if (this.#isKeyword('as')) {
      this.#advance();
      const a = this.#tok;
      if (a.kind !== 'ident') this.#unexpected('import alias');
      this.#advance();
      alias = a.text;
    }
    return alias === undefined ? { path, loc: this.#loc(tok) } : { path, alias, loc: this.#loc(tok) };
  }

  /** A ref of names and `[term]` (package paths, import paths, rule heads, `with` targets). */
  #refTerm(allowKeywordHead: boolean): Term {
    const t = this.#tok;
    if (t.kind !== 'ident') this.#unexpected('ident');
    if (!allowKeywordHead && KEYWORDS.has(t.text) && this.#isKeyword(t.text)) this.#unexpected('ident');
    this.#advance();
    const loc = this.#loc(t);
    const path: Term[] = [];
    for (;;) {
      const n = this.#tok;
      if (this.#isPunct('.') && !n.ws) {
        this.#advance();
        const name = this.#tok;
        if (name.kind !== 'ident' || name.ws) this.#unexpected('ident');
        this.#advance();
        path.push({ type: 'string', value: name.text, loc: this.#loc(name) });
      } else if (this.#isPunct('[') && !n.ws) {
        this.#advance();
        this.#depth++;
        path.push(this.#exprTerm());
        this.#depth--;
        this.#expectPunct(']');
      } else break;
    }
    const head: Term = { type: 'var', name: t.text, loc };
    return path.length ? { type: 'ref', head, path, loc } : head;
  }

  #rule(): Rule {
    const start = this.#tok;
    if (this.#isKeyword('default')) return this.#defaultRule();
    if (start.kind !== 'ident') this.#unexpected('rule');
    if (KEYWORDS.has(start.text) && this.#isKeyword(start.text)) this.#unexpected();
    const refT = this.#refTerm(true);
    const ref = this.#refParts(refT);
    const rule: Rule = { default: false, ref, assign: false, body: [], loc: this.#loc(start), file: this.#file };
    if (this.#isPunct('(') && !this.#tok.ws) rule.args = this.#callArgs();
    if (this.#isKeyword('contains')) {
      this.#advance();
      rule.key = this.#exprTerm();
    } else if (this.#isPunct(':=') || this.#isPunct('=')) {
      rule.assign = this.#advance().text === ':=';
      rule.value = this.#exprTerm();
    }
    const hasBody = this.#ruleBody(rule);
    if (!hasBody && rule.value === undefined && rule.key === undefined) {
      this.#error(`rule ${refT.type === 'var' ? refT.name : 'head'} must have a value or a body (use \`if\`)`, start);
    }
    if (!hasBody) rule.body = [this.#trueExpr(rule.loc)];
    let tail = rule;
    while (this.#isKeyword('else')) {
      if (rule.key !== undefined) this.#error('else keyword cannot be used on multi-value rules');
      const elseTok = this.#advance();
      const alt: Rule = { default: false, ref, assign: false, body: [], loc: this.#loc(elseTok), file: this.#file };
      if (rule.args) alt.args = rule.args;
      if (this.#isPunct(':=') || this.#isPunct('=')) {
        alt.assign = this.#advance().text === ':=';
        alt.value = this.#exprTerm();
      }
      if (!this.#ruleBody(alt)) alt.body = [this.#trueExpr(alt.loc)];
      tail.else = alt;
      tail = alt;
    }
    return rule;
  }

  #trueExpr(loc: Loc): Expr {
    return { kind: 'term', term: { type: 'boolean', value: true, loc }, negated: false, with: [], loc };
  }

  /** `if { ... }` or `if literal`; returns false when there is no body. */
  #ruleBody(rule: Rule): boolean {
    if (this.#isPunct('{')) this.#error('`if` keyword is required before rule body');
    if (!this.#isKeyword('if')) return false;
    this.#advance();
    if (this.#isPunct('{')) {
      const mark = this.#i;
      try {
        this.#advance();
        rule.body = this.#body('}');
        this.#expectPunct('}');
      } catch (err) {
        // `if {x: 1 | ...}` etc.: the braces open a term, not a body.
        this.#i = mark;
        try {
          rule.body = [this.#literal()];
          return true;
        } catch {
          throw err;
        }
      }
      if (rule.body.length === 0) this.#error('found empty body');
    } else {
      rule.body = [this.#literal()];
    }
    return true;
  }

  #defaultRule(): Rule {
    const tok = this.#advance();
    const refT = this.#refTerm(true);
    const rule: Rule = { default: true, ref: this.#refParts(refT), assign: false, body: [], loc: this.#loc(tok), file: this.#file };
    if (this.#isPunct('(') && !this.#tok.ws) rule.args = this.#callArgs();
    if (!(this.#isPunct(':=') || this.#isPunct('='))) this.#error('default rules must use = or := operator');
    rule.assign = this.#advance().text === ':=';
    rule.value = this.#exprTerm();
    rule.body = [this.#trueExpr(rule.loc)];
    return rule;
  }

  #callArgs(): Term[] {
    this.#expectPunct('(');
    this.#depth++;
    const args: Term[] = [];
    while (!this.#isPunct(')')) {
      args.push(this.#exprTerm());
      if (!this.#isPunct(',')) break;
      this.#advance();
    }
    this.#depth--;
    this.#expectPunct(')');
    return args;
  }

  // ---------------------------------------------------------------- bodies

  query(): Expr[] {
    const body = this.#body(undefined);
    if (this.#tok.kind !== 'eof') this.#unexpected();
    if (body.length === 0) this.#error('empty query');
    return body;
  }

  singleLiteral(): Expr {
    const e = this.#literal();
    if (this.#tok.kind !== 'eof') this.#unexpected();
    return e;
  }

  singleTerm(): Term {
    const t = this.#exprTerm();
    if (this.#tok.kind !== 'eof') this.#unexpected();
    return t;
  }

  /** Literals until `close` (or eof when undefined), separated by `;` or newlines. */
  #body(close: string | undefined): Expr[] {
    const saved = this.#depth;
    this.#depth = 0;
    const out: Expr[] = [];
    for (;;) {
      while (this.#isPunct(';')) this.#advance();
      if (close ? this.#isPunct(close) : this.#tok.kind === 'eof') break;
      if (this.#tok.kind === 'eof') this.#unexpected(close);
      out.push(this.#literal());
      const t = this.#tok;
      if (this.#isPunct(';') || (close ? this.#isPunct(close) : t.kind === 'eof') || t.nl) continue;
      this.#unexpected(close ? `\\n or ; or ${close}` : '\\n or ;');
    }
    this.#depth = saved;
    return out;
  }

  #literal(): Expr {
    const start = this.#tok;
    const loc = this.#loc(start);
    if (this.#isKeyword('some')) return this.#some();
    if (this.#isKeyword('every')) return this.#every();
    let negated = false;
    if (this.#isKeyword('not')) {
      this.#advance();
      negated = true;
      if (this.#isKeyword('every')) {
        const e = this.#every();
        return { ...e, negated: true };
      }
    }
    const term = this.#expr();
    const withs = this.#withs();
    return { kind: 'term', term, negated, with: withs, loc };
  }

  #withs(): With[] {
    const out: With[] = [];
    while (this.#isKeyword('with')) {
      const tok = this.#advance();
      const target = this.#refTerm(false);
      if (!this.#isKeyword('as')) this.#unexpected('as');
      this.#advance();
      const value = this.#exprTerm();
      out.push({ target, value, loc: this.#loc(tok) });
    }
    return out;
  }

  /** A literal's expression: `a = b`, `a := b`, `k, v in xs` or a term. */
  #expr(): Term {
    const lhs = this.#exprTerm(false, this.#depth === 0);
    if (this.#isPunct('=') || this.#isPunct(':=')) {
      const op = this.#advance();
      const rhs = this.#exprTerm();
      return callTerm(op.text === ':=' ? 'assign' : 'eq', [lhs, rhs], this.#loc(op));
    }
    return lhs;
  }

  #some(): Expr {
    const tok = this.#advance();
    const loc = this.#loc(tok);
    const terms: Term[] = [this.#relation()];
    while (this.#isPunct(',')) {
      this.#advance();
      terms.push(this.#relation());
    }
    if (this.#isKeyword('in')) {
      this.#advance();
      if (terms.length > 2) this.#error('unexpected , token: expected in');
      const domain = this.#relation();
      const withs = this.#withs();
      return terms.length === 2
        ? { kind: 'somein', key: terms[0]!, value: terms[1]!, domain, with: withs, negated: false, loc }
        : { kind: 'somein', value: terms[0]!, domain, with: withs, negated: false, loc };
    }
    for (const t of terms) if (t.type !== 'var') this.#error('expected var or var in term after some', tok);
    return { kind: 'some', vars: terms, with: [], negated: false, loc };
  }

  #every(): Expr {
    const tok = this.#advance();
    const loc = this.#loc(tok);
    let key: Term | undefined;
    let value = this.#relation();
    if (this.#isPunct(',')) {
      this.#advance();
      key = value;
      value = this.#relation();
    }
    if (!this.#isKeyword('in')) this.#unexpected('in');
    this.#advance();
    const domain = this.#relation();
    this.#expectPunct('{');
    const body = this.#body('}');
    this.#expectPunct('}');
    const withs = this.#withs();
    const e: Expr = { kind: 'every', value, domain, body, with: withs, negated: false, loc };
    if (key) e.key = key;
    return e;
  }

  // ---------------------------------------------------------------- terms

  /** Term with the `in` operator (lowest precedence). */
  #exprTerm(noOr = false, allowComma = false): Term {
    let lhs = this.#relation(noOr);
    if (allowComma && this.#isPunct(',')) {
      const comma = this.#advance();
      const value = this.#relation(noOr);
      if (!this.#isKeyword('in')) this.#unexpected('in');
      this.#advance();
      const domain = this.#relation(noOr);
      lhs = callTerm('internal.member_3', [lhs, value, domain], this.#loc(comma));
    }
    while (this.#isKeyword('in') && this.#infixOk()) {
      const op = this.#advance();
      const rhs = this.#relation(noOr);
      lhs = callTerm('internal.member_2', [lhs, rhs], this.#loc(op));
    }
    return lhs;
  }

  /** An infix operator continues the expression unless it starts a new line at depth 0. */
  #infixOk(): boolean {
    return this.#depth > 0 || !this.#tok.nl;
  }

  #relation(noOr = false): Term {
    let lhs = this.#or(noOr);
    while (this.#tok.kind === 'punct' && REL_OPS[this.#tok.text] && this.#infixOk()) {
      const op = this.#advance();
      lhs = callTerm(REL_OPS[op.text]!, [lhs, this.#or(noOr)], this.#loc(op));
    }
    return lhs;
  }

  #or(noOr: boolean): Term {
    let lhs = this.#and();
    while (!noOr && this.#isPunct('|') && this.#infixOk()) {
      const op = this.#advance();
      lhs = callTerm('or', [lhs, this.#and()], this.#loc(op));
    }
    return lhs;
  }

  #and(): Term {
    let lhs = this.#arith();
    while (this.#isPunct('&') && this.#infixOk()) {
      const op = this.#advance();
      lhs = callTerm('and', [lhs, this.#arith()], this.#loc(op));
    }
    return lhs;
  }

  #arith(): Term {
    let lhs = this.#factor();
    while (this.#tok.kind === 'punct' && ARITH_OPS[this.#tok.text] && this.#infixOk()) {
      const op = this.#advance();
      lhs = callTerm(ARITH_OPS[op.text]!, [lhs, this.#factor()], this.#loc(op));
    }
    return lhs;
  }

  #factor(): Term {
    let lhs = this.#unary();
    while (this.#tok.kind === 'punct' && FACTOR_OPS[this.#tok.text] && this.#infixOk()) {
      const op = this.#advance();
      lhs = callTerm(FACTOR_OPS[op.text]!, [lhs, this.#unary()], this.#loc(op));
    }
    return lhs;
  }

  #unary(): Term {
    if (this.#isPunct('-')) {
      const op = this.#advance();
      const n = this.#tok;
      if (n.kind === 'number' && !n.ws) {
        this.#advance();
        const num: Term = { type: 'number', text: n.text === '0' ? '0' : `-${n.text}`, loc: this.#loc(op) };
        return this.#postfix(num);
      }
      const operand = this.#unary();
      return callTerm('minus', [{ type: 'number', text: '0', loc: this.#loc(op) }, operand], this.#loc(op));
    }
    return this.#postfix(this.#primary());
  }

  #postfix(term: Term): Term {
    for (;;) {
      const t = this.#tok;
      if (t.ws) return term;
      if (this.#isPunct('.')) {
        this.#advance();
        const name = this.#tok;
        if (name.kind !== 'ident' || name.ws) this.#unexpected('ident');
        this.#advance();
        term = appendPath(term, { type: 'string', value: name.text, loc: this.#loc(name) });
      } else if (this.#isPunct('[')) {
        this.#advance();
        this.#depth++;
        const key = this.#exprTerm();
        this.#depth--;
        this.#expectPunct(']');
        term = appendPath(term, key);
      } else if (this.#isPunct('(') && isCallable(term)) {
        const args = this.#callArgs();
        term = { type: 'call', op: term, args, loc: term.loc };
      } else return term;
    }
  }

  #primary(): Term {
    const t = this.#tok;
    const loc = this.#loc(t);
    switch (t.kind) {
      case 'number':
        this.#advance();
        return { type: 'number', text: t.text, loc };
      case 'string':
        this.#advance();
        return { type: 'string', value: t.text, loc };
      case 'template':
        this.#advance();
        return this.#template(t, loc);
      case 'ident':
        return this.#identTerm(t, loc);
      case 'punct':
        if (t.text === '(') {
          this.#advance();
          this.#depth++;
          const inner = this.#exprTerm(false, true);
          this.#depth--;
          this.#expectPunct(')');
          return inner;
        }
        if (t.text === '[') return this.#array(loc);
        if (t.text === '{') return this.#braces(loc);
        break;
      case 'eof':
        break;
    }
    this.#unexpected('term');
  }

  #identTerm(t: Token, loc: Loc): Term {
    if (KEYWORDS.has(t.text) && this.#isKeyword(t.text)) {
      if (t.text === 'true' || t.text === 'false') {
        this.#advance();
        return { type: 'boolean', value: t.text === 'true', loc };
      }
      if (t.text === 'null') {
        this.#advance();
        return { type: 'null', loc };
      }
      this.#unexpected('term');
    }
    this.#advance();
    if (t.text === 'set' && this.#isPunct('(') && !this.#tok.ws && this.#isPunct(')', this.#peek())) {
      this.#advance();
      this.#advance();
      return { type: 'set', items: [], loc };
    }
    return { type: 'var', name: t.text, loc };
  }

  #array(loc: Loc): Term {
    this.#advance();
    this.#depth++;
    if (this.#isPunct(']')) {
      this.#advance();
      this.#depth--;
      return { type: 'array', items: [], loc };
    }
    const first = this.#exprTerm(true);
    if (this.#isPunct('|')) {
      this.#advance();
      const body = this.#body(']');
      this.#expectPunct(']');
      this.#depth--;
      return { type: 'arraycomp', term: first, body, loc };
    }
    const items = [first];
    while (this.#isPunct(',')) {
      this.#advance();
      if (this.#isPunct(']')) break;
      items.push(this.#exprTerm());
    }
    this.#expectPunct(']');
    this.#depth--;
    return { type: 'array', items, loc };
  }

  #braces(loc: Loc): Term {
    this.#advance();
    this.#depth++;
    if (this.#isPunct('}')) {
      this.#advance();
      this.#depth--;
      return { type: 'object', entries: [], loc };
    }
    const first = this.#exprTerm(true);
    if (this.#isPunct(':')) {
      this.#advance();
      const value = this.#exprTerm(true);
      if (this.#isPunct('|')) {
        this.#advance();
        const body = this.#body('}');
        this.#expectPunct('}');
        this.#depth--;
        return { type: 'objectcomp', key: first, value, body, loc };
      }
      const entries: [Term, Term][] = [[first, value]];
      while (this.#isPunct(',')) {
        this.#advance();
        if (this.#isPunct('}')) break;
        const k = this.#exprTerm();
        this.#expectPunct(':');
        entries.push([k, this.#exprTerm()]);
      }
      this.#expectPunct('}');
      this.#depth--;
      return { type: 'object', entries, loc };
    }
    if (this.#isPunct('|')) {
      this.#advance();
      const body = this.#body('}');
      this.#expectPunct('}');
      this.#depth--;
      return { type: 'setcomp', term: first, body, loc };
    }
    const items = [first];
    while (this.#isPunct(',')) {
      this.#advance();
      if (this.#isPunct('}')) break;
      items.push(this.#exprTerm());
    }
    this.#expectPunct('}');
    this.#depth--;
    return { type: 'set', items, loc };
  }

  #template(t: Token, loc: Loc): Term {
    const parts: (string | Expr)[] = [];
    for (const p of t.parts ?? []) {
      if (!p.expr) parts.push(p.text);
      else {
        if (p.text.trim() === '') throw new RegoParseError('empty template expression', { file: this.#file, line: p.line, col: p.col });
        parts.push(parseTemplateExpr(p.text, this.#file, p.line, p.col));
      }
    }
    return { type: 'template', parts, loc };
  }
}

function parseTemplateExpr(source: string, file: string, line: number, col: number): Expr {
  return new Parser(new Lexer(source, file, line, col).tokenize(), file).singleLiteral();
}

function isCallable(t: Term): boolean {
  if (t.type === 'var') return true;
  if (t.type !== 'ref' || t.head.type !== 'var') return false;
  return t.path.every((p) => p.type === 'string');
}

function appendPath(term: Term, key: Term): Term {
  if (term.type === 'ref') return { type: 'ref', head: term.head, path: [...term.path, key], loc: term.loc };
  return { type: 'ref', head: term, path: [key], loc: term.loc };
}
