/**
 * Tokenizer for the Milvus boolean filter expression language.
 *
 * Positions are 0-based offsets (UTF-16 code units) into the filter text.
 */

/** A filter that cannot be parsed or type-checked. `position` is a 0-based offset into the filter text. */
export class FilterError extends Error {
  readonly position: number;
  readonly expected?: string;
  constructor(message: string, position: number, expected?: string) {
    super(`filter error at position ${position}: ${message}`);
    this.name = "FilterError";
    this.position = position;
    if (expected !== undefined) this.expected = expected;
  }
}

export type TokenKind = "num" | "str" | "ident" | "op" | "template" | "eof";

export interface Token {
  readonly kind: TokenKind;
  /** Source text of the token (for `str`, the raw quoted text; for `template`, the name). */
  readonly text: string;
  readonly pos: number;
  /** num: number | bigint; str: decoded string. */
  readonly value?: number | bigint | string;
  /** num only: written with a fraction or exponent. */
  readonly isFloat?: boolean;
}

const OPERATORS = ["==", "!=", "<=", ">=", "&&", "||", "<", ">", "+", "-", "*", "/", "%", "(", ")", "[", "]", ",", "!"];

const isDigit = (c: string): boolean => c >= "0" && c <= "9";
const isIdentStart = (c: string): boolean => (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "_" || c === "$";
const isIdentPart = (c: string): boolean => isIdentStart(c) || isDigit(c);
const isSpace = (c: string): boolean => c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f" || c === "\v";

/** Describe a token for an error message: `end of input` or the quoted source text. */
export const describeToken = (t: Token): string => {
  if (t.kind === "eof") return "end of input";
  if (t.kind === "template") return `'{${t.text}}'`;
  return `'${t.text}'`;
};

/** Parse an integer literal: a JS number when it is a safe integer, otherwise an exact bigint. */
const integerValue = (digits: string): number | bigint => {
  const big = BigInt(digits);
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
};

const SIMPLE_ESCAPES: Record<string, string> = {
  n: "\n",
  t: "\t",
  r: "\r",
  b: "\b",
  f: "\f",
  v: "\v",
  "0": "\0",
  "\\": "\\",
  "'": "'",
  '"': '"',
  "/": "/",
};

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text[i]!;
    if (isSpace(c)) {
      i++;
      continue;
    }
    const start = i;
    // Numbers: 123, 1.5, .5, 1e-3, 0x1F, 0b101.
    if (isDigit(c) || (c === "." && i + 1 < n && isDigit(text[i + 1]!))) {
      if (c === "0" && (text[i + 1] === "x" || text[i + 1] === "X" || text[i + 1] === "b" || text[i + 1] === "B")) {
        const hex = text[i + 1] === "x" || text[i + 1] === "X";
        i += 2;
        const digitsStart = i;
        while (i < n && (hex ? /[0-9a-fA-F]/.test(text[i]!) : text[i] === "0" || text[i] === "1")) i++;
        if (i === digitsStart || (i < n && isIdentPart(text[i]!))) {
          throw new FilterError(`invalid number literal '${text.slice(start, i + 1)}'`, start, "a number");
        }
        tokens.push({ kind: "num", text: text.slice(start, i), pos: start, value: integerValue(text.slice(start, i)), isFloat: false });
        continue;
      }
      let isFloat = false;
      while (i < n && isDigit(text[i]!)) i++;
      if (text[i] === ".") {
        isFloat = true;
        i++;
        while (i < n && isDigit(text[i]!)) i++;
      }
      if (text[i] === "e" || text[i] === "E") {
        let j = i + 1;
        if (text[j] === "+" || text[j] === "-") j++;
        if (j < n && isDigit(text[j]!)) {
          isFloat = true;
          i = j;
          while (i < n && isDigit(text[i]!)) i++;
        }
      }
      if (i < n && (isIdentPart(text[i]!) || text[i] === ".")) {
        let j = i;
        while (j < n && (isIdentPart(text[j]!) || text[j] === ".")) j++;
        throw new FilterError(`invalid number literal '${text.slice(start, j)}'`, start, "a number");
      }
      const raw = text.slice(start, i);
      tokens.push({ kind: "num", text: raw, pos: start, value: isFloat ? Number(raw) : integerValue(raw), isFloat });
      continue;
    }
    if (isIdentStart(c)) {
      while (i < n && isIdentPart(text[i]!)) i++;
      tokens.push({ kind: "ident", text: text.slice(start, i), pos: start });
      continue;
    }
    if (c === "'" || c === '"') {
      i++;
      let out = "";
      let closed = false;
      while (i < n) {
        const ch = text[i]!;
        if (ch === c) {
          closed = true;
          i++;
          break;
        }
        if (ch !== "\\") {
          out += ch;
          i++;
          continue;
        }
        const e = text[i + 1];
        if (e === undefined) break;
        if (e in SIMPLE_ESCAPES) {
          out += SIMPLE_ESCAPES[e];
          i += 2;
        } else if (e === "u" || e === "x") {
          let hex: string | undefined;
          let len: number;
          if (e === "u" && text[i + 2] === "{") {
            const close = text.indexOf("}", i + 3);
            hex = close < 0 ? undefined : text.slice(i + 3, close);
            len = close < 0 ? 0 : close + 1 - i;
          } else {
            const width = e === "u" ? 4 : 2;
            hex = text.slice(i + 2, i + 2 + width);
            len = 2 + width;
            if (hex.length !== width) hex = undefined;
          }
          const code = hex !== undefined && /^[0-9a-fA-F]+$/.test(hex) ? parseInt(hex, 16) : NaN;
          if (!Number.isFinite(code) || code > 0x10ffff) {
            throw new FilterError(`invalid escape sequence '\\${e}' in string literal`, i, "a valid escape sequence");
          }
          out += String.fromCodePoint(code);
          i += len;
        } else {
          // Unknown escapes (e.g. `\%`, `\_` in like patterns) keep their backslash.
          out += "\\" + e;
          i += 2;
        }
      }
      if (!closed) {
        throw new FilterError(`unterminated string literal starting at position ${start}`, n, `closing ${c}`);
      }
      tokens.push({ kind: "str", text: text.slice(start, i), pos: start, value: out });
      continue;
    }
    if (c === "{") {
      i++;
      while (i < n && isSpace(text[i]!)) i++;
      const nameStart = i;
      if (i < n && isIdentStart(text[i]!)) while (i < n && isIdentPart(text[i]!)) i++;
      const name = text.slice(nameStart, i);
      while (i < n && isSpace(text[i]!)) i++;
      if (name === "" || text[i] !== "}") {
        throw new FilterError("expected a template parameter like {name}", start, "a template parameter name");
      }
      i++;
      tokens.push({ kind: "template", text: name, pos: start });
      continue;
    }
    const op = OPERATORS.find((o) => text.startsWith(o, i));
    if (op !== undefined) {
      tokens.push({ kind: "op", text: op, pos: start });
      i += op.length;
      continue;
    }
    if (c === "=") throw new FilterError("unexpected '='; use '==' for equality", start, "'=='");
    if (c === "&" || c === "|") throw new FilterError(`unexpected '${c}'; use '${c}${c}' or '${c === "&" ? "and" : "or"}'`, start, `'${c}${c}'`);
    throw new FilterError(`unexpected character '${c}'`, start);
  }
  tokens.push({ kind: "eof", text: "", pos: n });
  return tokens;
}
