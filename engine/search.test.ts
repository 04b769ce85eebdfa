import { describe, expect, it } from "vitest";
import { InvalidParameter } from "../schemas/errors.ts";
import { GrowingSegment } from "./growing.ts";
import { rowsToBatch } from "./rows.ts";
import { distance, mergeTopK, normalizeQuery, searchSegmentFlat, type Hit, type Metric } from "./search.ts";
import { fld, makeSchema, rng } from "./testkit.ts";

const DIM = 32;
const N = 2000;
const schema = makeSchema([fld("pk", "Int64", { isPrimary: true }), fld("v", "FloatVector", { dim: DIM }), fld("n", "Int32")]);

/** Seeded dataset as plain float32-exact number arrays (the reference never touches the engine's storage). */
const makeData = (seed: number, count: number): number[][] => {
  const r = rng(seed);
  return Array.from({ length: count }, () => Array.from({ length: DIM }, () => Math.fround(r() * 2 - 1)));
};
const pkOfRow = (i: number): bigint => BigInt(i * 7 + 3);

const naive = (metric: Metric, q: number[], b: number[]): number => {
  let s = 0;
  if (metric === "L2") {
    for (let j = 0; j < q.length; j++) s += (q[j]! - b[j]!) ** 2;
    return s;
  }
  for (let j = 0; j < q.length; j++) s += q[j]! * b[j]!;
  if (metric === "IP") return s;
  const nq = Math.sqrt(q.reduce((a, x) => a + x * x, 0));
  const nb = Math.sqrt(b.reduce((a, x) => a + x * x, 0));
  return s / (nq * nb);
};

/** Independent reference: score every eligible row, sort all, take k. */
const reference = (metric: Metric, data: number[][], q: number[], k: number, eligible: (i: number) => boolean) =>
  data
    .map((b, i) => ({ i, pk: pkOfRow(i), d: naive(metric, q, b) }))
    .filter((x) => eligible(x.i))
    .sort((a, b) => (a.d !== b.d ? (metric === "L2" ? a.d - b.d : b.d - a.d) : a.pk < b.pk ? -1 : 1))
    .slice(0, k);

const buildSegment = (data: number[][], chunk: number, ts: (c: number) => bigint = (c) => BigInt(c + 1)): GrowingSegment => {
  // Vectors in chunks of 128 rows: appends of `chunk` rows cross chunk boundaries, searches read across chunks.
  const seg = new GrowingSegment(schema, 0, 64, 128 * DIM * 4);
  for (let start = 0, c = 0; start < data.length; start += chunk, c++) {
    const rows = data.slice(start, start + chunk).map((v, k) => ({ pk: pkOfRow(start + k), v, n: start + k }));
    seg.append(rowsToBatch(schema, rows, { mode: "insert" }), ts(c));
  }
  return seg;
};

describe("searchSegmentFlat", () => {
  const data = makeData(42, N);
  const queries = makeData(7, 5);
  const seg = buildSegment(data, 300);
  for (let i = 0; i < N; i += 7) seg.markDeleted(i, 1000n);
  const nCol = seg.columnSource().column("n");
  const predicate = (row: number): boolean => (nCol(row) as number) % 3 !== 0;
  const eligible = (i: number): boolean => i % 7 !== 0 && i % 3 !== 0;

  for (const metric of ["L2", "IP", "COSINE"] as const) {
    // Proves exact top-k equals a naive sort-everything reference (pks exactly, distances to 1e-9), with deletes and a predicate.
    it(`matches the naive reference for ${metric}`, () => {
      for (const k of [1, 10, 57]) {
        const got = searchSegmentFlat({ segment: seg, tag: 3, field: "v", queries: queries.map((q) => new Float32Array(q)), metric, k, predicate });
        expect(got.length).toBe(queries.length);
        queries.forEach((q, qi) => {
          const want = reference(metric, data, q, k, eligible);
          expect(got[qi]!.map((h) => h.pk)).toEqual(want.map((w) => w.pk));
          expect(got[qi]!.map((h) => h.row)).toEqual(want.map((w) => w.i));
          got[qi]!.forEach((h, j) => {
            expect(h.distance).toBeCloseTo(want[j]!.d, 9);
            expect(h.segment).toBe(3);
          });
        });
      }
    });
  }

  // Proves without a predicate only deleted rows are skipped, and k larger than the live rows returns all of them in order.
  it("no predicate, k > rows", () => {
    const small = buildSegment(data.slice(0, 40), 40);
    small.markDeleted(5, 9n);
    const got = searchSegmentFlat({ segment: small, tag: 0, field: "v", queries: [new Float32Array(queries[0]!)], metric: "L2", k: 100 })[0]!;
    const want = reference("L2", data.slice(0, 40), queries[0]!, 100, (i) => i !== 5);
    expect(got.length).toBe(39);
    expect(got.map((h) => h.pk)).toEqual(want.map((w) => w.pk));
  });

  // Proves MVCC: maxTs hides rows inserted later and keeps rows deleted later, on both the monotonic and non-monotonic paths.
  it("maxTs", () => {
    for (const tsOf of [(c: number) => BigInt(10 * (c + 1)), (c: number) => BigInt(10 * (4 - c))]) {
      const s = buildSegment(data.slice(0, 40), 10, tsOf); // 4 chunks of 10 rows
      s.markDeleted(3, 25n);
      s.markDeleted(4, 1000n);
      const visible = (i: number, ts: bigint) => tsOf(Math.floor(i / 10)) <= ts && !(i === 3 && ts >= 25n);
      for (const ts of [5n, 20n, 25n, 40n]) {
        const got = searchSegmentFlat({ segment: s, tag: 0, field: "v", queries: [new Float32Array(queries[1]!)], metric: "IP", k: 40, maxTs: ts })[0]!;
        const want = reference("IP", data.slice(0, 40), queries[1]!, 40, (i) => visible(i, ts));
        expect(got.map((h) => h.row)).toEqual(want.map((w) => w.i));
      }
      // Without maxTs every deleted row is skipped.
      const all = searchSegmentFlat({ segment: s, tag: 0, field: "v", queries: [new Float32Array(queries[1]!)], metric: "IP", k: 40 })[0]!;
      expect(all.map((h) => h.row).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i).filter((i) => i !== 3 && i !== 4));
    }
  });

  // Proves equal distances are ordered by pk ascending (VarChar pks), including when the heap is full.
  it("ties by pk", () => {
    const s2 = makeSchema([fld("id", "VarChar", { isPrimary: true, maxLength: 4 }), fld("v", "FloatVector", { dim: 2 })]);
    const seg2 = new GrowingSegment(s2, 0);
    const ids = ["d", "b", "e", "a", "c"];
    seg2.append(rowsToBatch(s2, ids.map((id) => ({ id, v: [1, 1] })), { mode: "insert" }), 1n);
    for (const metric of ["L2", "IP", "COSINE"] as const) {
      const got = searchSegmentFlat({ segment: seg2, tag: 0, field: "v", queries: [new Float32Array([1, 0])], metric, k: 3 })[0]!;
      expect(got.map((h) => h.pk)).toEqual(["a", "b", "c"]);
    }
  });

  // Proves argument checks: a wrong query dim is InvalidParameter; k = 0 gives empty lists.
  it("argument checks", () => {
    expect(() => searchSegmentFlat({ segment: seg, tag: 0, field: "v", queries: [new Float32Array(3)], metric: "L2", k: 1 })).toThrow(InvalidParameter);
    expect(searchSegmentFlat({ segment: seg, tag: 0, field: "v", queries: [new Float32Array(DIM)], metric: "L2", k: 0 })).toEqual([[]]);
    expect(() => searchSegmentFlat({ segment: seg, tag: 0, field: "n", queries: [], metric: "L2", k: 1 })).toThrow(InvalidParameter);
  });
});

describe("distance", () => {
  // Proves the three metric formulas on a hand-computed example.
  it("formulas", () => {
    const a = new Float32Array([9, 1, 2, 3, 4, 5]);
    const b = new Float32Array([2, 0, 1, -1, 7]);
    expect(distance("L2", a, 1, b, 0, 5)).toBe(1 + 4 + 4 + 25 + 4);
    expect(distance("IP", a, 1, b, 0, 5)).toBe(2 + 0 + 3 - 4 + 35);
    expect(distance("COSINE", a, 1, b, 0, 5)).toBeCloseTo(36 / (Math.sqrt(55) * Math.sqrt(55)), 12);
    expect(distance("COSINE", new Float32Array(3), 0, new Float32Array([1, 2, 3]), 0, 3)).toBe(0);
    const n = normalizeQuery(new Float32Array([3, 4]));
    expect(Array.from(n)).toEqual([Math.fround(0.6), Math.fround(0.8)]);
  });
});

describe("mergeTopK", () => {
  const h = (pk: bigint | string, distance: number, segment = 0): Hit => ({ pk, distance, segment, row: 0 });

  // Proves L2 merge is ascending, keeps the best copy of a duplicated pk, breaks ties by pk, and stops at k.
  it("L2 with overlapping pks", () => {
    const lists = [
      [h(1n, 0.5, 1), h(2n, 1.0, 1), h(3n, 2, 1)],
      [h(2n, 0.7, 2), h(4n, 1.0, 2), h(5n, 1.5, 2)],
      [],
      [h(0n, 1.0, 3)],
    ];
    const got = mergeTopK(lists, "L2", 5);
    expect(got.map((x) => [x.pk, x.distance, x.segment])).toEqual([
      [1n, 0.5, 1],
      [2n, 0.7, 2],
      [0n, 1.0, 3],
      [4n, 1.0, 2],
      [5n, 1.5, 2],
    ]);
    expect(mergeTopK(lists, "L2", 2).map((x) => x.pk)).toEqual([1n, 2n]);
    expect(mergeTopK(lists, "L2", 100).map((x) => x.pk)).toEqual([1n, 2n, 0n, 4n, 5n, 3n]);
    expect(mergeTopK(lists, "L2", 0)).toEqual([]);
    expect(mergeTopK([], "L2", 3)).toEqual([]);
  });

  // Proves IP/COSINE merge is descending with the same duplicate and tie rules (string pks).
  it("IP descending", () => {
    const lists = [
      [h("x", 0.9), h("b", 0.5), h("a", 0.1)],
      [h("a", 0.8), h("c", 0.5), h("x", 0.2)],
    ];
    for (const metric of ["IP", "COSINE"] as const) {
      expect(mergeTopK(lists, metric, 10).map((x) => [x.pk, x.distance])).toEqual([
        ["x", 0.9],
        ["a", 0.8],
        ["b", 0.5],
        ["c", 0.5],
      ]);
    }
  });
});
