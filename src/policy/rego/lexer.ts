/**
 * Rego v1 lexer. Produces tokens with positions and two layout facts the parser needs:
 * whether a newline precedes the token (newlines end body literals) and whether any
 * whitespace precedes it (`a.b`, `a[0]` and `f(x)` require adjacency, as in OPA).
 */
import { RegoParseError } from './errors.ts';

export type TokenKind =
  | 'ident'
  | 'number'
  | 'string'
  | 'template'
  | 'punct'
  | 'eof';

export interface TemplatePart {
  /** Literal text, or the source of an embedded expression. */
  text: string;
  expr: boolean;
  line: number;
  col: number;
}

export interface Token {
  kind: TokenKind;
  /** Identifier name, punctuation text, number text, or decoded string value. */
  text: string;
  line: number;
  col: number;
  /** Offset in the source. */
  offset: number;
  end: number;
  /** A newline occurs between the previous token and this one. */
  nl: boolean;
  /** Whitespace or a comment occurs between the previous token and this one. */
  ws: boolean;
  parts?: TemplatePart[];
  /** Raw string (backticks): no escapes. */
  raw?: boolean;
}

export const KEYWORDS = new Set([
  'package', 'import', 'as', 'default', 'else', 'not', 'with', 'some', 'every', 'in', 'if', 'contains',
  'true', 'false', 'null',
]);

const PUNCT2 = ['==', '!=', '<=', '>=', ':='];
const PUNCT1 = '{}[]().,;:=<>+-*/%|&';

function isIdentStart(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
}
function isIdentPart(c: string): boolean {
  return isIdentStart(c) || (c >= '0' && c <= '9');
}
function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}

export interface Comment {
  line: number;
  col: number;
  /** Text after `#`. */
  text: string;
}

export class Lexer {
  /** Comments in source order (METADATA annotations are read from them). */
  readonly comments: Comment[] = [];
  readonly #src: string;
  readonly #file: string;
  #pos = 0;
  #line = 1;
  #col = 1;
  readonly #lineBase: number;
  readonly #colBase: number;

  constructor(src: string, file: string, lineBase = 1, colBase = 1) {
    this.#src = src;
    this.#file = file;
    this.#lineBase = lineBase;
    this.#colBase = colBase;
    this.#line = lineBase;
    this.#col = colBase;
  }

  tokenize(): Token[] {
    const out: Token[] = [];
    for (;;) {
      const t = this.#next();
      out.push(t);
      if (t.kind === 'eof') return out;
    }
  }

  #error(msg: string, line = this.#line, col = this.#col): never {
    throw new RegoParseError(msg, { file: this.#file, line, col });
  }

  #advance(n = 1): void {
    for (let i = 0; i < n; i++) {
      if (this.#src[this.#pos] === '\n') {
        this.#line++;
        this.#col = 1;
      } else this.#col++;
      this.#pos++;
    }
  }

  #skipSpace(): { nl: boolean; ws: boolean } {
    let nl = false;
    let ws = false;
    const s = this.#src;
    while (this.#pos < s.length) {
      const c = s[this.#pos]!;
      if (c === '\n') {
        nl = true;
        ws = true;
        this.#advance();
      } else if (c === ' ' || c === '\t' || c === '\r') {
        ws = true;
        this.#advance();
      } else if (c === '#') {
        ws = true;
        const line = this.#line;
        const col = this.#col;
        const start = this.#pos + 1;
        while (this.#pos < s.length && s[this.#pos] !== '\n') this.#advance();
        this.comments.push({ line, col, text: s.slice(start, this.#pos) });
      } else break;
    }
    return { nl, ws };
  }

  #next(): Token {
    const { nl, ws } = this.#skipSpace();
    const s = this.#src;
    const line = this.#line;
    const col = this.#col;
    const offset = this.#pos;
    const mk = (kind: TokenKind, text: string, extra?: Partial<Token>): Token => ({
      kind, text, line, col, offset, end: this.#pos, nl, ws, ...extra,
    });
    if (this.#pos >= s.length) return mk('eof', '');
    const c = s[this.#pos]!;
    if (isIdentStart(c)) {
      let e = this.#pos;
      while (e < s.length && isIdentPart(s[e]!)) e++;
      const text = s.slice(this.#pos, e);
      this.#advance(e - this.#pos);
      return mk('ident', text);
    }
    if (isDigit(c) || (c === '.' && isDigit(s[this.#pos + 1] ?? ''))) {
      return mk('number', this.#number());
    }
    if (c === '"') return mk('string', this.#quoted(line, col));
    if (c === '`') return mk('string', this.#raw(), { raw: true });
    if (c === '$' && (s[this.#pos + 1] === '"' || s[this.#pos + 1] === '`')) {
      return mk('template', '', { parts: this.#template() });
    }
    for (const p of PUNCT2) {
      if (s.startsWith(p, this.#pos)) {
        this.#advance(2);
        return mk('punct', p);
      }
    }
    if (PUNCT1.includes(c)) {
      this.#advance();
      return mk('punct', c);
    }
    this.#error(`illegal token: unexpected character ${JSON.stringify(c)}`);
  }

  #number(): string {
    const s = this.#src;
    const start = this.#pos;
    let e = start;
    while (isDigit(s[e] ?? '')) e++;
    if (s[e] === '.' && isDigit(s[e + 1] ?? '')) {
      e++;
      while (isDigit(s[e] ?? '')) e++;
    }
    if (s[e] === 'e' || s[e] === 'E') {
      let f = e + 1;
      if (s[f] === '+' || s[f] === '-') f++;
      if (isDigit(s[f] ?? '')) {
        e = f;
        while (isDigit(s[e] ?? '')) e++;
      }
    }
    if (isIdentStart(s[e] ?? '')) this.#error('illegal number format');
    const text = s.slice(start, e);
    if (text.length > 1 && text[0] === '0' && isDigit(text[1]!)) this.#error('illegal number format: leading zeros');
    this.#advance(e - start);
    return text.startsWith('.') ? '0' + text : text;
  }

  /** Double-quoted string with JSON escapes. */
  #quoted(line: number, col: number): string {
    const s = this.#src;
    this.#advance();
    let out = '';
    for (;;) {
      if (this.#pos >= s.length || s[this.#pos] === '\n') this.#error('non-terminated string', line, col);
      const ch = s[this.#pos]!;
      if (ch === '"') {
        this.#advance();
        return out;
      }
      if (ch === '\\') {
        out += this.#escape(false);
        continue;
      }
      out += ch;
      this.#advance();
    }
  }

  #escape(template: boolean): string {
    const s = this.#src;
    const e = s[this.#pos + 1];
    const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
    if (e !== undefined && simple[e] !== undefined) {
      this.#advance(2);
      return simple[e];
    }
    if (template && e === '{') {
      this.#advance(2);
      return '{';
    }
    if (e === 'u') {
      const hex = s.slice(this.#pos + 2, this.#pos + 6);
      if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.#error('illegal unicode escape');
      this.#advance(6);
      return String.fromCharCode(Number.parseInt(hex, 16));
    }
    this.#error(`illegal escape sequence \\${e ?? ''}`);
  }

  #raw(): string {
    const s = this.#src;
    const line = this.#line;
    const col = this.#col;
    this.#advance();
    const end = s.indexOf('`', this.#pos);
    if (end < 0) this.#error('non-terminated raw string', line, col);
    const text = s.slice(this.#pos, end);
    this.#advance(end - this.#pos + 1);
    return text;
  }

  /** `$"..."` or `$\`...\``: literal parts and `{expr}` parts; `\{` escapes a brace. */
  #template(): TemplatePart[] {
    const s = this.#src;
    const line = this.#line;
    const col = this.#col;
    this.#advance();
    const quote = s[this.#pos]!;
    const raw = quote === '`';
    this.#advance();
    const parts: TemplatePart[] = [];
    let text = '';
    for (;;) {
      if (this.#pos >= s.length || (!raw && s[this.#pos] === '\n')) this.#error('non-terminated template string', line, col);
      const ch = s[this.#pos]!;
      if (ch === quote) {
        this.#advance();
        if (text) parts.push({ text, expr: false, line, col });
        return parts;
      }
      if (ch === '\\' && (!raw || s[this.#pos + 1] === '{')) {
        text += this.#escape(true);
        continue;
      }
      if (ch === '{') {
        if (text) parts.push({ text, expr: false, line, col });
        text = '';
        parts.push(this.#templateExpr());
        continue;
      }
      text += ch;
      this.#advance();
    }
  }

  #templateExpr(): TemplatePart {
    const s = this.#src;
    this.#advance();
    const line = this.#line;
    const col = this.#col;
    const start = this.#pos;
    let depth = 0;
    while (this.#pos < s.length) {
      const ch = s[this.#pos]!;
      if (ch === '"') {
        this.#quoted(this.#line, this.#col);
        continue;
      }
      if (ch === '`') {
        this.#raw();
        continue;
      }
      if (ch === '{') depth++;
      if (ch === '}') {
        if (depth === 0) {
          const text = s.slice(start, this.#pos);
          this.#advance();
          return { text, expr: true, line, col };
        }
        depth--;
      }
      this.#advance();
    }
    this.#error('non-terminated template expression', line, col);
  }

  get file(): string {
    return this.#file;
  }
  get base(): { line: number; col: number } {
    return { line: this.#lineBase, col: this.#colBase };
  }
}
