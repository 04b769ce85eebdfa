import { describe, expect, it } from "vitest";
import { InvalidParameter } from "../schemas/errors.ts";
import { decodeBatch, encodeBatch } from "./columns.ts";
import { GrowingSegment } from "./growing.ts";
import { batchRowsToObjects, resolveOutputFields, rowsToBatch } from "./rows.ts";
import { fld, makeSchema } from "./testkit.ts";

const schema = makeSchema(
  [
    fld("id", "Int64", { isPrimary: true }),
    fld("vec", "FloatVector", { dim: 3 }),
    fld("n", "Int32", { nullable: true }),
    fld("f", "Float"),
    fld("b", "Bool", { nullable: true }),
    fld("big", "Int64", { nullable: true }),
    fld("s", "VarChar", { maxLength: 20 }),
    fld("tags", "Array", { elementType: "Int64", maxCapacity: 4, nullable: true }),
  ],
  true,
);

const rowFor = (i: number): Record<string, unknown> => ({
  id: 1000 + i,
  vec: [i, i + 1, i === 0 ? 0 : -i],
  n: i % 4 === 0 ? null : i * 3,
  f: i / 4,
  b: i % 3 === 0 ? null : i % 2 === 0,
  big: i % 5 === 0 ? null : String(2n ** 60n + BigInt(i)),
  s: `s${i}`,
  tags: i % 2 === 0 ? [BigInt(i), 2n] : null,
  ...(i % 3 === 1 ? { color: `c${i}` } : {}),
});

const batchOf = (from: number, count: number) =>
  rowsToBatch(
    schema,
    Array.from({ length: count }, (_, k) => rowFor(from + k)),
    { mode: "insert" },
  );

describe("GrowingSegment", () => {
  // Proves growth past the initial capacity (2 -> many doublings; vectors in chunks of 4 rows, batches crossing
  // chunk boundaries) keeps every value of every column, ts and norm.
  it("grows and keeps all values", () => {
    const seg = new GrowingSegment(schema, 7, 2, 4 * 3 * 4);
    const starts: number[] = [];
    for (let k = 0; k < 6; k++) starts.push(seg.append(batchOf(k * 3, 3), BigInt(100 + k)).firstRow);
    expect(starts).toEqual([0, 3, 6, 9, 12, 15]);
    expect(seg.rowCount).toBe(18);
    expect(seg.liveCount).toBe(18);
    expect(seg.partitionId).toBe(7);
    const { chunks, chunkShift, chunkMask, dim, invNorms } = seg.vectors("vec");
    expect(dim).toBe(3);
    expect(chunkShift).toBe(2);
    expect(chunks.length).toBe(5);
    const data = new Float32Array(chunks.length * 4 * 3);
    chunks.forEach((c, i) => data.set(c, i * 4 * 3));
    expect(chunkMask).toBe(3);
    for (let i = 0; i < 18; i++) {
      expect(seg.pk(i)).toBe(BigInt(1000 + i));
      expect(seg.rowTs(i)).toBe(BigInt(100 + Math.floor(i / 3)));
      expect(Array.from(seg.value("vec", i) as Float32Array)).toEqual([i, i + 1, i === 0 ? 0 : -i]);
      expect(Array.from(data.subarray(i * 3, i * 3 + 3))).toEqual([i, i + 1, i === 0 ? 0 : -i]);
      const norm = Math.sqrt(i * i + (i + 1) * (i + 1) + (i === 0 ? 0 : i * i));
      expect(invNorms[i]).toBeCloseTo(1 / norm, 12);
      expect(seg.value("n", i)).toBe(i % 4 === 0 ? null : i * 3);
      expect(seg.value("f", i)).toBe(i / 4);
      expect(seg.value("b", i)).toBe(i % 3 === 0 ? null : i % 2 === 0);
      expect(seg.value("big", i)).toBe(i % 5 === 0 ? null : 2n ** 60n + BigInt(i));
      expect(seg.value("s", i)).toBe(`s${i}`);
      expect(seg.value("tags", i)).toEqual(i % 2 === 0 ? [BigInt(i), 2n] : null);
      expect(seg.value("$meta", i)).toEqual(i % 3 === 1 ? { color: `c${i}` } : {});
    }
    expect(() => seg.value("nope", 0)).toThrow(InvalidParameter);
    expect(() => seg.rowTs(18)).toThrow(RangeError);
  });

  // Proves a zero vector gets inverse norm 0 (not Infinity).
  it("zero vector norm", () => {
    const seg = new GrowingSegment(schema, 0);
    seg.append(batchOf(0, 1), 1n);
    expect(seg.vectors("vec").invNorms[0]).toBe(1 / Math.sqrt(1));
    const s2 = makeSchema([fld("id", "Int64", { isPrimary: true }), fld("v", "FloatVector", { dim: 2 })]);
    const g = new GrowingSegment(s2, 0);
    g.append(rowsToBatch(s2, [{ id: 1, v: [0, 0] }], { mode: "insert" }), 1n);
    expect(g.vectors("v").invNorms[0]).toBe(0);
  });

  // Proves deletes: flags, liveCount, earliest delete ts kept, MVCC visibility by insert and delete ts.
  it("deletes", () => {
    const seg = new GrowingSegment(schema, 0, 4);
    seg.append(batchOf(0, 3), 10n);
    seg.append(batchOf(3, 3), 20n);
    seg.markDeleted(1, 30n);
    seg.markDeleted(4, 25n);
    seg.markDeleted(4, 40n);
    expect(seg.liveCount).toBe(4);
    expect(seg.rowCount).toBe(6);
    expect([0, 1, 2, 3, 4, 5].map((r) => seg.isDeleted(r))).toEqual([false, true, false, false, true, false]);
    expect(seg.deleteTsOf(4)).toBe(25n);
    expect(seg.deleteTsOf(0)).toBe(undefined);
    seg.markDeleted(4, 22n);
    expect(seg.deleteTsOf(4)).toBe(22n);
    expect(seg.liveCount).toBe(4);
    expect([0, 1, 2, 3, 4, 5].map((r) => seg.visibleAt(r, 15n))).toEqual([true, true, true, false, false, false]);
    expect([0, 1, 2, 3, 4, 5].map((r) => seg.visibleAt(r, 22n))).toEqual([true, true, true, true, false, true]);
    expect([0, 1, 2, 3, 4, 5].map((r) => seg.visibleAt(r, 30n))).toEqual([true, false, true, true, false, true]);
    expect(seg.visiblePrefix(15n)).toBe(3);
    expect(seg.visiblePrefix(20n)).toBe(6);
    expect(seg.visiblePrefix(9n)).toBe(0);
    expect(seg.insertTsMonotonic).toBe(true);
    seg.append(batchOf(6, 1), 5n);
    expect(seg.insertTsMonotonic).toBe(false);
    expect(() => seg.markDeleted(7, 1n)).toThrow(RangeError);
  });

  // Proves columnSource accessors return in-memory values and stay valid after the segment grows.
  it("columnSource", () => {
    const seg = new GrowingSegment(schema, 0, 1);
    seg.append(batchOf(0, 2), 1n);
    const src = seg.columnSource();
    const n = src.column("n");
    const b = src.column("b");
    const big = src.column("big");
    const s = src.column("s");
    const meta = src.column("$meta");
    seg.append(batchOf(2, 30), 2n); // forces reallocation
    expect(n(0)).toBe(null);
    expect(n(29)).toBe(87);
    expect(b(2)).toBe(true);
    expect(b(3)).toBe(null);
    expect(big(31)).toBe(2n ** 60n + 31n);
    expect(s(31)).toBe("s31");
    expect(meta(4)).toEqual({ color: "c4" });
    expect(meta(5)).toEqual({});
    expect(() => src.column("missing")).toThrow("field 'missing' does not exist in the collection schema");
  });

  // Proves takeBatch copies rows out in order and the result survives encode/decode and converts back to the same rows.
  it("takeBatch", () => {
    const seg = new GrowingSegment(schema, 0, 2);
    for (let k = 0; k < 4; k++) seg.append(batchOf(k * 5, 5), BigInt(k + 1));
    const t = decodeBatch(encodeBatch(seg.takeBatch([19, 0, 7])));
    expect(t.rowCount).toBe(3);
    const fields = resolveOutputFields(schema, ["*"]);
    const got = batchRowsToObjects(schema, t, [0, 1, 2], fields);
    const want = batchRowsToObjects(schema, batchOf(0, 20), [19, 0, 7], fields);
    expect(got).toStrictEqual(want);
    expect(got[2]).toStrictEqual({
      id: 1007n,
      vec: new Float32Array([7, 8, -7]),
      n: 21,
      f: 1.75,
      b: false,
      big: 2n ** 60n + 7n,
      s: "s7",
      tags: null,
      color: "c7",
    });
    expect(() => seg.takeBatch([20])).toThrow(RangeError);
  });

  // Proves append validates the batch shape first and leaves the segment untouched on mismatch; memory grows with data.
  it("append checks and memory", () => {
    const seg = new GrowingSegment(schema, 0, 4);
    const m0 = seg.memoryBytes();
    seg.append(batchOf(0, 3), 1n);
    const bad = batchOf(3, 2);
    delete bad.columns.s;
    expect(() => seg.append(bad, 2n)).toThrow("append: batch has no column 's'");
    const bad2 = batchOf(3, 2);
    bad2.columns.vec = { kind: "vector", dim: 2, data: new Float32Array(4) };
    expect(() => seg.append(bad2, 2n)).toThrow("append: column 'vec' has dim 2 / length 4");
    expect(seg.rowCount).toBe(3);
    const m1 = seg.memoryBytes();
    expect(m1).toBeGreaterThan(m0);
    seg.append(batchOf(3, 100), 2n);
    expect(seg.memoryBytes()).toBeGreaterThan(m1 + 100 * 3 * 4);
  });
  // Proves staged rows are invisible until committed, commit in order, and survive a capacity and
  // chunk growth that happens while earlier rows are still staged (growth copies written rows, not visible ones).
  it("stages rows and commits them in order", () => {
    const seg = new GrowingSegment(schema, 7, 2, 16 * 3 * 4);
    seg.append(batchOf(0, 3), 1n);
    const a = seg.stage(batchOf(3, 3), 2n);
    const b = seg.stage(batchOf(6, 5), 2n); // capacity 8 -> 16 and the first vector chunk 8 -> 16 rows, rows 3..5 staged
    expect([a.firstRow, b.firstRow]).toEqual([3, 6]);
    expect(seg.rowCount).toBe(3);
    expect(seg.liveCount).toBe(3);
    expect(() => seg.takeBatch([3])).toThrow(RangeError);
    expect(() => seg.markDeleted(4, 3n)).toThrow(RangeError);
    expect(() => seg.commitStaged(12)).toThrow(RangeError);
    seg.commitStaged(6);
    expect(seg.rowCount).toBe(6);
    expect(() => seg.takeBatch([6])).toThrow(RangeError);
    seg.commitStaged(11);
    expect(seg.rowCount).toBe(11);
    const whole = new GrowingSegment(schema, 7);
    whole.append(batchOf(0, 11), 1n);
    const all = Array.from({ length: 11 }, (_, i) => i);
    const fields = resolveOutputFields(schema, ["*"]);
    expect(batchRowsToObjects(schema, seg.takeBatch(all), all, fields)).toStrictEqual(batchRowsToObjects(schema, whole.takeBatch(all), all, fields));
    const { invNorms } = seg.vectors("vec");
    for (let i = 0; i < 11; i++) expect(invNorms[i]).toBe(whole.vectors("vec").invNorms[i]);
    expect(seg.append(batchOf(11, 1), 3n).firstRow).toBe(11);
    expect(seg.rowCount).toBe(12);
  });
});
