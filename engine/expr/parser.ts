/**
 * Recursive-descent parser for Milvus filter expressions, producing an untyped AST.
 *
 * Precedence, lowest first:
 *   or (`or`, `||`)
 *   and (`and`, `&&`)
 *   not (`not`, `!`) — prefix
 *   `==` `!=`
 *   `<` `<=` `>` `>=` (one chained range allowed: `1 < x <= 5`, `10 >= x > 2`)
 *   postfix predicates: `in [..]`, `not in [..]`, `like 'p'`, `not like 'p'`, `is null`, `is not null`
 *   `+` `-`
 *   `*` `/` `%`
 *   unary `-` `+`
 *   indexing `x["key"]`, `x[0]`
 *   primary: literal, identifier, `{template}`, `( expr )`, `[ list ]`, `fn(args)`, `exists path`
 */
import { describeToken, FilterError, tokenize, type Token } from "./lexer.ts";

export type CmpOp = "==" | "!=" | "<" | "<=" | ">" | ">=";
export type ArithOp = "+" | "-" | "*" | "/" | "%";

export type Node =
  | { readonly kind: "int"; readonly value: number | bigint; readonly pos: number; readonly text: string }
  | { readonly kind: "float"; readonly value: number; readonly pos: number; readonly text: string }
  | { readonly kind: "string"; readonly value: string; readonly pos: number; readonly text: string }
  | { readonly kind: "bool"; readonly value: boolean; readonly pos: number; readonly text: string }
  | { readonly kind: "list"; readonly items: readonly Node[]; readonly pos: number }
  | { readonly kind: "template"; readonly name: string; readonly pos: number }
  | { readonly kind: "ident"; readonly name: string; readonly pos: number }
  | { readonly kind: "index"; readonly target: Node; readonly key: string | number; readonly pos: number }
  | { readonly kind: "call"; readonly name: string; readonly args: readonly Node[]; readonly pos: number }
  | { readonly kind: "neg"; readonly operand: Node; readonly pos: number }
  | { readonly kind: "not"; readonly operand: Node; readonly pos: number }
  | { readonly kind: "arith"; readonly op: ArithOp; readonly left: Node; readonly right: Node; readonly pos: number }
  | { readonly kind: "cmp"; readonly op: CmpOp; readonly left: Node; readonly right: Node; readonly pos: number }
  | {
      readonly kind: "range";
      readonly lower: Node;
      readonly lowerOp: CmpOp;
      readonly middle: Node;
      readonly upperOp: CmpOp;
      readonly upper: Node;
      readonly pos: number;
      readonly upperPos: number;
    }
  | { readonly kind: "logic"; readonly op: "and" | "or"; readonly left: Node; readonly right: Node; readonly pos: number }
  | { readonly kind: "in"; readonly negated: boolean; readonly operand: Node; readonly list: Node; readonly pos: number }
  | { readonly kind: "like"; readonly negated: boolean; readonly operand: Node; readonly pattern: Node; readonly pos: number }
  | { readonly kind: "isnull"; readonly negated: boolean; readonly operand: Node; readonly pos: number }
  | { readonly kind: "exists"; readonly operand: Node; readonly pos: number };

const KEYWORDS = new Set(["and", "or", "not", "in", "like", "is", "null"]);

class Parser {
  private i = 0;
  constructor(private readonly toks: Token[]) {}

  private get tok(): Token {
    return this.toks[this.i]!;
  }
  private peek(k = 1): Token {
    return this.toks[Math.min(this.i + k, this.toks.length - 1)]!;
  }
  private next(): Token {
    const t = this.tok;
    if (t.kind !== "eof") this.i++;
    return t;
  }
  private isOp(t: Token, ...ops: string[]): boolean {
    return t.kind === "op" && ops.includes(t.text);
  }
  private isKw(t: Token, kw: string): boolean {
    return t.kind === "ident" && t.text.toLowerCase() === kw;
  }

  parse(): Node {
    if (this.tok.kind === "eof") throw new FilterError("filter is empty; expected an expression", 0, "an expression");
    const e = this.parseOr(undefined);
    const t = this.tok;
    if (t.kind !== "eof") {
      if (this.isOp(t, ")")) throw new FilterError("unmatched ')'", t.pos, "end of input");
      throw new FilterError(`expected an operator or end of input, found ${describeToken(t)}`, t.pos, "an operator or end of input");
    }
    return e;
  }

  private parseOr(after: string | undefined): Node {
    let left = this.parseAnd(after);
    while (this.isKw(this.tok, "or") || this.isOp(this.tok, "||")) {
      const op = this.next();
      const right = this.parseAnd(op.text);
      left = { kind: "logic", op: "or", left, right, pos: op.pos };
    }
    return left;
  }

  private parseAnd(after: string | undefined): Node {
    let left = this.parseNot(after);
    while (this.isKw(this.tok, "and") || this.isOp(this.tok, "&&")) {
      const op = this.next();
      const right = this.parseNot(op.text);
      left = { kind: "logic", op: "and", left, right, pos: op.pos };
    }
    return left;
  }

  private parseNot(after: string | undefined): Node {
    if (this.isKw(this.tok, "not") || this.isOp(this.tok, "!")) {
      const op = this.next();
      const operand = this.parseNot(op.text);
      return { kind: "not", operand, pos: op.pos };
    }
    return this.parseEquality(after);
  }

  private parseEquality(after: string | undefined): Node {
    let left = this.parseRelational(after);
    while (this.isOp(this.tok, "==", "!=")) {
      const op = this.next();
      const right = this.parseRelational(op.text);
      left = { kind: "cmp", op: op.text as CmpOp, left, right, pos: op.pos };
    }
    return left;
  }

  private parseRelational(after: string | undefined): Node {
    const left = this.parsePostfix(after);
    if (!this.isOp(this.tok, "<", "<=", ">", ">=")) return left;
    const op1 = this.next();
    const middle = this.parsePostfix(op1.text);
    if (!this.isOp(this.tok, "<", "<=", ">", ">=")) {
      return { kind: "cmp", op: op1.text as CmpOp, left, right: middle, pos: op1.pos };
    }
    const op2 = this.next();
    const up1 = op1.text[0] === "<";
    const up2 = op2.text[0] === "<";
    if (up1 !== up2) {
      throw new FilterError(
        `a range must use '<'/'<=' on both sides or '>'/'>=' on both sides, found '${op1.text}' and '${op2.text}'`,
        op2.pos,
        up1 ? "'<' or '<='" : "'>' or '>='",
      );
    }
    const upper = this.parsePostfix(op2.text);
    if (this.isOp(this.tok, "<", "<=", ">", ">=")) {
      throw new FilterError(`a range can chain at most two comparisons, found another '${this.tok.text}'`, this.tok.pos, "end of the range");
    }
    return {
      kind: "range",
      lower: left,
      lowerOp: op1.text as CmpOp,
      middle,
      upperOp: op2.text as CmpOp,
      upper,
      pos: op1.pos,
      upperPos: op2.pos,
    };
  }

  private parsePostfix(after: string | undefined): Node {
    const operand = this.parseAdditive(after);
    let t = this.tok;
    let negated = false;
    let notPos = -1;
    if (this.isKw(t, "not") && (this.isKw(this.peek(), "in") || this.isKw(this.peek(), "like"))) {
      negated = true;
      notPos = t.pos;
      this.next();
      t = this.tok;
    }
    if (this.isKw(t, "in")) {
      this.next();
      const list = this.parseAdditive(negated ? "not in" : "in");
      return { kind: "in", negated, operand, list, pos: negated ? notPos : t.pos };
    }
    if (this.isKw(t, "like")) {
      this.next();
      const pattern = this.parseAdditive(negated ? "not like" : "like");
      return { kind: "like", negated, operand, pattern, pos: negated ? notPos : t.pos };
    }
    if (this.isKw(t, "is")) {
      this.next();
      let neg = false;
      if (this.isKw(this.tok, "not")) {
        this.next();
        neg = true;
      }
      if (!this.isKw(this.tok, "null")) {
        throw new FilterError(
          `expected 'null' after '${neg ? "is not" : "is"}', found ${describeToken(this.tok)}`,
          this.tok.pos,
          "'null'",
        );
      }
      this.next();
      return { kind: "isnull", negated: neg, operand, pos: t.pos };
    }
    return operand;
  }

  private parseAdditive(after: string | undefined): Node {
    let left = this.parseMultiplicative(after);
    while (this.isOp(this.tok, "+", "-")) {
      const op = this.next();
      const right = this.parseMultiplicative(op.text);
      left = { kind: "arith", op: op.text as ArithOp, left, right, pos: op.pos };
    }
    return left;
  }

  private parseMultiplicative(after: string | undefined): Node {
    let left = this.parseUnary(after);
    while (this.isOp(this.tok, "*", "/", "%")) {
      const op = this.next();
      const right = this.parseUnary(op.text);
      left = { kind: "arith", op: op.text as ArithOp, left, right, pos: op.pos };
    }
    return left;
  }

  private parseUnary(after: string | undefined): Node {
    if (this.isOp(this.tok, "-", "+")) {
      const op = this.next();
      const operand = this.parseUnary(op.text);
      if (op.text === "+") return operand;
      return { kind: "neg", operand, pos: op.pos };
    }
    return this.parseIndex(after);
  }

  private parseIndex(after: string | undefined): Node {
    let target = this.parsePrimary(after);
    while (this.isOp(this.tok, "[")) {
      const open = this.next();
      const k = this.tok;
      let key: string | number;
      if (k.kind === "str") key = k.value as string;
      else if (k.kind === "num" && !k.isFloat && typeof k.value === "number") key = k.value;
      else {
        throw new FilterError(
          `expected a string key or a non-negative integer index after '[', found ${describeToken(k)}`,
          k.pos,
          "a string key or an integer index",
        );
      }
      this.next();
      if (!this.isOp(this.tok, "]")) {
        throw new FilterError(`expected ']' after the index, found ${describeToken(this.tok)}`, this.tok.pos, "']'");
      }
      this.next();
      target = { kind: "index", target, key, pos: open.pos };
    }
    return target;
  }

  private expectedValue(after: string | undefined, t: Token): FilterError {
    const where = after === undefined ? "" : ` after '${after}'`;
    if (this.isKw(t, "null")) {
      return new FilterError(`expected a value${where}, found 'null'; use 'is null' or 'is not null' to test for null`, t.pos, "a value");
    }
    return new FilterError(`expected a value${where}, found ${describeToken(t)}`, t.pos, "a value");
  }

  private parsePrimary(after: string | undefined): Node {
    const t = this.tok;
    switch (t.kind) {
      case "num":
        this.next();
        return t.isFloat
          ? { kind: "float", value: t.value as number, pos: t.pos, text: t.text }
          : { kind: "int", value: t.value as number | bigint, pos: t.pos, text: t.text };
      case "str":
        this.next();
        return { kind: "string", value: t.value as string, pos: t.pos, text: t.text };
      case "template":
        this.next();
        return { kind: "template", name: t.text, pos: t.pos };
      case "ident": {
        const lower = t.text.toLowerCase();
        if (lower === "true" || lower === "false") {
          this.next();
          return { kind: "bool", value: lower === "true", pos: t.pos, text: t.text };
        }
        if (lower === "exists" && (this.peek().kind === "ident" || this.isOp(this.peek(), "("))) {
          this.next();
          const operand = this.parseIndex("exists");
          return { kind: "exists", operand, pos: t.pos };
        }
        if (this.isOp(this.peek(), "(")) {
          this.next();
          const open = this.next();
          const args: Node[] = [];
          if (!this.isOp(this.tok, ")")) {
            for (;;) {
              args.push(this.parseOr(args.length === 0 ? "(" : ","));
              if (this.isOp(this.tok, ",")) {
                this.next();
                continue;
              }
              if (this.isOp(this.tok, ")")) break;
              throw new FilterError(
                `expected ',' or ')' in the arguments of '${t.text}' (opened at position ${open.pos}), found ${describeToken(this.tok)}`,
                this.tok.pos,
                "',' or ')'",
              );
            }
          }
          this.next();
          return { kind: "call", name: t.text, args, pos: t.pos };
        }
        if (KEYWORDS.has(lower)) throw this.expectedValue(after, t);
        this.next();
        return { kind: "ident", name: t.text, pos: t.pos };
      }
      case "op":
        if (t.text === "(") {
          this.next();
          const e = this.parseOr("(");
          if (!this.isOp(this.tok, ")")) {
            throw new FilterError(
              `expected ')' to close '(' at position ${t.pos}, found ${describeToken(this.tok)}`,
              this.tok.pos,
              "')'",
            );
          }
          this.next();
          return e;
        }
        if (t.text === "[") {
          this.next();
          const items: Node[] = [];
          while (!this.isOp(this.tok, "]")) {
            items.push(this.parseOr(items.length === 0 ? "[" : ","));
            if (this.isOp(this.tok, ",")) {
              this.next();
              continue;
            }
            if (!this.isOp(this.tok, "]")) {
              throw new FilterError(
                `expected ',' or ']' in the list opened at position ${t.pos}, found ${describeToken(this.tok)}`,
                this.tok.pos,
                "',' or ']'",
              );
            }
          }
          this.next();
          return { kind: "list", items, pos: t.pos };
        }
        throw this.expectedValue(after, t);
      case "eof":
        throw this.expectedValue(after, t);
    }
  }
}

/** Parse filter text into an AST. Throws FilterError. */
export function parseFilter(text: string): Node {
  return new Parser(tokenize(text)).parse();
}
