import { describe, it, expect } from "vitest";
import type { CollectionSchema, DataType, FieldSchema, ScalarType } from "../../schemas/collection.ts";
import { compileFilter, compileOptionalFilter, FilterError, type ColumnSource } from "./index.ts";
import { likeMatcher } from "./compile.ts";

let nextId = 100;
const field = (name: string, dataType: DataType, extra: Partial<FieldSchema> = {}): FieldSchema => ({
  fieldId: nextId++,
  name,
  dataType,
  isPrimary: false,
  autoId: false,
  description: "",
  nullable: true,
  isDynamic: false,
  ...extra,
});
const arrayField = (name: string, elementType: ScalarType): FieldSchema =>
  field(name, "Array", { elementType, maxCapacity: 16, maxLength: 64 });

const fields: FieldSchema[] = [
  field("id", "Int64", { isPrimary: true, nullable: false }),
  field("age", "Int32"),
  field("price", "Double"),
  field("name", "VarChar", { maxLength: 64 }),
  field("flag", "Bool"),
  field("meta", "JSON"),
  arrayField("tags", "VarChar"),
  arrayField("nums", "Int64"),
  field("vec", "FloatVector", { dim: 2, nullable: false }),
];
const schema: CollectionSchema = { fields, enableDynamicField: true, description: "" };
const staticSchema: CollectionSchema = { fields, enableDynamicField: false, description: "" };

const BIG = 9007199254740993n; // 2^53 + 1, not representable as a double

// Six rows, column-major. Row 2 is mostly null.
const data: Record<string, unknown[]> = {
  id: [1n, 2n, 3n, 4n, 5n, BIG],
  age: [25, 35, null, 40, 18, 50],
  price: [9.5, 20, 5.25, null, 100, 0],
  name: ["apple", "banana", "cherry", null, "apple pie", "100%_sure"],
  flag: [true, false, null, true, false, true],
  meta: [
    { a: { b: 1 }, arr: [1, 2, 3], s: "x" },
    { a: { b: 2 }, arr: [4, 5] },
    null,
    { a: { b: "2" }, arr: [] },
    { arr: [[1, 2], 3], k: null },
    { a: { b: 1.5 } },
  ],
  tags: [["red", "blue"], ["green"], [], ["red"], ["blue", "red", "green"], null],
  nums: [[1n, 2n, 3n], [4n], [], [BIG], [5n, 6n], null],
  vec: Array.from({ length: 6 }, () => new Float32Array([0, 0])),
  $meta: [{ color: "red", size: 10 }, { color: "blue", size: "big" }, { color: "red" }, null, { size: 3 }, { color: "green", size: 7 }],
};
const ROWS = 6;

const sourceOf = (cols: Record<string, unknown[]>, calls?: string[]): ColumnSource => ({
  column(name) {
    calls?.push(name);
    const col = cols[name];
    if (col === undefined) throw new Error(`no column ${name}`);
    return (row) => col[row] ?? null;
  },
});
const source = sourceOf(data);

/** Rows of the 6-row table matching `filter`. */
const rows = (filter: string, params?: Record<string, unknown>, s: CollectionSchema = schema): number[] => {
  const pred = compileFilter(filter, s, params).bind(source);
  const out: number[] = [];
  for (let r = 0; r < ROWS; r++) if (pred(r)) out.push(r);
  return out;
};

/** The FilterError thrown by compiling `filter`. */
const errorOf = (filter: string, params?: Record<string, unknown>, s: CollectionSchema = schema): FilterError => {
  try {
    compileFilter(filter, s, params);
  } catch (e) {
    if (e instanceof FilterError) return e;
    throw e;
  }
  throw new Error(`expected a FilterError for: ${filter}`);
};

describe("comparisons and literals", () => {
  it("compares an Int32 field with integer literals using every operator", () => {
    // proves == != < <= > >= on a numeric field, and that null rows never match
    expect(rows("age == 25")).toEqual([0]);
    expect(rows("age != 25")).toEqual([1, 3, 4, 5]);
    expect(rows("age < 30")).toEqual([0, 4]);
    expect(rows("age <= 35")).toEqual([0, 1, 4]);
    expect(rows("age > 35")).toEqual([3, 5]);
    expect(rows("age >= 40")).toEqual([3, 5]);
  });

  it("accepts the literal on the left side", () => {
    // proves constant-vs-field comparisons are flipped correctly
    expect(rows("25 == age")).toEqual([0]);
    expect(rows("30 > age")).toEqual([0, 4]);
    expect(rows("40 <= age")).toEqual([3, 5]);
  });

  it("parses floats, exponents, negatives and hex literals", () => {
    // proves the number lexer: 9.5, 1e1, 1e-3, -1, .5, 0x19
    expect(rows("price > 9.5")).toEqual([1, 4]);
    expect(rows("price >= 1e1")).toEqual([1, 4]);
    expect(rows("price < 1e-3")).toEqual([5]);
    expect(rows("price > -1")).toEqual([0, 1, 2, 4, 5]);
    expect(rows("price > .5 and price < 10")).toEqual([0, 2]);
    expect(rows("age == 0x19")).toEqual([0]);
  });

  it("compares VarChar fields with single- and double-quoted strings and escapes", () => {
    // proves string literals in both quote styles, \u escapes, and lexicographic ordering
    expect(rows('name == "apple"')).toEqual([0]);
    expect(rows("name == 'apple'")).toEqual([0]);
    expect(rows('name == "\\u0061pple"')).toEqual([0]);
    expect(rows("name > 'b'")).toEqual([1, 2]);
    expect(rows("name == 'it\\'s'")).toEqual([]);
    expect(rows('name != "apple"')).toEqual([1, 2, 4, 5]);
  });

  it("handles booleans: literals in any case, bare Bool fields, negation", () => {
    // proves true/True/FALSE literals and Bool fields as predicates
    expect(rows("flag == true")).toEqual([0, 3, 5]);
    expect(rows("flag == FALSE")).toEqual([1, 4]);
    expect(rows("flag != True")).toEqual([1, 4]);
    expect(rows("flag")).toEqual([0, 3, 5]);
    expect(rows("not flag")).toEqual([1, 4]);
    expect(rows("!flag")).toEqual([1, 4]);
    expect(rows("true")).toEqual([0, 1, 2, 3, 4, 5]);
    expect(rows("false")).toEqual([]);
  });

  it("compares two fields with each other", () => {
    // proves field-vs-field comparison with nulls on either side excluded
    expect(rows("age * 2 > price")).toEqual([0, 1, 5]);
    expect(rows("age < price")).toEqual([4]);
  });
});

describe("Int64 exactness", () => {
  it("compares Int64 values beyond 2^53 exactly", () => {
    // proves unsafe integer literals are parsed as BigInt and compared exactly
    expect(rows("id == 9007199254740993")).toEqual([5]);
    expect(rows("id == 9007199254740992")).toEqual([]);
    expect(rows("id > 9007199254740992")).toEqual([5]);
    expect(rows("id >= 9007199254740993")).toEqual([5]);
    expect(rows("id < 9007199254740993")).toEqual([0, 1, 2, 3, 4]);
    expect(rows("id != 9007199254740993")).toEqual([0, 1, 2, 3, 4]);
  });

  it("compares bigint values with number and float literals numerically", () => {
    // proves 5n == 5, 5n < 5.5, 2n == 2.0 semantics
    expect(rows("id == 5")).toEqual([4]);
    expect(rows("id < 5.5")).toEqual([0, 1, 2, 3, 4]);
    expect(rows("id == 2.0")).toEqual([1]);
    expect(rows("id > 4.5")).toEqual([4, 5]);
    expect(rows("id == 4.5")).toEqual([]);
  });

  it("does exact arithmetic on Int64 fields", () => {
    // proves bigint + - * / % and unary minus with exact results
    expect(rows("id + 1 == 9007199254740994")).toEqual([5]);
    expect(rows("id - 1 == 9007199254740992")).toEqual([5]);
    expect(rows("id * 2 == 18014398509481986")).toEqual([5]);
    expect(rows("-id < -9007199254740992")).toEqual([5]);
    expect(rows("id / 2 == 2")).toEqual([3]);
    expect(rows("id / 2 == 1.5")).toEqual([2]);
    expect(rows("id % 2 == 1")).toEqual([0, 2, 4, 5]);
  });

  it("matches Int64 values exactly in 'in' lists and Int64 arrays", () => {
    // proves in-list sets and array_contains on bigints are exact beyond 2^53
    expect(rows("id in [9007199254740993, 1]")).toEqual([0, 5]);
    expect(rows("id in [9007199254740992]")).toEqual([]);
    expect(rows("nums[0] == 9007199254740993")).toEqual([3]);
    expect(rows("array_contains(nums, 9007199254740993)")).toEqual([3]);
    expect(rows("array_contains(nums, 9007199254740992)")).toEqual([]);
    expect(rows("id == -9223372036854775808")).toEqual([]);
  });
});

describe("ranges and arithmetic", () => {
  it("evaluates chained ranges in both directions", () => {
    // proves a < x < b, a < x <= b, b >= x > a, b > x >= a
    expect(rows("20 < age < 40")).toEqual([0, 1]);
    expect(rows("20 < age <= 40")).toEqual([0, 1, 3]);
    expect(rows("40 >= age > 20")).toEqual([0, 1, 3]);
    expect(rows("50 > age >= 25")).toEqual([0, 1, 3]);
    expect(rows("not (20 < age < 40)")).toEqual([3, 4, 5]);
  });

  it("evaluates + - * / % and unary minus with precedence", () => {
    // proves arithmetic on numeric fields with standard precedence and parentheses
    expect(rows("age + 1 > 35")).toEqual([1, 3, 5]);
    expect(rows("price * 2 <= 10")).toEqual([5]);
    expect(rows("age - 5 == 20")).toEqual([0]);
    expect(rows("age / 2 == 9")).toEqual([4]);
    expect(rows("age % 10 == 5")).toEqual([0, 1]);
    expect(rows("-age < -39")).toEqual([3, 5]);
    expect(rows("(age + 5) * 2 == 60")).toEqual([0]);
    expect(rows("age + 5 * 2 == 35")).toEqual([0]);
    expect(rows("2 * 3 + 1 == 7")).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("treats division by zero as no match, never an exception", () => {
    // proves x/0 and x%0 make the predicate UNKNOWN (also under not)
    expect(rows("age / 0 > 1")).toEqual([]);
    expect(rows("not (age / 0 > 1)")).toEqual([]);
    expect(rows("age % 0 == 0")).toEqual([]);
    expect(rows("id / 0 == 1")).toEqual([]);
    expect(rows("age > 1 / 0")).toEqual([]);
  });
});

describe("in / not in", () => {
  it("matches lists of literals for numbers, strings and booleans", () => {
    // proves in, not in, empty lists and null exclusion
    expect(rows("age in [25, 40, 99]")).toEqual([0, 3]);
    expect(rows("age not in [25, 40]")).toEqual([1, 4, 5]);
    expect(rows("age in [-1, 25.0,]")).toEqual([0]);
    expect(rows('name in ["apple", "cherry"]')).toEqual([0, 2]);
    expect(rows("price in [0, 20]")).toEqual([1, 5]);
    expect(rows("flag in [true]")).toEqual([0, 3, 5]);
    expect(rows("age in []")).toEqual([]);
    expect(rows("age not in []")).toEqual([0, 1, 3, 4, 5]);
    expect(rows("age IN [25] or age NOT IN [25, 35, 40, 18]")).toEqual([0, 5]);
  });

  it("matches dynamic values against lists at run time", () => {
    // proves in on undeclared (dynamic) keys, with missing keys and type mismatches excluded
    expect(rows('color in ["red", "green"]')).toEqual([0, 2, 5]);
    expect(rows('color not in ["red"]')).toEqual([1, 5]);
    expect(rows("size in [10, 3]")).toEqual([0, 4]);
    expect(rows("size not in [10]")).toEqual([4, 5]);
  });
});

describe("logic", () => {
  it("supports and/or/not in any case and && || !", () => {
    // proves all spellings of the logical operators
    expect(rows('age > 30 and name like "b%"')).toEqual([1]);
    expect(rows("age > 30 AND flag")).toEqual([3, 5]);
    expect(rows("age < 20 Or age > 45")).toEqual([4, 5]);
    expect(rows('age < 20 || name == "cherry"')).toEqual([2, 4]);
    expect(rows("age > 30 && flag == false")).toEqual([1]);
    expect(rows("not (age > 30)")).toEqual([0, 4]);
    expect(rows("!(age > 30)")).toEqual([0, 4]);
    expect(rows("NOT age > 30")).toEqual([0, 4]);
  });

  it("gives and higher precedence than or, overridable by parentheses", () => {
    // proves precedence: or < and < not < comparison
    expect(rows("age < 20 or age > 45 and flag")).toEqual([4, 5]);
    expect(rows("(age < 20 or age > 45) and flag")).toEqual([5]);
    expect(rows("((age < 20))")).toEqual([4]);
  });
});

describe("like", () => {
  it("handles prefix, suffix, infix, general and exact patterns", () => {
    // proves % as any sequence and _ as exactly one character
    expect(rows('name like "app%"')).toEqual([0, 4]);
    expect(rows('name like "%e"')).toEqual([0, 4, 5]);
    expect(rows('name like "%an%"')).toEqual([1]);
    expect(rows('name like "a%e"')).toEqual([0, 4]);
    expect(rows('name like "_pple"')).toEqual([0]);
    expect(rows('name like "c_e%"')).toEqual([2]);
    expect(rows('name like "apple pie"')).toEqual([4]);
    expect(rows('name like "%_%"')).toEqual([0, 1, 2, 4, 5]);
    expect(rows('name LIKE "APP%"')).toEqual([]);
    expect(rows('name not like "a%"')).toEqual([1, 2, 5]);
  });

  it("escapes regex metacharacters and honours backslash escapes for % and _", () => {
    // proves the pattern is not interpreted as a regex and \% \_ are literal
    expect(rows('name like "a.p%"')).toEqual([]);
    expect(rows('name like "%\\_%"')).toEqual([5]);
    expect(rows('name like "100\\%%"')).toEqual([5]);
    expect(likeMatcher("(a)[b]{c}.*+?^$|/%")("(a)[b]{c}.*+?^$|/xyz")).toBe(true);
    expect(likeMatcher("a_c%")("a\nc")).toBe(true);
    expect(likeMatcher("a_c")("a😀c")).toBe(true);
    expect(likeMatcher("")("")).toBe(true);
    expect(likeMatcher("%")("")).toBe(true);
  });

  it("applies like to JSON / dynamic values only when they are strings", () => {
    // proves run-time typing of like on untyped values
    expect(rows('color like "r%"')).toEqual([0, 2]);
    expect(rows('meta["s"] like "%"')).toEqual([0]);
    expect(rows('size like "b%"')).toEqual([1]);
  });
});

describe("null handling (three-valued logic)", () => {
  it("is null / is not null in any case", () => {
    // proves null tests on scalar, JSON, JSON path, dynamic and Array fields
    expect(rows("age is null")).toEqual([2]);
    expect(rows("age IS NOT NULL")).toEqual([0, 1, 3, 4, 5]);
    expect(rows("meta Is Null")).toEqual([2]);
    expect(rows('meta["a"] is null')).toEqual([2, 4]);
    expect(rows('meta["k"] is null')).toEqual([0, 1, 2, 3, 4, 5]);
    expect(rows("color is null")).toEqual([3, 4]);
    expect(rows("tags is null")).toEqual([5]);
    expect(rows("age is not null and price is null")).toEqual([3]);
    expect(rows("name is null and price is null")).toEqual([3]);
  });

  it("follows Kleene logic for UNKNOWN under and/or/not", () => {
    // proves null comparisons are UNKNOWN, not(UNKNOWN) is UNKNOWN, U and F = F, U or T = T
    expect(rows("not (age > 30 and flag)")).toEqual([0, 1, 4]);
    expect(rows("age > 100 or flag")).toEqual([0, 3, 5]);
    expect(rows("not (age > 100 or flag)")).toEqual([1, 4]);
    expect(rows('age > 30 or name == "cherry"')).toEqual([1, 2, 3, 5]);
    expect(rows("not (age > 20 and price > 10)")).toEqual([0, 2, 4, 5]);
    expect(rows("not (age is null)")).toEqual([0, 1, 3, 4, 5]);
    expect(rows("not not (age > 30)")).toEqual([1, 3, 5]);
    expect(rows("(age > 30) == true")).toEqual([1, 3, 5]);
  });
});

describe("JSON paths and dynamic fields", () => {
  it("walks nested keys and array indexes on a JSON field with run-time typing", () => {
    // proves meta["a"]["b"], meta["arr"][i]; type mismatches are no match, never an exception
    expect(rows('meta["a"]["b"] == 1')).toEqual([0]);
    expect(rows('meta["a"]["b"] > 1')).toEqual([1, 5]);
    expect(rows('meta["a"]["b"] == "2"')).toEqual([3]);
    expect(rows('not (meta["a"]["b"] > 1)')).toEqual([0]);
    expect(rows('meta["arr"][0] == 1')).toEqual([0]);
    expect(rows('meta["arr"][1] >= 2')).toEqual([0, 1, 4]);
    expect(rows('meta["arr"][0] == [1, 2]')).toEqual([4]);
    expect(rows('meta["s"] == "x"')).toEqual([0]);
    expect(rows('meta["a"] > 5')).toEqual([]);
    expect(rows('meta["a"] == [1]')).toEqual([]);
    expect(rows('meta["constructor"] is null')).toEqual([0, 1, 2, 3, 4, 5]);
    expect(rows('meta["a"]["toString"] is not null')).toEqual([]);
  });

  it("resolves undeclared identifiers and $meta[...] to dynamic keys", () => {
    // proves color == $meta["color"], and dynamic numeric/arith comparisons with mismatches excluded
    expect(rows('$meta["color"] == "red"')).toEqual([0, 2]);
    expect(rows('color == "red"')).toEqual([0, 2]);
    expect(rows('color != "red"')).toEqual([1, 5]);
    expect(rows("size > 5")).toEqual([0, 5]);
    expect(rows("not (size > 5)")).toEqual([4]);
    expect(rows("size + 1 > 8")).toEqual([0]);
    expect(rows('$meta["size"] == 10 or color == "green"')).toEqual([0, 5]);
  });

  it("supports exists on JSON paths", () => {
    // proves exists checks key presence even when the value is JSON null
    expect(rows('exists meta["k"]')).toEqual([4]);
    expect(rows("exists color")).toEqual([0, 1, 2, 5]);
    expect(rows('not exists meta["a"]')).toEqual([2, 4]);
    expect(rows('EXISTS(meta["a"]["b"])')).toEqual([0, 1, 3, 5]);
  });

  it("rejects undeclared fields when the dynamic field is disabled", () => {
    // proves the non-dynamic schema reports unknown names, including $meta
    expect(errorOf("color == 'red'", undefined, staticSchema).message).toContain("field 'color' does not exist");
    expect(errorOf('$meta["color"] == "red"', undefined, staticSchema).position).toBe(0);
    expect(rows("age > 30", undefined, staticSchema)).toEqual([1, 3, 5]);
  });
});

describe("JSON and array functions", () => {
  it("json_contains / json_contains_all / json_contains_any", () => {
    // proves containment on JSON arrays, including nested arrays and non-array values
    expect(rows('json_contains(meta["arr"], 4)')).toEqual([1]);
    expect(rows('JSON_CONTAINS(meta["arr"], [1, 2])')).toEqual([4]);
    expect(rows('json_contains_all(meta["arr"], [1, 3])')).toEqual([0]);
    expect(rows('json_contains_any(meta["arr"], [3, 5])')).toEqual([0, 1, 4]);
    expect(rows('json_contains_all(meta["arr"], [])')).toEqual([0, 1, 3, 4]);
    expect(rows('json_contains(meta["a"], 1)')).toEqual([]);
    expect(rows('not json_contains(meta["arr"], 1)')).toEqual([1, 3, 4]);
  });

  it("array_contains / _all / _any / array_length / element access on Array fields", () => {
    // proves the array operators on VarChar and Int64 arrays, null arrays excluded
    expect(rows('array_contains(tags, "red")')).toEqual([0, 3, 4]);
    expect(rows('ARRAY_CONTAINS(tags, "green")')).toEqual([1, 4]);
    expect(rows('array_contains_all(tags, ["red", "blue"])')).toEqual([0, 4]);
    expect(rows('array_contains_any(tags, ["green", "blue"])')).toEqual([0, 1, 4]);
    expect(rows('not array_contains(tags, "red")')).toEqual([1, 2]);
    expect(rows("array_length(tags) == 3")).toEqual([4]);
    expect(rows("array_length(tags) == 0")).toEqual([2]);
    expect(rows("Array_Length(tags) > 0")).toEqual([0, 1, 3, 4]);
    expect(rows('array_length(meta["arr"]) == 2')).toEqual([1, 4]);
    expect(rows('tags[0] == "red"')).toEqual([0, 3]);
    expect(rows('tags[1] == "red"')).toEqual([4]);
    expect(rows("nums[0] > 3")).toEqual([1, 3, 4]);
    expect(rows("array_contains(nums, 4)")).toEqual([1]);
    expect(rows("array_contains_any(nums, [6, 2])")).toEqual([0, 4]);
    expect(rows('tags == ["red"]')).toEqual([3]);
    expect(rows("nums == [4]")).toEqual([1]);
    expect(rows("nums != [4]")).toEqual([0, 2, 3, 4]);
  });
});

describe("templates", () => {
  it("substitutes scalar and list parameters", () => {
    // proves {name} templates for numbers, strings, booleans, lists, bigints and list elements
    expect(rows("age > {min}", { min: 30 })).toEqual([1, 3, 5]);
    expect(rows("{min} < age < {max}", { min: 20, max: 40 })).toEqual([0, 1]);
    expect(rows("name == {n}", { n: "apple" })).toEqual([0]);
    expect(rows("flag == {f}", { f: false })).toEqual([1, 4]);
    expect(rows("price < {p}", { p: 9.6 })).toEqual([0, 2, 5]);
    expect(rows("id in {ids}", { ids: [1, 3, 5] })).toEqual([0, 2, 4]);
    expect(rows("id in { ids }", { ids: [BIG] })).toEqual([5]);
    expect(rows("id not in {ids}", { ids: [] })).toEqual([0, 1, 2, 3, 4, 5]);
    expect(rows("age in [{a}, 40]", { a: 25 })).toEqual([0, 3]);
    expect(rows("array_contains_any(tags, {t})", { t: ["green"] })).toEqual([1, 4]);
    expect(rows("json_contains(meta[\"arr\"], {v})", { v: 5 })).toEqual([1]);
  });

  it("rejects missing, mistyped and unsupported parameters", () => {
    // proves template errors carry the template position
    const missing = errorOf("age > {min}");
    expect(missing.position).toBe(6);
    expect(missing.message).toContain("missing value for template parameter {min}");
    expect(errorOf("age > {s}", { s: "x" }).message).toContain("cannot compare Int32 field 'age' with a string");
    expect(errorOf("age > {o}", { o: { a: 1 } }).message).toContain("unsupported value");
    expect(errorOf("id in {ids}", { ids: 5 }).message).toContain("expected a list after 'in'");
    expect(errorOf("id in {ids}", { ids: [1, "x"] }).position).toBe(6);
  });
});

describe("errors", () => {
  const cases: [filter: string, position: number, mentions: string][] = [
    ["age == ", 7, "expected a value after '==', found end of input"],
    ["age > 5 5", 8, "expected an operator or end of input, found '5'"],
    ["(age > 5", 8, "expected ')' to close '(' at position 0"],
    ["age > 5)", 7, "unmatched ')'"],
    ["name == 5", 5, "cannot compare VarChar field 'name' with a number"],
    ["flag == 1", 5, "cannot compare Bool field 'flag' with a number"],
    ['age > "x"', 4, "cannot compare Int32 field 'age' with a string"],
    ['age like "a%"', 4, "'like' needs a VarChar field"],
    ["name + 1 > 2", 5, "arithmetic '+' needs numeric operands, found VarChar field 'name'"],
    ["array_contains(age, 1)", 15, "needs an Array or JSON field"],
    ["json_contains(name, 1)", 14, "needs an Array or JSON field"],
    ["vec == 1", 0, "vector field 'vec' cannot be used in a filter"],
    ["foo(age)", 0, "unknown function 'foo'"],
    ["age = 5", 4, "use '=='"],
    ['name == "abc', 12, "unterminated string literal starting at position 8"],
    ["age in 5", 7, "expected a list after 'in'"],
    ["1 < age > 5", 8, "a range must use"],
    ["age is nul", 7, "expected 'null' after 'is'"],
    ["age > 5 and", 11, "expected a value after 'and', found end of input"],
    ["array_contains(tags, 1)", 21, "holds VarChar elements"],
    ["age", 0, "expected a boolean expression, found Int32 field 'age'"],
    ["age >> 5", 5, "expected a value after '>', found '>'"],
    ['age in [1, "a"]', 11, "cannot compare Int32 field 'age' with a string"],
    ["age in [1, 2", 12, "expected ',' or ']'"],
    ["", 0, "filter is empty"],
    ["age == null", 7, "use 'is null'"],
    ["flag < true", 5, "booleans support only"],
    ['age["x"] > 1', 3, "cannot index into Int32 field 'age'"],
    ['tags["x"] == 1', 4, "can only be indexed by an integer"],
    ["array_length(tags, 1) > 0", 0, "takes 1 argument"],
    ["age > 5 # 1", 8, "unexpected character '#'"],
    ["12abc > 1", 0, "invalid number literal"],
  ];
  it.each(cases)("%j fails at position %i", (filter, position, mentions) => {
    // proves each malformed filter reports the exact position and what was expected
    const e = errorOf(filter);
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("FilterError");
    expect(e.position).toBe(position);
    expect(e.message).toContain(mentions);
    expect(e.message.startsWith(`filter error at position ${position}: `)).toBe(true);
  });

  it("exposes an `expected` hint", () => {
    // proves the expected field is filled for parse errors
    expect(errorOf("age == ").expected).toBe("a value");
    expect(errorOf("(age > 5").expected).toBe("')'");
    expect(errorOf("age > 5 5").expected).toBe("an operator or end of input");
  });

  it("constructs FilterError directly with the documented message shape", () => {
    // proves the public constructor signature and message format
    const e = new FilterError("boom", 3, "x");
    expect(e.message).toBe("filter error at position 3: boom");
    expect([e.position, e.expected]).toEqual([3, "x"]);
  });
});

describe("public surface", () => {
  it("compileOptionalFilter returns undefined for empty filters", () => {
    // proves empty/whitespace/undefined filters mean all rows
    expect(compileOptionalFilter(undefined, schema)).toBeUndefined();
    expect(compileOptionalFilter("", schema)).toBeUndefined();
    expect(compileOptionalFilter("  \n\t", schema)).toBeUndefined();
    expect(compileOptionalFilter("age > 1", schema)?.text).toBe("age > 1");
  });

  it("reports the fields a filter reads, with $meta for dynamic keys", () => {
    // proves CompiledFilter.fields lists declared fields in order plus $meta
    expect(compileFilter('age > 1 and color == "red" and meta["a"] == 1 or age < 0', schema).fields).toEqual(["age", "$meta", "meta"]);
    expect(compileFilter("array_contains(tags, 'x')", schema).fields).toEqual(["tags"]);
  });

  it("fetches each column getter once per bind and can bind to several sources", () => {
    // proves getters are hoisted out of the row loop and binds are independent
    const calls: string[] = [];
    const f = compileFilter("age > 20 and age < 45 and name like 'a%' and not (age == 35)", schema);
    const pred = f.bind(sourceOf(data, calls));
    expect([0, 1, 2, 3, 4, 5].filter(pred)).toEqual([0]);
    expect(calls.sort()).toEqual(["age", "name"]);
    const other = f.bind(sourceOf({ age: [30, 21], name: ["ax", "b"] }));
    expect([0, 1].filter(other)).toEqual([0]);
  });

  it("never throws at run time, even for values that break the column conventions", () => {
    // proves bad data (bigint in an Int32 column, strings in numeric columns) just does not match
    const bad = sourceOf({ age: [5n, "x", 7, { a: 1 }], id: [1, 2n, "3", null], name: [1, "a", null, []] });
    const match = (filter: string): number[] => [0, 1, 2, 3].filter(compileFilter(filter, schema).bind(bad));
    expect(match("age + 1 > 3")).toEqual([2]);
    expect(match("id in [1, 2]")).toEqual([0, 1]);
    expect(match("name like 'a%'")).toEqual([1]);
    expect(match("not (age * 2 > 100)")).toEqual([2]);
  });

  it("evaluates a filter over 100k synthetic rows matching a hand-written predicate", () => {
    // proves correctness at scale for the typical `age > 30 and color == "red"` filter (typed and dynamic)
    const n = 100_000;
    const colors = ["red", "green", "blue"];
    const age: (number | null)[] = [];
    const name: string[] = [];
    const id: bigint[] = [];
    const meta: ({ color: string } | null)[] = [];
    let seed = 42;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let i = 0; i < n; i++) {
      age.push(rnd() < 0.05 ? null : Math.floor(rnd() * 80));
      name.push(colors[Math.floor(rnd() * 3)]!);
      id.push(BigInt(i));
      meta.push(rnd() < 0.1 ? null : { color: colors[Math.floor(rnd() * 3)]! });
    }
    const src = sourceOf({ age, name, id, $meta: meta });
    const count = (filter: string): number => {
      const pred = compileFilter(filter, schema).bind(src);
      let c = 0;
      for (let r = 0; r < n; r++) if (pred(r)) c++;
      return c;
    };
    const expected1 = age.filter((a, i) => a !== null && a > 30 && name[i] === "red").length;
    const expected2 = age.filter((a, i) => a !== null && a > 30 && meta[i]?.color === "red" && id[i]! % 3n === 0n).length;
    expect(expected1).toBeGreaterThan(10_000);
    expect(count('age > 30 and name == "red"')).toBe(expected1);
    expect(count('age > 30 and color == "red" and id % 3 == 0')).toBe(expected2);
  });
});
