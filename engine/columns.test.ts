import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { columnValue, concatBatches, decodeBatch, encodeBatch, takeRows, type RowBatch } from "./columns.ts";
import { fld, makeSchema } from "./testkit.ts";

const everyKind = (): RowBatch => ({
  rowCount: 3,
  columns: {
    vec: { kind: "vector", dim: 2, data: new Float32Array([1.5, -0, 3.25, 4, 1e-30, -3.4028234663852886e38]) },
    id: { kind: "int64", data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n]) },
    n64: { kind: "int64", data: new BigInt64Array([5n, 0n, -7n]), valid: new Uint8Array([1, 0, 1]) },
    i8: { kind: "number", type: "Int8", data: new Int8Array([-128, 0, 127]), valid: new Uint8Array([1, 1, 0]) },
    i16: { kind: "number", type: "Int16", data: new Int16Array([-32768, 1, 32767]) },
    i32: { kind: "number", type: "Int32", data: new Int32Array([-2147483648, 2, 2147483647]) },
    f: { kind: "number", type: "Float", data: new Float32Array([0.1, -0, 3.4028234663852886e38]) },
    d: { kind: "number", type: "Double", data: new Float64Array([0.1, -0, 1e300]) },
    b: { kind: "bool", data: new Uint8Array([1, 0, 1]), valid: new Uint8Array([1, 1, 0]) },
    s: { kind: "values", data: ["héllo", null, ""] },
    j: { kind: "values", data: [{ a: [1, 2.5, { b: null }], big: 2 ** 60 }, null, [true, "x"]] },
    arr: { kind: "values", data: [[1n, -(2n ** 63n)], null, []] },
    $meta: { kind: "values", data: [null, { k: "v", n: 1 }, { deep: { x: [1] } }] },
  },
});

describe("columns", () => {
  // Proves plain msgpackr (no moreTypes) does NOT round-trip typed arrays, which is why encodeBatch enables moreTypes.
  it("plain msgpackr loses typed arrays", () => {
    const p = new Packr({ int64AsType: "bigint" });
    const out = p.unpack(p.pack({ f: new Float32Array([1.5, 2]) })) as { f: unknown };
    expect(out.f instanceof Float32Array).toBe(false);
    expect(() => p.pack({ b: new BigInt64Array([1n]) })).toThrow();
  });

  // Proves encodeBatch/decodeBatch round-trip every column kind exactly (types, -0, int64 extremes, bigint array elements, nulls).
  it("encode/decode round-trips every column kind exactly", () => {
    const batch = everyKind();
    const back = decodeBatch(encodeBatch(batch));
    expect(back).toStrictEqual(batch);
    expect(back.columns.vec!.data).toBeInstanceOf(Float32Array);
    expect(back.columns.id!.data).toBeInstanceOf(BigInt64Array);
    expect(back.columns.i8!.data).toBeInstanceOf(Int8Array);
    expect(back.columns.i16!.data).toBeInstanceOf(Int16Array);
    expect(back.columns.i32!.data).toBeInstanceOf(Int32Array);
    expect(back.columns.f!.data).toBeInstanceOf(Float32Array);
    expect(back.columns.d!.data).toBeInstanceOf(Float64Array);
    expect(Object.is((back.columns.d!.data as Float64Array)[1], -0)).toBe(true);
    expect(Object.is((back.columns.vec!.data as Float32Array)[1], -0)).toBe(true);
    expect((back.columns.id!.data as BigInt64Array)[2]).toBe(9007199254740993n);
    expect((back.columns.arr!.data as unknown[])[0]).toEqual([1n, -9223372036854775808n]);
    expect(typeof ((back.columns.j!.data as unknown[])[0] as { big: unknown }).big).toBe("number");
    expect(back.columns.n64!.kind === "int64" && back.columns.n64!.valid).toEqual(new Uint8Array([1, 0, 1]));
  });

  // Proves a subarray view (non-zero byteOffset) encodes only its own elements.
  it("encodes typed-array views by content", () => {
    const big = new Float32Array([9, 9, 1, 2, 3, 4, 9]);
    const batch: RowBatch = { rowCount: 2, columns: { v: { kind: "vector", dim: 2, data: big.subarray(2, 6) } } };
    const back = decodeBatch(encodeBatch(batch));
    expect(Array.from(back.columns.v!.data as Float32Array)).toEqual([1, 2, 3, 4]);
  });

  // Proves decodeBatch rejects structurally wrong input instead of returning a bad batch.
  it("decodeBatch rejects corrupt batches", () => {
    const p = new Packr({ moreTypes: true, useRecords: false, int64AsType: "bigint" });
    expect(() => decodeBatch(p.pack({ x: 1 }))).toThrow("decodeBatch: not a version-1 row batch");
    const short = p.pack([1, 3, { a: { kind: "int64", data: new BigInt64Array(2) } }]);
    expect(() => decodeBatch(short)).toThrow("decodeBatch: column 'a': bad data");
    const kind = p.pack([1, 0, { a: { kind: "nope", data: [] } }]);
    expect(() => decodeBatch(kind)).toThrow("decodeBatch: column 'a': unknown kind");
  });

  // Proves columnValue returns in-memory conventions: bigint, null via valid, boolean, vector copies.
  it("columnValue follows the value conventions", () => {
    const b = everyKind();
    const c = b.columns;
    expect(columnValue(c.id!, 2)).toBe(9007199254740993n);
    expect(columnValue(c.n64!, 1)).toBe(null);
    expect(columnValue(c.n64!, 2)).toBe(-7n);
    expect(columnValue(c.i8!, 0)).toBe(-128);
    expect(columnValue(c.i8!, 2)).toBe(null);
    expect(columnValue(c.b!, 0)).toBe(true);
    expect(columnValue(c.b!, 1)).toBe(false);
    expect(columnValue(c.b!, 2)).toBe(null);
    expect(columnValue(c.f!, 0)).toBe(Math.fround(0.1));
    expect(columnValue(c.s!, 1)).toBe(null);
    const v = columnValue(c.vec!, 1) as Float32Array;
    expect(Array.from(v)).toEqual([3.25, 4]);
    v[0] = 100;
    expect((c.vec!.data as Float32Array)[2]).toBe(3.25);
  });

  // Proves takeRows copies the requested rows in the requested order (with repeats) for every column kind.
  it("takeRows selects rows in order", () => {
    const b = everyKind();
    const t = takeRows(b, [2, 0, 2]);
    expect(t.rowCount).toBe(3);
    expect(Array.from(t.columns.vec!.data as Float32Array)).toEqual([1e-30, -3.4028234663852886e38, 1.5, -0, 1e-30, -3.4028234663852886e38].map(Math.fround));
    expect(Array.from(t.columns.id!.data as BigInt64Array)).toEqual([2n ** 53n + 1n, -(2n ** 63n), 2n ** 53n + 1n]);
    expect(t.columns.n64!.kind === "int64" && Array.from(t.columns.n64!.valid!)).toEqual([1, 1, 1]);
    expect(t.columns.i8!.kind === "number" && Array.from(t.columns.i8!.valid!)).toEqual([0, 1, 0]);
    expect(t.columns.s!.data).toEqual(["", "héllo", ""]);
    expect(t.columns.$meta!.data).toEqual([{ deep: { x: [1] } }, null, { deep: { x: [1] } }]);
    expect(takeRows(b, []).rowCount).toBe(0);
    expect(() => takeRows(b, [3])).toThrow("row 3 out of range [0, 3)");
  });

  // Proves concatBatches appends rows in order and fills a missing valid array as all-valid.
  it("concatBatches concatenates", () => {
    const schema = makeSchema([
      fld("id", "Int64", { isPrimary: true }),
      fld("v", "FloatVector", { dim: 2 }),
      fld("x", "Int32", { nullable: true }),
      fld("s", "VarChar", { maxLength: 10 }),
    ]);
    const a: RowBatch = {
      rowCount: 2,
      columns: {
        id: { kind: "int64", data: new BigInt64Array([1n, 2n]) },
        v: { kind: "vector", dim: 2, data: new Float32Array([1, 2, 3, 4]) },
        x: { kind: "number", type: "Int32", data: new Int32Array([7, 0]), valid: new Uint8Array([1, 0]) },
        s: { kind: "values", data: ["a", "b"] },
      },
    };
    const b: RowBatch = {
      rowCount: 1,
      columns: {
        id: { kind: "int64", data: new BigInt64Array([3n]) },
        v: { kind: "vector", dim: 2, data: new Float32Array([5, 6]) },
        x: { kind: "number", type: "Int32", data: new Int32Array([9]) },
        s: { kind: "values", data: ["c"] },
      },
    };
    const c = concatBatches(schema, [a, b]);
    expect(c.rowCount).toBe(3);
    expect(Array.from(c.columns.id!.data as BigInt64Array)).toEqual([1n, 2n, 3n]);
    expect(Array.from(c.columns.v!.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    expect([0, 1, 2].map((r) => columnValue(c.columns.x!, r))).toEqual([7, null, 9]);
    expect(c.columns.s!.data).toEqual(["a", "b", "c"]);
    const empty = concatBatches(schema, []);
    expect(empty.rowCount).toBe(0);
    expect(Object.keys(empty.columns)).toEqual(["id", "v", "x", "s"]);
    expect(() => concatBatches(schema, [a, { rowCount: 0, columns: { id: a.columns.id! } }])).toThrow(/different columns/);
  });
});
