/**
 * Type-checks a filter AST against a collection schema and compiles it to
 * closures over row numbers.
 *
 * Two stages:
 *  1. `check` (once per filter): resolves identifiers, substitutes templates,
 *     folds constants and type-checks, producing a typed IR. All FilterErrors
 *     are raised here.
 *  2. `bind` (once per data source): turns the IR into nested closures, fetching
 *     each column getter once. No AST walking or string switching per row.
 *
 * Null semantics are SQL's three-valued logic. Every predicate is compiled into
 * two closures: `isTrue(row)` and `isFalse(row)`; a predicate whose operands are
 * null (or, for untyped JSON values, of a non-comparable type) is UNKNOWN, so
 * both return false. `not p` swaps the pair; `and`/`or` follow Kleene logic.
 * The row matches when `isTrue` holds.
 */
import type { CollectionSchema, FieldSchema, ScalarType } from "../../schemas/collection.ts";
import { FilterError } from "./lexer.ts";
import type { ArithOp, CmpOp, Node } from "./parser.ts";

// ---------------------------------------------------------------------------
// Typed IR

/** A compile-time constant. Integers are numbers when safe, otherwise bigint. */
export type Const = null | boolean | number | bigint | string | readonly Const[];

/** Numeric representation at run time: always number, always bigint (Int64), or either. */
type NumRepr = "number" | "bigint" | "mixed";

type SType =
  | { readonly k: "num"; readonly repr: NumRepr }
  | { readonly k: "str" }
  | { readonly k: "bool" }
  /** Untyped: JSON field, JSON path, dynamic key. Checked at run time. */
  | { readonly k: "dyn" }
  | { readonly k: "arr"; readonly elem: ScalarType }
  /** A constant list literal / list template. */
  | { readonly k: "list" };

type V =
  | { readonly v: "const"; readonly value: Const; readonly type: SType; readonly desc: string }
  | { readonly v: "field"; readonly name: string; readonly type: SType; readonly desc: string }
  | {
      readonly v: "path";
      readonly field: string;
      readonly keys: readonly (string | number)[];
      readonly type: SType;
      readonly desc: string;
    }
  | { readonly v: "arith"; readonly op: ArithOp; readonly l: V; readonly r: V; readonly type: SType; readonly desc: string }
  | { readonly v: "neg"; readonly x: V; readonly type: SType; readonly desc: string }
  | { readonly v: "alen"; readonly x: V; readonly type: SType; readonly desc: string }
  | { readonly v: "pred"; readonly p: P; readonly type: SType; readonly desc: string };

type InMode = "bigint" | "number" | "str" | "bool" | "dyn";

type P =
  | { readonly p: "const"; readonly value: boolean | null }
  | { readonly p: "and" | "or"; readonly l: P; readonly r: P }
  | { readonly p: "not"; readonly x: P }
  | { readonly p: "cmp"; readonly op: CmpOp; readonly l: V; readonly r: V; readonly mode: "static" | "dyn" | "deep" }
  | { readonly p: "in"; readonly x: V; readonly values: readonly Const[]; readonly mode: InMode }
  | { readonly p: "like"; readonly x: V; readonly match: (s: string) => boolean }
  | { readonly p: "null"; readonly x: V }
  | { readonly p: "exists"; readonly field: string; readonly keys: readonly (string | number)[] }
  | {
      readonly p: "contains";
      readonly how: "one" | "all" | "any";
      readonly x: V;
      readonly values: readonly Const[];
      readonly elem: ScalarType | undefined;
    }
  | { readonly p: "truthy"; readonly x: V };

// ---------------------------------------------------------------------------
// Type checking

const NUMBER: SType = { k: "num", repr: "number" };
const BIGINT: SType = { k: "num", repr: "bigint" };
const MIXED: SType = { k: "num", repr: "mixed" };
const STR: SType = { k: "str" };
const BOOL: SType = { k: "bool" };
const DYN: SType = { k: "dyn" };
const LIST: SType = { k: "list" };

const scalarSType = (t: ScalarType): SType => {
  switch (t) {
    case "Bool":
      return BOOL;
    case "Int64":
      return BIGINT;
    case "VarChar":
      return STR;
    default:
      return NUMBER;
  }
};

/** Normalize an integer: number when safe, else bigint. */
const normInt = (b: bigint): number | bigint =>
  b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;

const constType = (c: Const): SType => {
  if (c === null) return DYN;
  switch (typeof c) {
    case "number":
      return NUMBER;
    case "bigint":
      return MIXED;
    case "string":
      return STR;
    case "boolean":
      return BOOL;
    default:
      return LIST;
  }
};

const describeConst = (c: Const): string => {
  if (c === null) return "null";
  switch (typeof c) {
    case "number":
    case "bigint":
      return "a number";
    case "string":
      return "a string";
    case "boolean":
      return "a boolean";
    default:
      return "a list";
  }
};

type Cls = "num" | "str" | "bool" | "other";
const constClass = (c: Const): Cls => {
  switch (typeof c) {
    case "number":
    case "bigint":
      return "num";
    case "string":
      return "str";
    case "boolean":
      return "bool";
    default:
      return "other";
  }
};
const scalarClass = (t: ScalarType): Cls => (t === "Bool" ? "bool" : t === "VarChar" ? "str" : "num");

const FUNCTIONS: Record<string, { arity: number; how?: "one" | "all" | "any" }> = {
  json_contains: { arity: 2, how: "one" },
  json_contains_all: { arity: 2, how: "all" },
  json_contains_any: { arity: 2, how: "any" },
  array_contains: { arity: 2, how: "one" },
  array_contains_all: { arity: 2, how: "all" },
  array_contains_any: { arity: 2, how: "any" },
  array_length: { arity: 1 },
};

const flip = (op: CmpOp): CmpOp => {
  switch (op) {
    case "<":
      return ">";
    case "<=":
      return ">=";
    case ">":
      return "<";
    case ">=":
      return "<=";
    default:
      return op;
  }
};

export interface CheckedFilter {
  readonly ir: P;
  readonly fields: readonly string[];
}

export function check(ast: Node, schema: CollectionSchema, params: Record<string, unknown> | undefined): CheckedFilter {
  return new Checker(schema, params ?? {}).run(ast);
}

class Checker {
  private readonly used: string[] = [];
  constructor(
    private readonly schema: CollectionSchema,
    private readonly params: Record<string, unknown>,
  ) {}

  run(ast: Node): CheckedFilter {
    const ir = this.pred(ast);
    return { ir, fields: Object.freeze([...this.used]) };
  }

  private use(name: string): void {
    if (!this.used.includes(name)) this.used.push(name);
  }

  private field(name: string): FieldSchema | undefined {
    return this.schema.fields.find((f) => f.name === name);
  }

  private dynamicEnabled(): boolean {
    return this.schema.enableDynamicField || this.schema.fields.some((f) => f.isDynamic);
  }

  // ---- values ------------------------------------------------------------

  private constant(value: Const): V {
    return { v: "const", value, type: constType(value), desc: describeConst(value) };
  }

  private param(name: string, pos: number): Const {
    if (!Object.hasOwn(this.params, name) || this.params[name] === undefined) {
      throw new FilterError(`missing value for template parameter {${name}}`, pos, `a value for {${name}} in the filter parameters`);
    }
    const convert = (x: unknown): Const => {
      switch (typeof x) {
        case "number":
          if (!Number.isFinite(x)) break;
          return Number.isInteger(x) && !Number.isSafeInteger(x) ? BigInt(x) : x;
        case "bigint":
          return normInt(x);
        case "string":
        case "boolean":
          return x;
        case "object":
          if (Array.isArray(x)) return x.map(convert);
          break;
        default:
          break;
      }
      throw new FilterError(
        `template parameter {${name}} has an unsupported value (${x === null ? "null" : typeof x}); use a number, string, boolean or list`,
        pos,
        "a number, string, boolean or list",
      );
    };
    return convert(this.params[name]);
  }

  private ident(name: string, pos: number): V {
    const f = this.field(name);
    if (f !== undefined) {
      if (f.dataType === "FloatVector") {
        throw new FilterError(`vector field '${name}' cannot be used in a filter`, pos, "a scalar, JSON or Array field");
      }
      this.use(f.name);
      const desc = `${f.dataType} field '${f.name}'`;
      switch (f.dataType) {
        case "JSON":
          return { v: "field", name: f.name, type: DYN, desc };
        case "Array":
          return { v: "field", name: f.name, type: { k: "arr", elem: f.elementType ?? "VarChar" }, desc };
        default:
          return { v: "field", name: f.name, type: scalarSType(f.dataType), desc };
      }
    }
    if (this.dynamicEnabled()) {
      this.use("$meta");
      if (name === "$meta") return { v: "field", name: "$meta", type: DYN, desc: "dynamic field '$meta'" };
      return { v: "path", field: "$meta", keys: [name], type: DYN, desc: `dynamic field '${name}'` };
    }
    throw new FilterError(`field '${name}' does not exist`, pos, "a field of the collection");
  }

  private index(n: Extract<Node, { kind: "index" }>): V {
    const base = this.value(n.target);
    const key = n.key;
    if (base.type.k === "dyn" && (base.v === "field" || base.v === "path")) {
      const field = base.v === "field" ? base.name : base.field;
      const keys = base.v === "field" ? [key] : [...base.keys, key];
      const desc = `JSON path '${field}${keys.map((k) => `[${JSON.stringify(k)}]`).join("")}'`;
      return { v: "path", field, keys, type: DYN, desc };
    }
    if (base.type.k === "arr" && base.v === "field") {
      if (typeof key !== "number") {
        throw new FilterError(`${base.desc} can only be indexed by an integer, found a string key`, n.pos, "an integer index");
      }
      return { v: "path", field: base.name, keys: [key], type: scalarSType(base.type.elem), desc: `element of ${base.desc}` };
    }
    throw new FilterError(`cannot index into ${base.desc}; only JSON and Array fields can be indexed`, n.pos, "a JSON or Array field");
  }

  private value(n: Node): V {
    switch (n.kind) {
      case "int":
      case "float":
      case "string":
      case "bool":
        return this.constant(n.value);
      case "template":
        return this.constant(this.param(n.name, n.pos));
      case "list": {
        const items = n.items.map((item) => {
          const v = this.value(item);
          if (v.v !== "const") {
            throw new FilterError(`list elements must be literal values, found ${v.desc}`, item.pos, "a literal value");
          }
          return v.value;
        });
        return { v: "const", value: items, type: LIST, desc: "a list" };
      }
      case "ident":
        return this.ident(n.name, n.pos);
      case "index":
        return this.index(n);
      case "neg": {
        const x = this.value(n.operand);
        if (x.type.k !== "num" && x.type.k !== "dyn") {
          throw new FilterError(`unary '-' needs a numeric operand, found ${x.desc}`, n.pos, "a numeric operand");
        }
        if (x.v === "const") {
          const c = x.value;
          if (typeof c === "number") return this.constant(-c);
          if (typeof c === "bigint") return this.constant(normInt(-c));
          return this.constant(null);
        }
        return { v: "neg", x, type: x.type.k === "dyn" ? MIXED : x.type, desc: "a numeric expression" };
      }
      case "arith": {
        const l = this.value(n.left);
        const r = this.value(n.right);
        for (const side of [l, r]) {
          if (side.type.k !== "num" && side.type.k !== "dyn") {
            throw new FilterError(`arithmetic '${n.op}' needs numeric operands, found ${side.desc}`, n.pos, "a numeric operand");
          }
        }
        if (l.v === "const" && r.v === "const") {
          const res = arith(n.op, l.value, r.value);
          return this.constant(typeof res === "bigint" ? normInt(res) : res);
        }
        const bothNumber = l.type.k === "num" && r.type.k === "num" && l.type.repr === "number" && r.type.repr === "number";
        return { v: "arith", op: n.op, l, r, type: bothNumber ? NUMBER : MIXED, desc: "a numeric expression" };
      }
      case "call": {
        const name = n.name.toLowerCase();
        if (name === "array_length") {
          this.checkArity(n, 1);
          const x = this.value(n.args[0]!);
          if (x.type.k !== "arr" && x.type.k !== "dyn") {
            throw new FilterError(`${n.name}() needs an Array or JSON field, found ${x.desc}`, n.args[0]!.pos, "an Array or JSON field");
          }
          return { v: "alen", x, type: NUMBER, desc: "a numeric expression" };
        }
        return { v: "pred", p: this.pred(n), type: BOOL, desc: "a boolean expression" };
      }
      default:
        return { v: "pred", p: this.pred(n), type: BOOL, desc: "a boolean expression" };
    }
  }

  // ---- predicates --------------------------------------------------------

  private checkArity(n: Extract<Node, { kind: "call" }>, arity: number): void {
    if (n.args.length !== arity) {
      throw new FilterError(
        `${n.name}() takes ${arity} argument${arity === 1 ? "" : "s"}, found ${n.args.length}`,
        n.pos,
        `${arity} argument${arity === 1 ? "" : "s"}`,
      );
    }
  }

  private cmp(op: CmpOp, l: V, r: V, pos: number): P {
    const a = l.type;
    const b = r.type;
    const ordering = op !== "==" && op !== "!=";
    const fail = (why = ""): never => {
      throw new FilterError(`cannot compare ${l.desc} with ${r.desc} using '${op}'${why}`, pos, "operands of compatible types");
    };
    if (a.k === "dyn" || b.k === "dyn") {
      if (ordering && (a.k === "list" || b.k === "list" || a.k === "arr" || b.k === "arr")) fail();
      return { p: "cmp", op, l, r, mode: "dyn" };
    }
    if (a.k === "num" && b.k === "num") return { p: "cmp", op, l, r, mode: "static" };
    if (a.k === "str" && b.k === "str") return { p: "cmp", op, l, r, mode: "static" };
    if (a.k === "bool" && b.k === "bool") {
      if (ordering) fail(" (booleans support only '==' and '!=')");
      return { p: "cmp", op, l, r, mode: "static" };
    }
    if ((a.k === "arr" || a.k === "list") && (b.k === "arr" || b.k === "list")) {
      if (ordering) fail(" (arrays support only '==' and '!=')");
      if (a.k === "arr" && b.k === "arr" && scalarClass(a.elem) !== scalarClass(b.elem)) fail();
      const arr = a.k === "arr" ? a : b.k === "arr" ? b : undefined;
      const lst = a.k === "list" ? l : b.k === "list" ? r : undefined;
      if (arr && lst && lst.v === "const" && Array.isArray(lst.value)) {
        const cls = scalarClass(arr.elem);
        for (const item of lst.value as readonly Const[]) {
          if (constClass(item) !== cls) fail(` (list element ${describeConst(item)} does not match ${arr.elem} elements)`);
        }
      }
      return { p: "cmp", op, l, r, mode: "deep" };
    }
    return fail();
  }

  private listConst(n: Node, what: string): { values: readonly Const[]; positions: readonly number[] } {
    const v = this.value(n);
    if (v.v !== "const" || !Array.isArray(v.value)) {
      throw new FilterError(`expected a list after ${what}, found ${v.desc}`, n.pos, "a list like [1, 2, 3] or a list template");
    }
    const values = v.value as readonly Const[];
    const positions = n.kind === "list" ? n.items.map((i) => i.pos) : values.map(() => n.pos);
    return { values, positions };
  }

  private pred(n: Node): P {
    switch (n.kind) {
      case "logic":
        return { p: n.op, l: this.pred(n.left), r: this.pred(n.right) };
      case "not":
        return { p: "not", x: this.pred(n.operand) };
      case "cmp":
        return this.cmp(n.op, this.value(n.left), this.value(n.right), n.pos);
      case "range": {
        const lo = this.value(n.lower);
        const mid = this.value(n.middle);
        const hi = this.value(n.upper);
        return { p: "and", l: this.cmp(n.lowerOp, lo, mid, n.pos), r: this.cmp(n.upperOp, mid, hi, n.upperPos) };
      }
      case "in": {
        const x = this.value(n.operand);
        const what = n.negated ? "'not in'" : "'in'";
        const { values, positions } = this.listConst(n.list, what);
        let mode: InMode;
        let cls: Cls | undefined;
        switch (x.type.k) {
          case "num":
            mode = x.type.repr === "bigint" ? "bigint" : "number";
            cls = "num";
            break;
          case "str":
            mode = "str";
            cls = "str";
            break;
          case "bool":
            mode = "bool";
            cls = "bool";
            break;
          case "dyn":
            mode = "dyn";
            break;
          default:
            throw new FilterError(
              `${what} needs a scalar or JSON operand, found ${x.desc}${x.type.k === "arr" ? "; use array_contains_any" : ""}`,
              n.pos,
              "a scalar or JSON operand",
            );
        }
        values.forEach((item, i) => {
          const c = constClass(item);
          if (c === "other" || (cls !== undefined && c !== cls)) {
            throw new FilterError(`cannot compare ${x.desc} with ${describeConst(item)} in ${what} list`, positions[i]!, cls === undefined ? "a scalar value" : `a value of type ${cls === "num" ? "number" : cls === "str" ? "string" : "boolean"}`);
          }
        });
        const p: P = { p: "in", x, values, mode };
        return n.negated ? { p: "not", x: p } : p;
      }
      case "like": {
        const x = this.value(n.operand);
        if (x.type.k !== "str" && x.type.k !== "dyn") {
          throw new FilterError(`'like' needs a VarChar field or a JSON value, found ${x.desc}`, n.pos, "a VarChar field or JSON value");
        }
        const pat = this.value(n.pattern);
        if (pat.v !== "const" || typeof pat.value !== "string") {
          throw new FilterError(`expected a string pattern after 'like', found ${pat.desc}`, n.pattern.pos, "a string pattern");
        }
        const p: P = { p: "like", x, match: likeMatcher(pat.value) };
        return n.negated ? { p: "not", x: p } : p;
      }
      case "isnull": {
        const x = this.value(n.operand);
        if (x.v === "pred") {
          throw new FilterError(`'is null' needs a field or JSON path, found ${x.desc}`, n.pos, "a field or JSON path");
        }
        const p: P = { p: "null", x };
        return n.negated ? { p: "not", x: p } : p;
      }
      case "exists": {
        const x = this.value(n.operand);
        if (x.v !== "path" || x.type.k !== "dyn") {
          throw new FilterError(`'exists' needs a JSON path like meta["key"], found ${x.desc}`, n.operand.pos, "a JSON path");
        }
        return { p: "exists", field: x.field, keys: x.keys };
      }
      case "call": {
        const name = n.name.toLowerCase();
        const fn = Object.hasOwn(FUNCTIONS, name) ? FUNCTIONS[name] : undefined;
        if (fn === undefined) {
          throw new FilterError(`unknown function '${n.name}'`, n.pos, `one of ${Object.keys(FUNCTIONS).join(", ")}`);
        }
        if (fn.how === undefined) return this.truthy(this.value(n), n.pos);
        this.checkArity(n, fn.arity);
        const x = this.value(n.args[0]!);
        if (x.type.k !== "arr" && x.type.k !== "dyn") {
          throw new FilterError(`${n.name}() needs an Array or JSON field as its first argument, found ${x.desc}`, n.args[0]!.pos, "an Array or JSON field");
        }
        let values: readonly Const[];
        let positions: readonly number[];
        if (fn.how === "one") {
          const v = this.value(n.args[1]!);
          if (v.v !== "const") {
            throw new FilterError(`the second argument of ${n.name}() must be a literal value, found ${v.desc}`, n.args[1]!.pos, "a literal value");
          }
          values = [v.value];
          positions = [n.args[1]!.pos];
        } else {
          ({ values, positions } = this.listConst(n.args[1]!, `${n.name}(..., `));
        }
        const elem = x.type.k === "arr" ? x.type.elem : undefined;
        if (elem !== undefined) {
          const cls = scalarClass(elem);
          values.forEach((item, i) => {
            if (constClass(item) !== cls) {
              throw new FilterError(`${n.name}(): ${x.desc} holds ${elem} elements, cannot look for ${describeConst(item)}`, positions[i]!, `a value of the element type ${elem}`);
            }
          });
        }
        return { p: "contains", how: fn.how, x, values, elem };
      }
      default:
        return this.truthy(this.value(n), n.pos);
    }
  }

  private truthy(x: V, pos: number): P {
    if (x.v === "const" && typeof x.value === "boolean") return { p: "const", value: x.value };
    if (x.v === "pred") return x.p;
    if (x.type.k !== "bool" && x.type.k !== "dyn") {
      throw new FilterError(`expected a boolean expression, found ${x.desc}`, pos, "a boolean expression");
    }
    return { p: "truthy", x };
  }
}

// ---------------------------------------------------------------------------
// Run-time helpers (never throw)

type Num = number | bigint;

const numArith = (op: ArithOp, a: number, b: number): number | null => {
  let r: number;
  switch (op) {
    case "+":
      r = a + b;
      break;
    case "-":
      r = a - b;
      break;
    case "*":
      r = a * b;
      break;
    case "/":
      if (b === 0) return null;
      r = a / b;
      break;
    case "%":
      if (b === 0) return null;
      r = a % b;
      break;
  }
  return Number.isNaN(r) ? null : r;
};

/** Arithmetic on numbers/bigints; null for null operands, non-numeric operands or division by zero. */
export function arith(op: ArithOp, a: unknown, b: unknown): Num | null {
  const ta = typeof a;
  const tb = typeof b;
  if (ta === "number" && tb === "number") return numArith(op, a as number, b as number);
  if ((ta !== "number" && ta !== "bigint") || (tb !== "number" && tb !== "bigint")) return null;
  if ((ta === "number" && !Number.isInteger(a)) || (tb === "number" && !Number.isInteger(b))) {
    return numArith(op, Number(a), Number(b));
  }
  const x = BigInt(a as Num);
  const y = BigInt(b as Num);
  switch (op) {
    case "+":
      return x + y;
    case "-":
      return x - y;
    case "*":
      return x * y;
    case "/":
      if (y === 0n) return null;
      return x % y === 0n ? x / y : Number(x) / Number(y);
    case "%":
      if (y === 0n) return null;
      return x % y;
  }
}

const isNum = (x: unknown): x is Num => typeof x === "number" || typeof x === "bigint";

/** Deep equality for JSON-ish values; numbers compare exactly across number/bigint. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (isNum(a) && isNum(b)) return a == b;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (!Object.hasOwn(b, k) || !deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

const TRUE = 1;
const FALSE = 0;
const UNKNOWN = -1;

/** Compare two untyped values: 1 true, 0 false, -1 unknown (null or non-comparable types). */
function dynCmp(op: CmpOp, a: any, b: any): number {
  if (a == null || b == null) return UNKNOWN;
  const ta = typeof a;
  const tb = typeof b;
  if ((isNum(a) && isNum(b)) || (ta === "string" && tb === "string")) {
    let r: boolean;
    switch (op) {
      case "==":
        r = a == b;
        break;
      case "!=":
        r = a != b;
        break;
      case "<":
        r = a < b;
        break;
      case "<=":
        r = a <= b;
        break;
      case ">":
        r = a > b;
        break;
      case ">=":
        r = a >= b;
        break;
    }
    return r ? TRUE : FALSE;
  }
  if (op !== "==" && op !== "!=") return UNKNOWN;
  if ((ta === "boolean" && tb === "boolean") || (ta === "object" && tb === "object")) {
    return deepEqual(a, b) === (op === "==") ? TRUE : FALSE;
  }
  return UNKNOWN;
}

/** Canonical Set key so that numerically equal number/bigint values collide. */
const canonNum = (v: Num): Num => {
  if (typeof v === "number") return Number.isInteger(v) && !Number.isSafeInteger(v) ? BigInt(v) : v;
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
};

/** Compile a Milvus `like` pattern: `%` any sequence, `_` one character, `\` escapes the next character. */
export function likeMatcher(pattern: string): (s: string) => boolean {
  type Item = { t: "lit"; s: string } | { t: "any" } | { t: "one" };
  const items: Item[] = [];
  const pushLit = (ch: string): void => {
    const last = items[items.length - 1];
    if (last !== undefined && last.t === "lit") last.s += ch;
    else items.push({ t: "lit", s: ch });
  };
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch === "\\" && i + 1 < chars.length) pushLit(chars[++i]!);
    else if (ch === "%") {
      if (items[items.length - 1]?.t !== "any") items.push({ t: "any" });
    } else if (ch === "_") items.push({ t: "one" });
    else pushLit(ch);
  }
  const shape = items.map((it) => it.t).join(",");
  const lit = (i: number): string => (items[i] as { s: string }).s;
  switch (shape) {
    case "":
      return (s) => s === "";
    case "lit": {
      const a = lit(0);
      return (s) => s === a;
    }
    case "any":
      return () => true;
    case "lit,any": {
      const a = lit(0);
      return (s) => s.startsWith(a);
    }
    case "any,lit": {
      const a = lit(1);
      return (s) => s.endsWith(a);
    }
    case "any,lit,any": {
      const a = lit(1);
      return (s) => s.includes(a);
    }
    case "lit,any,lit": {
      const a = lit(0);
      const b = lit(2);
      return (s) => s.length >= a.length + b.length && s.startsWith(a) && s.endsWith(b);
    }
    default: {
      const src = items
        .map((it) => (it.t === "lit" ? it.s.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&") : it.t === "any" ? ".*" : "."))
        .join("");
      const re = new RegExp(`^${src}$`, "su");
      return (s) => re.test(s);
    }
  }
}

// ---------------------------------------------------------------------------
// Binding: IR -> closures

export type Getter = (row: number) => unknown;
type G = (row: number) => any;
type Pred = (row: number) => boolean;

const ALWAYS: Pred = () => true;
const NEVER: Pred = () => false;
const UNMATCHABLE = Symbol("unmatchable");

/** Build the predicate for one data source. `column` is called once per distinct field. */
export function bindPredicate(ir: P, column: (name: string) => Getter): Pred {
  const t = new Binder(column).t(ir);
  // Last-resort guard: values that break the column conventions (e.g. a bigint
  // where a number was declared) must not throw out of a scan; the row just
  // does not match.
  return (row) => {
    try {
      return t(row);
    } catch {
      return false;
    }
  };
}

class Binder {
  private readonly cols = new Map<string, G>();
  constructor(private readonly column: (name: string) => Getter) {}

  private col(name: string): G {
    let g = this.cols.get(name);
    if (g === undefined) {
      g = this.column(name) as G;
      this.cols.set(name, g);
    }
    return g;
  }

  // ---- values ------------------------------------------------------------

  get(v: V): G {
    switch (v.v) {
      case "const": {
        const c = v.value;
        return () => c;
      }
      case "field":
        return this.col(v.name);
      case "path":
        return pathGetter(this.col(v.field), v.keys);
      case "neg": {
        const g = this.get(v.x);
        return (row) => {
          const x = g(row);
          return typeof x === "number" || typeof x === "bigint" ? -x : null;
        };
      }
      case "alen": {
        const g = this.get(v.x);
        return (row) => {
          const x = g(row);
          return Array.isArray(x) ? x.length : null;
        };
      }
      case "arith":
        return this.arith(v);
      case "pred": {
        const t = this.t(v.p);
        const f = this.f(v.p);
        return (row) => (t(row) ? true : f(row) ? false : null);
      }
    }
  }

  private arith(v: Extract<V, { v: "arith" }>): G {
    const op = v.op;
    const gl = this.get(v.l);
    if (v.type.k === "num" && v.type.repr === "number") {
      // Both operands are plain numbers (or null).
      if (v.r.v === "const") {
        const c = v.r.value as number | null;
        if (c === null || ((op === "/" || op === "%") && c === 0)) return () => null;
        switch (op) {
          case "+":
            return (row) => {
              const a = gl(row);
              return typeof a === "number" ? a + c : null;
            };
          case "-":
            return (row) => {
              const a = gl(row);
              return typeof a === "number" ? a - c : null;
            };
          case "*":
            return (row) => {
              const a = gl(row);
              return typeof a === "number" ? a * c : null;
            };
          default:
            break;
        }
      }
      const gr = this.get(v.r);
      return (row) => {
        const a = gl(row);
        if (typeof a !== "number") return null;
        const b = gr(row);
        return typeof b === "number" ? numArith(op, a, b) : null;
      };
    }
    const gr = this.get(v.r);
    return (row) => {
      const a = gl(row);
      if (a == null) return null;
      const b = gr(row);
      return b == null ? null : arith(op, a, b);
    };
  }

  // ---- predicates: t = "is TRUE", f = "is FALSE" -------------------------

  t(p: P): Pred {
    return this.pred(p, false);
  }
  f(p: P): Pred {
    return this.pred(p, true);
  }

  /** neg=false: closure for "p is TRUE"; neg=true: closure for "p is FALSE". */
  private pred(p: P, neg: boolean): Pred {
    switch (p.p) {
      case "const":
        if (p.value === null) return NEVER;
        return p.value !== neg ? ALWAYS : NEVER;
      case "not":
        return this.pred(p.x, !neg);
      case "and":
      case "or": {
        const l = this.pred(p.l, neg);
        const r = this.pred(p.r, neg);
        // TRUE(a and b) = T(a) && T(b); FALSE(a and b) = F(a) || F(b); dually for or.
        return (p.p === "and") !== neg ? (row) => l(row) && r(row) : (row) => l(row) || r(row);
      }
      case "cmp":
        return this.cmp(p, neg);
      case "in":
        return this.in(p, neg);
      case "like": {
        const g = this.get(p.x);
        const m = p.match;
        return neg
          ? (row) => {
              const s = g(row);
              return typeof s === "string" && !m(s);
            }
          : (row) => {
              const s = g(row);
              return typeof s === "string" && m(s);
            };
      }
      case "null": {
        const g = this.get(p.x);
        return neg ? (row) => g(row) != null : (row) => g(row) == null;
      }
      case "exists": {
        const g = this.col(p.field);
        const keys = p.keys;
        return neg ? (row) => !pathExists(g(row), keys) : (row) => pathExists(g(row), keys);
      }
      case "contains":
        return this.contains(p, neg);
      case "truthy": {
        const g = this.get(p.x);
        return neg ? (row) => g(row) === false : (row) => g(row) === true;
      }
    }
  }

  private cmp(p: Extract<P, { p: "cmp" }>, neg: boolean): Pred {
    const { l, r, mode } = p;
    if (mode === "static") {
      if (r.v === "const") return constCmp(this.get(l), p.op, adaptConst(r.value, l.type), neg);
      if (l.v === "const") return constCmp(this.get(r), flip(p.op), adaptConst(l.value, r.type), neg);
      const gl = this.get(l);
      const gr = this.get(r);
      const op = OPS[p.op];
      return neg
        ? (row) => {
            const a = gl(row);
            if (a == null) return false;
            const b = gr(row);
            return b != null && !op(a, b);
          }
        : (row) => {
            const a = gl(row);
            if (a == null) return false;
            const b = gr(row);
            return b != null && op(a, b);
          };
    }
    const gl = this.get(l);
    const gr = this.get(r);
    if (mode === "deep") {
      const want = (p.op === "==") !== neg;
      return (row) => {
        const a = gl(row);
        if (a == null) return false;
        const b = gr(row);
        return b != null && deepEqual(a, b) === want;
      };
    }
    const op = p.op;
    const want = neg ? FALSE : TRUE;
    if (r.v === "const") {
      const c = r.value;
      if (typeof c === "string" && (op === "==" || op === "!=")) {
        // Fast path for the common `$meta["color"] == "red"`.
        const eq = op === "==";
        return (row) => {
          const a = gl(row);
          return typeof a === "string" && (a === c) === (eq !== neg);
        };
      }
      return (row) => dynCmp(op, gl(row), c) === want;
    }
    return (row) => dynCmp(op, gl(row), gr(row)) === want;
  }

  private in(p: Extract<P, { p: "in" }>, neg: boolean): Pred {
    const g = this.get(p.x);
    const values = p.values;
    switch (p.mode) {
      case "bigint": {
        const set = new Set<bigint>();
        for (const c of values) {
          if (typeof c === "bigint") set.add(c);
          else if (typeof c === "number" && Number.isInteger(c)) set.add(BigInt(c));
        }
        // Int64 values are bigint by convention; tolerate integer numbers too.
        const has = (v: unknown): boolean =>
          typeof v === "bigint" ? set.has(v) : typeof v === "number" && Number.isInteger(v) && set.has(BigInt(v));
        return neg
          ? (row) => {
              const v = g(row);
              return v != null && !has(v);
            }
          : (row) => {
              const v = g(row);
              return v != null && has(v);
            };
      }
      case "str":
      case "bool": {
        const set = new Set<unknown>(values);
        return neg
          ? (row) => {
              const v = g(row);
              return v != null && !set.has(v);
            }
          : (row) => {
              const v = g(row);
              return v != null && set.has(v);
            };
      }
      case "number": {
        const set = new Set<unknown>(values.map((c) => canonNum(c as Num)));
        return neg
          ? (row) => {
              const v = g(row);
              return v != null && !set.has(canonNum(v));
            }
          : (row) => {
              const v = g(row);
              return v != null && set.has(canonNum(v));
            };
      }
      case "dyn": {
        const set = new Set<unknown>(values.map((c) => (isNum(c) ? canonNum(c) : c)));
        const hasNum = values.some(isNum);
        const hasStr = values.some((c) => typeof c === "string");
        const hasBool = values.some((c) => typeof c === "boolean");
        const empty = values.length === 0;
        return (row) => {
          const v = g(row);
          let key: unknown;
          switch (typeof v) {
            case "number":
            case "bigint":
              if (!hasNum && !empty) return false;
              key = canonNum(v);
              break;
            case "string":
              if (!hasStr && !empty) return false;
              key = v;
              break;
            case "boolean":
              if (!hasBool && !empty) return false;
              key = v;
              break;
            default:
              return false; // null, object, array: unknown
          }
          return set.has(key) !== neg;
        };
      }
    }
  }

  private contains(p: Extract<P, { p: "contains" }>, neg: boolean): Pred {
    const g = this.get(p.x);
    const elem = p.elem;
    let has: (arr: readonly unknown[], c: unknown) => boolean;
    let values: readonly unknown[];
    if (elem !== undefined) {
      // Typed Array field: convert constants to the element representation, then use includes().
      values = p.values.map((c) => adaptElement(c, elem));
      has = (arr, c) => arr.includes(c);
    } else {
      values = p.values;
      has = (arr, c) => {
        for (let i = 0; i < arr.length; i++) if (deepEqual(arr[i], c)) return true;
        return false;
      };
    }
    let test: (arr: readonly unknown[]) => boolean;
    switch (p.how) {
      case "one": {
        const c = values[0];
        test = (arr) => has(arr, c);
        break;
      }
      case "all":
        test = (arr) => {
          for (const c of values) if (!has(arr, c)) return false;
          return true;
        };
        break;
      case "any":
        test = (arr) => {
          for (const c of values) if (has(arr, c)) return true;
          return false;
        };
        break;
    }
    return (row) => {
      const a = g(row);
      return Array.isArray(a) && test(a) !== neg;
    };
  }
}

const OPS: Record<CmpOp, (a: any, b: any) => boolean> = {
  "==": (a, b) => a == b,
  "!=": (a, b) => a != b,
  "<": (a, b) => a < b,
  "<=": (a, b) => a <= b,
  ">": (a, b) => a > b,
  ">=": (a, b) => a >= b,
};

/** For an always-bigint operand, turn an integer constant into a bigint so comparisons stay bigint-vs-bigint. */
function adaptConst(c: Const, otherType: SType): Const {
  if (otherType.k === "num" && otherType.repr === "bigint" && typeof c === "number" && Number.isInteger(c)) return BigInt(c);
  return c;
}

function adaptElement(c: Const, elem: ScalarType): unknown {
  if (elem === "Int64") {
    if (typeof c === "bigint") return c;
    if (typeof c === "number" && Number.isInteger(c)) return BigInt(c);
    return UNMATCHABLE;
  }
  if (typeof c === "bigint") {
    const n = Number(c);
    return BigInt(n) === c ? n : UNMATCHABLE;
  }
  return c;
}

/**
 * `value op c` for a statically typed operand (numbers, bigints, strings, booleans).
 * `==`/`!=` are loose on purpose: number vs bigint compares mathematically exactly.
 */
function constCmp(g: G, op: CmpOp, c: any, neg: boolean): Pred {
  if (c === null) return NEVER;
  if (!neg) {
    switch (op) {
      case "==":
        return (row) => {
          const v = g(row);
          return v != null && v == c;
        };
      case "!=":
        return (row) => {
          const v = g(row);
          return v != null && v != c;
        };
      case "<":
        return (row) => {
          const v = g(row);
          return v != null && v < c;
        };
      case "<=":
        return (row) => {
          const v = g(row);
          return v != null && v <= c;
        };
      case ">":
        return (row) => {
          const v = g(row);
          return v != null && v > c;
        };
      case ">=":
        return (row) => {
          const v = g(row);
          return v != null && v >= c;
        };
    }
  }
  switch (op) {
    case "==":
      return (row) => {
        const v = g(row);
        return v != null && !(v == c);
      };
    case "!=":
      return (row) => {
        const v = g(row);
        return v != null && !(v != c);
      };
    case "<":
      return (row) => {
        const v = g(row);
        return v != null && !(v < c);
      };
    case "<=":
      return (row) => {
        const v = g(row);
        return v != null && !(v <= c);
      };
    case ">":
      return (row) => {
        const v = g(row);
        return v != null && !(v > c);
      };
    case ">=":
      return (row) => {
        const v = g(row);
        return v != null && !(v >= c);
      };
  }
}

function step(o: unknown, k: string | number): unknown {
  if (typeof k === "number") return Array.isArray(o) && k < o.length ? o[k] : undefined;
  if (o === null || typeof o !== "object" || Array.isArray(o) || !Object.hasOwn(o, k)) return undefined;
  return (o as Record<string, unknown>)[k];
}

function pathGetter(base: G, keys: readonly (string | number)[]): G {
  if (keys.length === 1) {
    const k = keys[0]!;
    if (typeof k === "number") {
      return (row) => {
        const a = base(row);
        return Array.isArray(a) && k < a.length ? (a[k] ?? null) : null;
      };
    }
    return (row) => {
      const o = base(row);
      if (o === null || typeof o !== "object" || Array.isArray(o) || !Object.hasOwn(o, k)) return null;
      return o[k] ?? null;
    };
  }
  return (row) => {
    let o: unknown = base(row);
    for (let i = 0; i < keys.length; i++) {
      o = step(o, keys[i]!);
      if (o === undefined || o === null) return null;
    }
    return o;
  };
}

function pathExists(o: unknown, keys: readonly (string | number)[]): boolean {
  if (o == null) return false;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (typeof k === "number" ? !(Array.isArray(o) && k < o.length) : o === null || typeof o !== "object" || Array.isArray(o) || !Object.hasOwn(o, k)) {
      return false;
    }
    o = (o as any)[k];
  }
  return true;
}
