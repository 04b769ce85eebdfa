import { describe, expect, it } from "vitest";
import { BadInsertData, InvalidParameter } from "../schemas/errors.ts";
import { columnValue, type RowBatch } from "./columns.ts";
import { batchRowsToObjects, pkValues, resolveOutputFields, rowsToBatch, type RowsOptions } from "./rows.ts";
import { fld, makeSchema, rng } from "./testkit.ts";

const schema = makeSchema([
  fld("id", "Int64", { isPrimary: true }),
  fld("vec", "FloatVector", { dim: 4 }),
  fld("age", "Int8"),
  fld("i16", "Int16", { nullable: true }),
  fld("i32", "Int32", { nullable: true }),
  fld("score", "Float", { nullable: true }),
  fld("d", "Double", { nullable: true }),
  fld("flag", "Bool", { nullable: true }),
  fld("name", "VarChar", { maxLength: 5, nullable: true }),
  fld("j", "JSON", { nullable: true }),
  fld("tags", "Array", { elementType: "Int64", maxCapacity: 3, nullable: true }),
  fld("labels", "Array", { elementType: "VarChar", maxLength: 3, maxCapacity: 2, nullable: true }),
]);
const ins: RowsOptions = { mode: "insert" };
const good = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ id: 1, vec: [1, 2, 3, 4], age: 30, ...over });

/** Runs fn, expects a BadInsertData (code 1804) with exactly this message. */
const expectBad = (fn: () => unknown, message: string): void => {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(BadInsertData);
  expect((err as BadInsertData).code).toBe(1804);
  expect((err as BadInsertData).message).toBe(message);
};
/** Row 0 and 1 are fine, row 2 gets the overrides. */
const badAt2 = (over: Record<string, unknown>, message: string, s = schema, opts: RowsOptions = ins): void =>
  expectBad(() => rowsToBatch(s, [good({ id: 1 }), good({ id: 2 }), good({ id: 3, ...over })], opts), message);

describe("rowsToBatch: shape of data", () => {
  // Proves data must be a non-empty array of plain objects.
  it("rejects non-arrays, empty arrays and non-object rows", () => {
    expectBad(() => rowsToBatch(schema, undefined, ins), "data must be a non-empty array of rows");
    expectBad(() => rowsToBatch(schema, { id: 1 }, ins), "data must be a non-empty array of rows");
    expectBad(() => rowsToBatch(schema, [], ins), "data must be a non-empty array of rows");
    expectBad(() => rowsToBatch(schema, [good(), [1, 2]], ins), "data must be a non-empty array of rows; row 1 is an array, not a plain object");
    expectBad(() => rowsToBatch(schema, [good(), good(), null], ins), "data must be a non-empty array of rows; row 2 is null, not a plain object");
    expectBad(() => rowsToBatch(schema, [new Date()], ins), "data must be a non-empty array of rows; row 0 is a Date, not a plain object");
  });
});

describe("rowsToBatch: field errors name row and field", () => {
  // Proves missing required fields and nulls in non-nullable fields are rejected.
  it("missing and null", () => {
    badAt2({ age: undefined }, "row 2: missing field 'age'");
    badAt2({ vec: undefined }, "row 2: missing field 'vec'");
    badAt2({ id: undefined }, "row 2: missing field 'id'");
    badAt2({ age: null }, "row 2: field 'age' is not nullable, got null");
    badAt2({ vec: null }, "row 2: field 'vec' is not nullable, got null");
    badAt2({ id: null }, "row 2: field 'id' is not nullable, got null");
  });

  // Proves Int64 accepts only safe-integer numbers, bigints and decimal strings, range-checked.
  it("Int64 primary key", () => {
    badAt2({ id: 1.5 }, "row 2: field 'id' expects an Int64 (integer or decimal string), got 1.5");
    badAt2({ id: 2 ** 60 }, "row 2: field 'id' expects an Int64, got 1152921504606847000 which is beyond 2^53 and not exact; send it as a decimal string");
    badAt2({ id: "12a" }, `row 2: field 'id' expects an Int64 (integer or decimal string), got string "12a"`);
    badAt2({ id: "" }, `row 2: field 'id' expects an Int64 (integer or decimal string), got string ""`);
    badAt2({ id: true }, "row 2: field 'id' expects an Int64 (integer or decimal string), got true");
    badAt2({ id: "9223372036854775808" }, "row 2: field 'id' value 9223372036854775808 is out of Int64 range");
    badAt2({ id: -(2n ** 63n) - 1n }, "row 2: field 'id' value -9223372036854775809 is out of Int64 range");
  });

  // Proves Int8/16/32 accept only in-range integer numbers (no strings).
  it("small integers", () => {
    badAt2({ age: 128 }, "row 2: field 'age' expects an Int8 integer in [-128, 127], got 128");
    badAt2({ age: "5" }, `row 2: field 'age' expects an Int8 integer in [-128, 127], got string "5"`);
    badAt2({ i16: 1.5 }, "row 2: field 'i16' expects an Int16 integer in [-32768, 32767], got 1.5");
    badAt2({ i16: -32769 }, "row 2: field 'i16' expects an Int16 integer in [-32768, 32767], got -32769");
    badAt2({ i32: 2147483648 }, "row 2: field 'i32' expects an Int32 integer in [-2147483648, 2147483647], got 2147483648");
    badAt2({ i32: 5n }, "row 2: field 'i32' expects an Int32 integer in [-2147483648, 2147483647], got 5n");
  });

  // Proves Float/Double must be finite numbers and Float must fit float32.
  it("floats", () => {
    badAt2({ score: NaN }, "row 2: field 'score' expects a finite Float, got NaN");
    badAt2({ score: Infinity }, "row 2: field 'score' expects a finite Float, got Infinity");
    badAt2({ score: 1e39 }, "row 2: field 'score' value 1e+39 is out of Float (float32) range");
    badAt2({ score: "1.5" }, `row 2: field 'score' expects a finite Float, got string "1.5"`);
    badAt2({ d: -Infinity }, "row 2: field 'd' expects a finite Double, got -Infinity");
    badAt2({ d: [1] }, "row 2: field 'd' expects a finite Double, got an array");
  });

  // Proves Bool and VarChar types, and VarChar max_length counted in UTF-8 bytes.
  it("bool and varchar", () => {
    badAt2({ flag: "true" }, `row 2: field 'flag' expects a Bool (true or false), got string "true"`);
    badAt2({ flag: 1 }, "row 2: field 'flag' expects a Bool (true or false), got 1");
    badAt2({ name: 5 }, "row 2: field 'name' expects a VarChar string, got 5");
    badAt2({ name: "abcdef" }, "row 2: field 'name' is 6 bytes long (UTF-8), exceeding max_length 5");
    badAt2({ name: "ééé" }, "row 2: field 'name' is 6 bytes long (UTF-8), exceeding max_length 5");
    const b = rowsToBatch(schema, [good({ name: "éé" }), good({ id: 2, name: "abcde" })], ins);
    expect(b.columns.name!.data).toEqual(["éé", "abcde"]);
  });

  // Proves JSON fields accept any JSON value and reject non-JSON parts with their path.
  it("JSON", () => {
    badAt2({ j: () => 1 }, "row 2: field 'j' expects a JSON value, got a function");
    badAt2({ j: 5n }, "row 2: field 'j' expects a JSON value, got 5n");
    badAt2({ j: { a: [1, { b: undefined }] } }, "row 2: field 'j' has a non-JSON value at $.a[1].b: undefined");
    badAt2({ j: { "x y": NaN } }, `row 2: field 'j' has a non-JSON value at $["x y"]: non-finite number NaN`);
    badAt2({ j: { m: new Map() } }, "row 2: field 'j' has a non-JSON value at $.m: a Map");
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    badAt2({ j: cyc }, `row 2: field 'j' has a non-JSON value at $${".self".repeat(64)}: nesting deeper than 64 levels`);
    const vals = [{ a: { b: [1, "x", null, true] } }, [1, 2], "s", 3.5, false];
    const b = rowsToBatch(schema, vals.map((j, i) => good({ id: i, j })), ins);
    expect(b.columns.j!.data).toEqual(vals);
  });

  // Proves Array fields check type, capacity, element types (Int64 -> bigint) and VarChar element length.
  it("Array", () => {
    badAt2({ tags: 5 }, "row 2: field 'tags' expects an Array of Int64, got 5");
    badAt2({ tags: [1, 2, 3, 4] }, "row 2: field 'tags' has 4 elements, exceeding max_capacity 3");
    badAt2({ tags: [1, 1.5] }, "row 2: field 'tags' element 1 expects an Int64 (integer or decimal string), got 1.5");
    badAt2({ tags: [1, null] }, "row 2: field 'tags' element 1 is null; Array elements must be Int64 values");
    badAt2({ labels: ["ab", "abcd"] }, "row 2: field 'labels' element 1 is 4 bytes long (UTF-8), exceeding max_length 3");
    badAt2({ labels: ["ab", 3] }, "row 2: field 'labels' element 1 expects a VarChar string, got 3");
    const b = rowsToBatch(schema, [good({ tags: [1, "9007199254740993", 3n], labels: ["a", "bcd"] })], ins);
    expect(b.columns.tags!.data).toEqual([[1n, 9007199254740993n, 3n]]);
    expect(b.columns.labels!.data).toEqual([["a", "bcd"]]);
  });

  // Proves FloatVector dimension, finiteness, numeric elements and float32 range are checked.
  it("FloatVector", () => {
    badAt2({ vec: [1, 2, 3] }, "row 2: field 'vec' expects dim 4, got 3");
    badAt2({ vec: new Float32Array(5) }, "row 2: field 'vec' expects dim 4, got 5");
    badAt2({ vec: [1, 2, 3, NaN] }, "row 2: field 'vec' has a non-finite value at position 3");
    badAt2({ vec: [1, -Infinity, 3, 4] }, "row 2: field 'vec' has a non-finite value at position 1");
    badAt2({ vec: new Float32Array([1, 2, NaN, 4]) }, "row 2: field 'vec' has a non-finite value at position 2");
    badAt2({ vec: [1, 2, 1e39, 4] }, "row 2: field 'vec' value 1e+39 at position 2 is out of float32 range");
    badAt2({ vec: [1, "2", 3, 4] }, `row 2: field 'vec' has a non-numeric value at position 1: string "2"`);
    badAt2({ vec: "1,2,3,4" }, `row 2: field 'vec' expects a FloatVector (array of 4 numbers), got string "1,2,3,4"`);
    const b = rowsToBatch(schema, [good({ vec: [0.1, 2, 3, 4] }), good({ id: 2, vec: new Float32Array([5, 6, 7, 8]) })], ins);
    expect(b.columns.vec!.data).toStrictEqual(new Float32Array([0.1, 2, 3, 4, 5, 6, 7, 8]));
  });

  // Proves unknown keys are rejected without the dynamic field and "$meta" is always reserved.
  it("unknown keys and $meta", () => {
    badAt2({ foo: 1 }, "row 2: field 'foo' is not in the schema");
    badAt2({ $meta: {} }, "row 2: field '$meta' is reserved; put dynamic keys at the top level of the row");
    const dyn = makeSchema(schema.fields.slice(0, 3), true);
    badAt2({ $meta: { a: 1 } }, "row 2: field '$meta' is reserved; put dynamic keys at the top level of the row", dyn);
    badAt2({ extra: () => 0 }, "row 2: dynamic field 'extra' expects a JSON value, got a function", dyn);
  });
});

describe("rowsToBatch: conversion", () => {
  // Proves Int64 values beyond 2^53 are exact when sent as strings, and bigint/number forms convert.
  it("Int64 beyond 2^53 from strings", () => {
    const b = rowsToBatch(
      schema,
      [good({ id: "9007199254740993" }), good({ id: "-9223372036854775808" }), good({ id: 9223372036854775807n }), good({ id: -42 })],
      ins,
    );
    expect(Array.from(b.columns.id!.data as BigInt64Array)).toEqual([9007199254740993n, -(2n ** 63n), 2n ** 63n - 1n, -42n]);
    expect(pkValues(schema, b)).toEqual([9007199254740993n, -(2n ** 63n), 2n ** 63n - 1n, -42n]);
  });

  // Proves every scalar lands in the right typed column with the right value and null bitmap.
  it("scalar columns and nulls", () => {
    const b = rowsToBatch(
      schema,
      [good({ i16: -5, i32: 70000, score: 0.1, d: 0.1, flag: true, name: "ab", j: { x: 1 } }), good({ id: 2, flag: false, i16: null })],
      ins,
    );
    const c = b.columns;
    expect(c.age!.kind === "number" && c.age!.data).toStrictEqual(new Int8Array([30, 30]));
    expect(c.age!.kind === "number" && c.age!.valid).toBe(undefined);
    expect([0, 1].map((r) => columnValue(c.i16!, r))).toEqual([-5, null]);
    expect([0, 1].map((r) => columnValue(c.i32!, r))).toEqual([70000, null]);
    expect([0, 1].map((r) => columnValue(c.score!, r))).toEqual([Math.fround(0.1), null]);
    expect([0, 1].map((r) => columnValue(c.d!, r))).toEqual([0.1, null]);
    expect([0, 1].map((r) => columnValue(c.flag!, r))).toEqual([true, false]);
    expect(c.name!.data).toEqual(["ab", null]);
    expect(c.j!.data).toEqual([{ x: 1 }, null]);
    expect(c.tags!.data).toEqual([null, null]);
  });

  // Proves defaults fill missing (and null) values, and missing nullable fields become null.
  it("defaults and nullable", () => {
    const s = makeSchema([
      fld("id", "VarChar", { isPrimary: true, maxLength: 8 }),
      fld("vec", "FloatVector", { dim: 2 }),
      fld("n", "Int64", { defaultValue: 7 }),
      fld("m", "Int32", { nullable: true, defaultValue: -1 }),
      fld("s", "VarChar", { maxLength: 10, defaultValue: "dflt" }),
      fld("b", "Bool", { nullable: true }),
      fld("x", "Double", { defaultValue: 2 }),
      fld("bad", "Int8", { defaultValue: 1000, nullable: true }),
    ]);
    const v = [1, 2];
    const b = rowsToBatch(s, [{ id: "a", vec: v, bad: 1 }, { id: "b", vec: v, n: "5", m: null, s: null, b: true, bad: 2 }], ins);
    const col = (name: string) => [0, 1].map((r) => columnValue(b.columns[name]!, r));
    expect(col("n")).toEqual([7n, 5n]);
    expect(col("m")).toEqual([-1, -1]);
    expect(col("s")).toEqual(["dflt", "dflt"]);
    expect(col("b")).toEqual([null, true]);
    expect(col("x")).toEqual([2, 2]);
    expect(pkValues(s, b)).toEqual(["a", "b"]);
    expectBad(
      () => rowsToBatch(s, [{ id: "a", vec: v }], ins),
      "row 0: field 'bad' has an invalid default value: field 'bad' expects an Int8 integer in [-128, 127], got 1000",
    );
    expectBad(() => rowsToBatch(s, [{ id: "", vec: v, bad: 1 }], ins), "row 0: field 'id' (primary key) must not be empty");
    expectBad(() => rowsToBatch(s, [{ id: "123456789", vec: v, bad: 1 }], ins), "row 0: field 'id' is 9 bytes long (UTF-8), exceeding max_length 8");
  });

  // Proves autoID: insert forbids the pk and takes ids from allocateIds (only after validation); upsert requires it.
  it("autoID", () => {
    const s = makeSchema([fld("pk", "Int64", { isPrimary: true, autoId: true }), fld("vec", "FloatVector", { dim: 2 })]);
    let calls = 0;
    const alloc = (n: number): bigint[] => {
      calls++;
      return Array.from({ length: n }, (_, i) => 1000n + BigInt(i));
    };
    const b = rowsToBatch(s, [{ vec: [1, 2] }, { vec: [3, 4] }], { mode: "insert", allocateIds: alloc });
    expect(pkValues(s, b)).toEqual([1000n, 1001n]);
    expect(calls).toBe(1);
    expectBad(
      () => rowsToBatch(s, [{ vec: [1, 2] }, { pk: 5, vec: [3, 4] }], { mode: "insert", allocateIds: alloc }),
      "row 1: field 'pk' is the autoID primary key and must not be given on insert",
    );
    expectBad(() => rowsToBatch(s, [{ vec: [1, 2] }, { vec: [3] }], { mode: "insert", allocateIds: alloc }), "row 1: field 'vec' expects dim 2, got 1");
    expect(calls).toBe(1);
    expectBad(() => rowsToBatch(s, [{ pk: 1, vec: [1, 2] }, { vec: [3, 4] }], { mode: "upsert" }), "row 1: missing field 'pk'");
    const u = rowsToBatch(s, [{ pk: "77", vec: [1, 2] }], { mode: "upsert" });
    expect(pkValues(s, u)).toEqual([77n]);
  });

  // Proves unknown keys go to $meta (null when a row has none) when the dynamic field is enabled.
  it("dynamic field", () => {
    const s = makeSchema([fld("id", "Int64", { isPrimary: true }), fld("vec", "FloatVector", { dim: 2 })], true);
    const b = rowsToBatch(s, [{ id: 1, vec: [1, 2], color: "red", n: { a: [1] } }, { id: 2, vec: [1, 2] }, { id: 3, vec: [1, 2], z: null }], ins);
    expect(b.columns.$meta!.data).toEqual([{ color: "red", n: { a: [1] } }, null, { z: null }]);
    expect(Object.keys(b.columns)).toEqual(["id", "vec", "$meta"]);
    // A schema that lists the hidden $meta field explicitly behaves the same.
    const s2 = makeSchema([...s.fields, fld("$meta", "JSON", { isDynamic: true })], false);
    const b2 = rowsToBatch(s2, [{ id: 1, vec: [1, 2], color: "red" }], ins);
    expect(b2.columns.$meta!.data).toEqual([{ color: "red" }]);
  });

});

describe("output", () => {
  const dyn = makeSchema(
    [fld("id", "Int64", { isPrimary: true }), fld("vec", "FloatVector", { dim: 2 }), fld("name", "VarChar", { maxLength: 10, nullable: true })],
    true,
  );

  // Proves output-field resolution: default [], "*" expansion, dynamic keys, unknown names rejected.
  it("resolveOutputFields", () => {
    expect(resolveOutputFields(dyn, undefined)).toEqual([]);
    expect(resolveOutputFields(dyn, [])).toEqual([]);
    expect(resolveOutputFields(dyn, ["*"])).toEqual(["id", "vec", "name", "$meta"]);
    expect(resolveOutputFields(dyn, ["color", "name", "*", "color"])).toEqual(["color", "name", "id", "vec", "$meta"]);
    expect(resolveOutputFields(schema, ["*"])).toEqual(schema.fields.map((f) => f.name));
    let err: unknown;
    try {
      resolveOutputFields(schema, ["age", "color"]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidParameter);
    expect((err as InvalidParameter).message).toBe("output field 'color' does not exist in the collection schema");
  });

  // Proves row objects take values from columns and flatten $meta keys into the top level.
  it("batchRowsToObjects", () => {
    const b: RowBatch = rowsToBatch(
      dyn,
      [
        { id: "9007199254740993", vec: [1, 2], name: "a", color: "red", size: 3 },
        { id: 2, vec: [3, 4], name: null },
      ],
      ins,
    );
    const out = batchRowsToObjects(dyn, b, [1, 0], resolveOutputFields(dyn, ["*"]));
    expect(out).toStrictEqual([
      { id: 2n, vec: new Float32Array([3, 4]), name: null },
      { id: 9007199254740993n, vec: new Float32Array([1, 2]), name: "a", color: "red", size: 3 },
    ]);
    expect(batchRowsToObjects(dyn, b, [0, 1], ["color", "name"])).toStrictEqual([{ color: "red", name: "a" }, { name: null }]);
    expect(batchRowsToObjects(dyn, b, [0], [])).toStrictEqual([{}]);
  });
});
