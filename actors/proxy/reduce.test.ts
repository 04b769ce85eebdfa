import { describe, expect, it } from "vitest";
import { bestPerGroup, fuse, mergeQueryPages, mergeSearchHits, normalizeScore, parseRanker } from "./reduce.ts";

const hit = (pk: bigint | string, distance: number) => ({ pk, distance, fields: {} });

describe("search reduce", () => {
  // L2 merges ascending across shards, then offset/limit cut the merged list.
  it("merges L2 ascending with offset", () => {
    const r = mergeSearchHits([[hit(1n, 0.1), hit(2n, 0.5)], [hit(3n, 0.2), hit(4n, 0.9)]], "L2", 1, 2);
    expect(r.map((h) => h.pk)).toEqual([3n, 2n]);
  });

  // IP and COSINE are similarities: the largest comes first; equal scores order by key.
  it("merges IP descending with ties by key", () => {
    const r = mergeSearchHits([[hit("b", 0.9), hit("c", 0.1)], [hit("a", 0.9)]], "IP", 0, 10);
    expect(r.map((h) => h.pk)).toEqual(["a", "b", "c"]);
  });

  // A key returned by two lists (e.g. during a handoff) appears once, at its best distance.
  it("never returns a key twice", () => {
    const r = mergeSearchHits([[hit(7n, 0.3)], [hit(7n, 0.1), hit(8n, 0.2)]], "L2", 0, 10);
    expect(r.map((h) => [h.pk, h.distance])).toEqual([
      [7n, 0.1],
      [8n, 0.2],
    ]);
  });
});

describe("query reduce", () => {
  // Pages from shards are merged by primary key, then offset/limit applied.
  it("merges by key and pages", () => {
    const r = mergeQueryPages(
      [
        { pks: [1n, 4n], rows: ["a", "d"] },
        { pks: [2n, 3n, 5n], rows: ["b", "c", "e"] },
      ],
      1,
      3,
    );
    expect(r.map((x) => x.row)).toEqual(["b", "c", "d"]);
  });
});

describe("grouping and hybrid rerank", () => {
  const h = (pk: bigint, distance: number, g?: unknown) => ({ pk, distance, fields: g === undefined ? {} : { g } });

  // Grouping keeps the first (best) hit of each group value, in order.
  it("keeps the best hit per group", () => {
    const r = bestPerGroup([h(1n, 0.1, "a"), h(2n, 0.2, "a"), h(3n, 0.3, 5n), h(4n, 0.4, "b"), h(5n, 0.5, 5n)], "g");
    expect(r.map((x) => x.pk)).toEqual([1n, 3n, 4n]);
  });

  // RRF adds 1/(k + rank) over lists: a key ranked well in both lists wins.
  it("fuses with RRF", () => {
    const a = [h(1n, 0.1), h(2n, 0.2), h(3n, 0.3)];
    const b = [h(2n, 0.9), h(3n, 0.8), h(1n, 0.1)];
    const r = fuse([{ hits: a, metric: "L2" }, { hits: b, metric: "IP" }], { strategy: "rrf", k: 60 });
    expect(r.map((x) => x.pk)).toEqual([2n, 1n, 3n]);
    expect(r[0]!.score).toBeCloseTo(1 / 62 + 1 / 61, 12);
  });

  // Weighted fusion normalizes each metric into [0, 1] (L2 small = good, IP large = good) and weighs it.
  it("fuses with weights", () => {
    const r = fuse(
      [
        { hits: [h(1n, 0), h(2n, 10)], metric: "L2" },
        { hits: [h(2n, 10), h(1n, -10)], metric: "IP" },
      ],
      { strategy: "weighted", weights: [0.9, 0.1] },
    );
    expect(r.map((x) => x.pk)).toEqual([1n, 2n]);
    expect(normalizeScore("L2", 0)).toBe(1);
    expect(normalizeScore("COSINE", 1)).toBe(1);
    expect(normalizeScore("IP", 0)).toBe(0.5);
  });

  // Bad rerank bodies are refused with 1100, not guessed.
  it("validates rerank parameters", () => {
    expect(parseRanker(undefined, 2)).toEqual({ strategy: "rrf", k: 60 });
    expect(() => parseRanker({ strategy: "weighted", params: { weights: [0.5] } }, 2)).toThrow(/2 numbers/);
    expect(() => parseRanker({ strategy: "magic" }, 2)).toThrow(/rrf/);
  });
});
