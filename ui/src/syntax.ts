// A small PromQL syntax checker that says *where* an expression is wrong.
// The server stays the authority on validity (its parser does not report
// positions); this only finds the offset to point at. Pure functions.

export interface SyntaxError {
  offset: number;
  message: string;
}

type Kind = 'ident' | 'number' | 'duration' | 'string' | 'op' | 'eof';
interface Token {
  kind: Kind;
  text: string;
  pos: number;
}

const AGGREGATIONS = new Set([
  'sum', 'avg', 'count', 'min', 'max', 'group', 'stddev', 'stdvar', 'topk', 'bottomk', 'count_values', 'quantile',
  'limitk', 'limit_ratio',
]);
const BINARY_KEYWORDS = new Set(['and', 'or', 'unless', 'atan2']);
const BINARY_OPS = new Set(['+', '-', '*', '/', '%', '^', '==', '!=', '<=', '>=', '<', '>']);
const MATCH_OPS = new Set(['=', '!=', '=~', '!~']);

class Fail {
  constructor(readonly err: SyntaxError) {}
}

/** Splits an expression into tokens; throws Fail on a character no token starts with. */
function lex(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  // Inside [...] a colon separates subquery range and step.
  let brackets = 0;
  while (i < src.length) {
    const c = src[i];
    if (c === '[') brackets++;
    else if (c === ']') brackets = Math.max(0, brackets - 1);
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '#') {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    const start = i;
    if (c === '"' || c === "'" || c === '`') {
      i++;
      while (i < src.length && src[i] !== c) {
        if (src[i] === '\\' && c !== '`') i++;
        else if (src[i] === '\n' && c !== '`') break;
        i++;
      }
      if (i >= src.length || src[i] !== c) throw new Fail({ offset: start, message: 'unterminated string' });
      i++;
      out.push({ kind: 'string', text: src.slice(start, i), pos: start });
      continue;
    }
    const num = /^(0[xX][0-9a-fA-F]+|(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)/.exec(src.slice(i));
    if (num) {
      const dur = /^(\d+(ms|[smhdwy]))+/.exec(src.slice(i));
      if (dur && dur[0].length > num[0].length) {
        i += dur[0].length;
        out.push({ kind: 'duration', text: dur[0], pos: start });
      } else {
        i += num[0].length;
        out.push({ kind: 'number', text: num[0], pos: start });
      }
      continue;
    }
    const id = (brackets > 0 ? /^[a-zA-Z_][a-zA-Z0-9_]*/ : /^[a-zA-Z_:][a-zA-Z0-9_:]*/).exec(src.slice(i));
    if (id) {
      i += id[0].length;
      out.push({ kind: 'ident', text: id[0], pos: start });
      continue;
    }
    const op = /^(==|!=|<=|>=|=~|!~|[-+*/%^<>=(){}[\],:@])/.exec(src.slice(i));
    if (op) {
      i += op[0].length;
      out.push({ kind: 'op', text: op[0], pos: start });
      continue;
    }
    throw new Fail({ offset: start, message: `unexpected character ${JSON.stringify(c)}` });
  }
  out.push({ kind: 'eof', text: '', pos: src.length });
  return out;
}

class Parser {
  private i = 0;
  constructor(private toks: Token[]) {}

  private peek(): Token {
    return this.toks[this.i];
  }
  private next(): Token {
    return this.toks[this.i++];
  }
  private is(text: string): boolean {
    const t = this.peek();
    return t.kind !== 'string' && t.kind !== 'eof' && t.text === text;
  }
  private fail(t: Token, expected: string): never {
    const found = t.kind === 'eof' ? 'end of input' : JSON.stringify(t.text);
    throw new Fail({ offset: t.pos, message: `unexpected ${found}, expected ${expected}` });
  }
  private expect(text: string) {
    const t = this.next();
    if (t.kind === 'string' || t.text !== text) this.fail(t, JSON.stringify(text));
  }

  parse() {
    this.expr();
    const t = this.peek();
    if (t.kind !== 'eof') this.fail(t, 'an operator or the end of the expression');
  }

  private expr() {
    this.unary();
    for (;;) {
      const t = this.peek();
      const isOp = (t.kind === 'op' && BINARY_OPS.has(t.text)) || (t.kind === 'ident' && BINARY_KEYWORDS.has(t.text));
      if (!isOp) return;
      this.next();
      if (this.is('bool')) this.next();
      if (this.is('on') || this.is('ignoring')) {
        this.next();
        this.labelList();
      }
      if (this.is('group_left') || this.is('group_right')) {
        this.next();
        if (this.is('(')) this.labelList();
      }
      this.unary();
    }
  }

  private unary() {
    while (this.is('+') || this.is('-')) this.next();
    this.primary();
    this.postfix();
  }

  private postfix() {
    for (;;) {
      if (this.is('[')) {
        this.next();
        this.durationExpr();
        if (this.is(':')) {
          this.next();
          if (!this.is(']')) this.durationExpr();
        }
        this.expect(']');
      } else if (this.is('offset')) {
        this.next();
        if (this.is('-') || this.is('+')) this.next();
        this.durationExpr();
      } else if (this.is('@')) {
        this.next();
        const t = this.next();
        if (t.kind === 'number') continue;
        if (t.kind === 'ident' && (t.text === 'start' || t.text === 'end')) {
          this.expect('(');
          this.expect(')');
          continue;
        }
        this.fail(t, 'a timestamp, start() or end()');
      } else return;
    }
  }

  private durationExpr() {
    const t = this.next();
    if (t.kind !== 'duration' && t.kind !== 'number') this.fail(t, 'a duration');
  }

  private primary() {
    const t = this.next();
    switch (t.kind) {
      case 'number':
      case 'duration':
      case 'string':
        return;
      case 'eof':
        this.fail(t, 'an expression');
      // falls through (fail never returns)
      case 'op':
        if (t.text === '(') {
          this.expr();
          this.expect(')');
          return;
        }
        if (t.text === '{') {
          this.matchers();
          return;
        }
        this.fail(t, 'an expression');
      // falls through
      case 'ident': {
        const lower = t.text.toLowerCase();
        if (lower === 'inf' || lower === 'nan') return;
        if (AGGREGATIONS.has(t.text) && (this.is('by') || this.is('without') || this.is('('))) {
          if (this.is('by') || this.is('without')) {
            this.next();
            this.labelList();
          }
          this.args();
          if (this.is('by') || this.is('without')) {
            this.next();
            this.labelList();
          }
          return;
        }
        if (this.is('(')) {
          this.args();
          return;
        }
        if (this.is('{')) {
          this.next();
          this.matchers();
        }
        return;
      }
    }
  }

  private args() {
    this.expect('(');
    if (this.is(')')) {
      this.next();
      return;
    }
    for (;;) {
      this.expr();
      if (this.is(',')) {
        this.next();
        continue;
      }
      const t = this.next();
      if (t.kind !== 'op' || t.text !== ')') this.fail(t, '"," or ")"');
      return;
    }
  }

  private labelList() {
    this.expect('(');
    for (;;) {
      const t = this.next();
      if (t.kind === 'op' && t.text === ')') return;
      if (t.kind !== 'ident' && t.kind !== 'string') this.fail(t, 'a label name');
      const sep = this.next();
      if (sep.kind === 'op' && sep.text === ')') return;
      if (sep.kind !== 'op' || sep.text !== ',') this.fail(sep, '"," or ")"');
    }
  }

  /** After `{`: matchers up to `}`. */
  private matchers() {
    for (;;) {
      const t = this.next();
      if (t.kind === 'op' && t.text === '}') return;
      if (t.kind !== 'ident' && t.kind !== 'string') this.fail(t, 'a label matcher');
      const op = this.peek();
      if (op.kind === 'op' && MATCH_OPS.has(op.text)) {
        this.next();
        const v = this.next();
        if (v.kind !== 'string') this.fail(v, 'a quoted label value');
      } else if (t.kind === 'ident') {
        this.fail(op, 'a match operator (=, !=, =~, !~)');
      }
      const sep = this.next();
      if (sep.kind === 'op' && sep.text === '}') return;
      if (sep.kind !== 'op' || sep.text !== ',') this.fail(sep, '"," or "}"');
    }
  }
}

/** The first syntax error of `expr`, or null when this checker finds none. */
export function checkSyntax(expr: string): SyntaxError | null {
  try {
    new Parser(lex(expr)).parse();
    return null;
  } catch (e) {
    if (e instanceof Fail) return e.err;
    throw e;
  }
}
