import { describe, expect, it } from "vitest";
import { rowsToColumns } from "../client/columnar.ts";
import { BadInsertData } from "../schemas/errors.ts";
import type { CollectionSchema } from "../schemas/collection.ts";
import { columnsToBatch, rowsToBatch, type RowsOptions } from "./rows.ts";
import { fld, makeSchema } from "./testkit.ts";

const schema = makeSchema([
  fld("id", "Int64", { isPrimary: true }),
  fld("vec", "FloatVector", { dim: 4 }),
  fld("age", "Int8"),
  fld("score", "Float", { nullable: true }),
  fld("flag", "Bool", { nullable: true, defaultValue: true }),
  fld("name", "VarChar", { maxLength: 5, nullable: true }),
  fld("j", "JSON", { nullable: true }),
  fld("tags", "Array", { elementType: "Int64", maxCapacity: 3, nullable: true }),
]);
const dynamic = makeSchema([...schema.fields], true);
const ins: RowsOptions = { mode: "insert" };

const outcome = (fn: () => unknown): unknown => {
  try {
    return { ok: fn() };
  } catch (e) {
    expect(e).toBeInstanceOf(BadInsertData);
    return { error: (e as BadInsertData).message };
  }
};

/** The columnar form the client sends, through msgpack-free conversion, gives what the row form gives. */
const same = (rows: Record<string, unknown>[], s: CollectionSchema = schema, opts: RowsOptions = ins) => {
  const columns = rowsToColumns(rows);
  expect(columns).toBeDefined();
  const viaColumns = outcome(() => columnsToBatch(s, columns, opts));
  expect(viaColumns).toStrictEqual(outcome(() => rowsToBatch(s, rows, opts)));
  return viaColumns as { ok?: unknown; error?: string };
};

const f32 = (...v: number[]) => new Float32Array(v);
const row = (id: number, over: Record<string, unknown> = {}) => ({ id, vec: f32(id, 2, 3, 4), age: 30, ...over });
const plainRow = (id: number, over: Record<string, unknown> = {}) => ({ id, vec: [id, 2, 3, 4], age: 30, ...over });

describe("columnsToBatch", () => {
  // Proves valid batches convert to the same columns either way, packed vectors or per-row ones, with defaults, nulls and dynamic keys.
  it("valid rows: same batch as rowsToBatch", () => {
    const r1 = same([row(1), row(2, { score: 1.5, flag: false, name: "ab", j: { a: [1] }, tags: [1, 2] }), row(3, { name: null })]);
    expect(r1.ok).toBeDefined();
    expect(rowsToColumns([row(1), row(2)])!.fields.vec).toBeInstanceOf(Float32Array); // packed
    expect(same([plainRow(1), row(2)]).ok).toBeDefined(); // mixed vector forms: one value per row
    expect(same([row(1, { color: "red" }), row(2), row(3, { n: { a: [1] }, z: null })], dynamic).ok).toBeDefined();
    expect(same([{ vec: f32(1, 2, 3, 4), age: 1 }, { vec: f32(5, 6, 7, 8), age: 2 }], makeSchema([fld("id", "Int64", { isPrimary: true, autoId: true }), ...schema.fields.slice(1)]), { mode: "insert", allocateIds: (n) => Array.from({ length: n }, (_, i) => BigInt(100 + i)) }).ok).toBeDefined();
  });

  // Proves Int64 columns of plain numbers (written word by word, no BigInt each) hold exactly the row form's
  // values over the whole safe range, nullable ones included, and a column with any other value takes the
  // general path: the same values or the same error.
  it("int64 columns of safe integers", () => {
    const big = makeSchema([...schema.fields, fld("n", "Int64", { nullable: true })]);
    const ids = [0, 1, -1, 2 ** 31, -(2 ** 31), 2 ** 32 - 1, 2 ** 32, -(2 ** 32) - 1, 2 ** 53 - 1, -(2 ** 53 - 1), 123456789012];
    const r = same(ids.map((id) => row(id, { n: -id })), big);
    expect(r.error).toBeUndefined();
    const cols = (r.ok as { columns: Record<string, { data: BigInt64Array; valid?: Uint8Array }> }).columns;
    expect([...cols.id!.data]).toEqual(ids.map(BigInt));
    expect([...cols.n!.data]).toEqual(ids.map((id) => BigInt(-id)));
    expect([...cols.n!.valid!]).toEqual(ids.map(() => 1));
    expect(same([row(1, { n: 5 }), row(2, { n: null }), row(3, { n: "7" })], big).ok).toBeDefined();
    expect(same([row(1), row(2), { ...row(3), id: 2 ** 53 }]).error).toMatch(/row 2/);
    expect(same([row(1), { ...row(2), id: 1.5 }]).error).toMatch(/row 1/);
  });

  // Proves a bad value anywhere is refused with the row form's exact message (row and field named).
  it("invalid rows: same error as rowsToBatch", () => {
    const cases: Record<string, unknown>[] = [
      { vec: f32(1, 2, 3) },
      { vec: f32(1, 2, NaN, 4) },
      { vec: [1, 2, "x", 4] },
      { vec: null },
      { vec: undefined },
      { age: 300 },
      { age: "3" },
      { id: 1.5 },
      { id: "12a" },
      { name: "toolong" },
      { score: Infinity },
      { flag: 1 },
      { j: () => 0 },
      { tags: [1, 2, 3, 4] },
      { foo: 1 },
      { $meta: { a: 1 } },
    ];
    for (const over of cases) {
      const allPacked = over.vec instanceof Float32Array && over.vec.length === 4;
      const rows = [row(1), row(2), row(3, over)];
      const r = same(rows);
      expect(r.error, JSON.stringify(Object.keys(over))).toMatch(/^row 2: /);
      if (allPacked) expect(rowsToColumns(rows)!.fields.vec).toBeInstanceOf(Float32Array);
    }
    // Every row's vector of one wrong length (packed by the client).
    expect(same([row(1, { vec: f32(1, 2, 3) }), row(2, { vec: f32(1, 2, 3) })]).error).toBe("row 0: field 'vec' expects dim 4, got 3");
    // Duplicated-in-batch keys are not this function's business (the proxy refuses them).
    expect(same([row(1), row(1)]).ok).toBeDefined();
    expect(same([row(1, { $meta: { a: 1 } })], dynamic).error).toMatch(/reserved/);
  });

  // Proves a malformed columnar body is refused as bad insert data, never written.
  it("malformed columns", () => {
    const bad = (columns: unknown, message: RegExp) => expect(outcome(() => columnsToBatch(schema, columns, ins))).toMatchObject({ error: expect.stringMatching(message) });
    bad([], /columns must be an object/);
    bad({ rowCount: 2 }, /columns must be an object/);
    bad({ rowCount: 0, fields: {} }, /rowCount must be a positive integer/);
    bad({ rowCount: 1.5, fields: {} }, /rowCount must be a positive integer/);
    bad({ rowCount: 2, fields: { id: [1], vec: f32(1, 2, 3, 4, 5, 6, 7, 8), age: [1, 2] } }, /columns.fields.id must be an array of 2 values/);
    bad({ rowCount: 2, fields: { id: [1, 2], vec: f32(1, 2, 3, 4, 5), age: [1, 2] } }, /expects 2 vectors of dim 4 \(8 floats\), got 5 floats/);
    bad({ rowCount: 2, fields: { id: [1, 2], vec: [f32(1, 2, 3, 4), f32(1, 2, 3, 4)], age: f32(1, 2) } }, /row 0: field 'age' expects an Int8/);
    bad({ rowCount: 2, fields: { id: [1, 2], vec: [f32(1, 2, 3, 4), f32(1, 2, 3, 4)] } }, /row 0: missing field 'age'/);
    // The client sends rows as they are when they are not all plain objects (the server names the bad row).
    expect(rowsToColumns([row(1), null])).toBeUndefined();
    expect(rowsToColumns([null, row(1)])).toBeUndefined();
    expect(rowsToColumns([])).toBeUndefined();
  });

  // Proves the client's columns hold every row's own keys whatever their order, and undefined where a
  // row lacks a key the others have (rows of one shape take a faster path; these cover both).
  it("client columns from rows of one or several shapes", () => {
    const fields = (rows: unknown[]) => ({ ...rowsToColumns(rows)!.fields });
    expect(fields([{ a: 1, b: 2 }, { a: 3, b: 4 }])).toStrictEqual({ a: [1, 3], b: [2, 4] });
    expect(fields([{ a: 1, b: 2 }, { b: 4, a: 3 }])).toStrictEqual({ a: [1, 3], b: [2, 4] });
    expect(fields([{ a: 1, b: 2 }, { a: 3 }])).toStrictEqual({ a: [1, 3], b: [2, undefined] });
    expect(fields([{ a: 1 }, { a: 2, c: 5 }])).toStrictEqual({ a: [1, 2], c: [undefined, 5] });
    expect(fields([{ a: 1, b: 2 }, { a: 3, c: 4 }])).toStrictEqual({ a: [1, 3], b: [2, undefined], c: [undefined, 4] });
    expect(fields([{ a: 1, b: undefined }, { a: 2, b: 3 }])).toStrictEqual({ a: [1, 2], b: [undefined, 3] });
    expect(fields([{ v: f32(1, 2) }, { v: f32(3, 4) }])).toStrictEqual({ v: f32(1, 2, 3, 4) });
  });
});
