import { describe, expect, it } from "vitest";
import { mergeQueryPages, mergeSearchHits } from "./reduce.ts";

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
