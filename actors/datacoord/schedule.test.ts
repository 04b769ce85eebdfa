import { describe, expect, it } from "vitest";
import { indexesToBuild, pickCompaction, segmentReady } from "./schedule.ts";
import type { CollectionRecord } from "../../schemas/meta.ts";
import type { SegmentRecord } from "../../schemas/segment.ts";

const coll = (indexes: CollectionRecord["indexes"]) => ({ id: 1, indexes }) as unknown as CollectionRecord;
const seg = (over: Partial<SegmentRecord>) => ({ segmentId: 7, collectionId: 1, state: "Flushed", rowCount: 10, indexes: {}, ...over }) as SegmentRecord;
const hnsw = { indexName: "v", fieldName: "v", indexType: "HNSW", metricType: "L2" as const, params: {} };

describe("index scheduling", () => {
  // A flushed segment needs each defined index it lacks; none when built, dropped or empty.
  it("lists missing index builds", () => {
    expect(indexesToBuild(coll([hnsw]), seg({}))).toEqual([hnsw]);
    const built = { v: { indexName: "v", fieldName: "v", indexType: "HNSW", metricType: "L2", params: {}, object: "o", sizeBytes: 1, builtAtMs: 1 } };
    expect(indexesToBuild(coll([hnsw]), seg({ indexes: built }))).toEqual([]);
    expect(indexesToBuild(coll([hnsw]), seg({ state: "Dropped" }))).toEqual([]);
    expect(indexesToBuild(coll([hnsw]), seg({ rowCount: 0 }))).toEqual([]);
    // A changed definition (another type) needs a rebuild.
    expect(indexesToBuild(coll([{ ...hnsw, indexType: "IVF_FLAT" }]), seg({ indexes: built }))).toHaveLength(1);
    // Dropped and created again under the same name with another metric or params: rebuilt too.
    expect(indexesToBuild(coll([{ ...hnsw, metricType: "COSINE" }]), seg({ indexes: built }))).toHaveLength(1);
    expect(indexesToBuild(coll([{ ...hnsw, params: { M: 32 } }]), seg({ indexes: built }))).toHaveLength(1);
    // The same params in another key order are the same definition.
    const withParams = { v: { ...built.v, params: { M: 16, efConstruction: 200 } } };
    expect(indexesToBuild(coll([{ ...hnsw, params: { efConstruction: 200, M: 16 } }]), seg({ indexes: withParams }))).toEqual([]);
  });

  // Without index definitions a flushed segment is ready at once (served by exact search).
  it("knows when a segment is ready to serve", () => {
    expect(segmentReady(coll([]), seg({}))).toBe(true);
    expect(segmentReady(coll([hnsw]), seg({}))).toBe(false);
  });
});

describe("compaction policy", () => {
  const p = { maxRows: 1000, maxBytes: 1_000_000, deletedRatio: 0.2, settleMs: 10_000, idleMs: 600_000 };
  const NOW = 1_000_000;
  const s = (segmentId: number, rowCount: number, deleted = 0, over: Partial<SegmentRecord> = {}) =>
    ({
      segmentId,
      rowCount,
      sizeBytes: rowCount * 100,
      createdAtMs: NOW - 60_000,
      state: "Flushed",
      deltas: deleted ? [{ object: "d", walTo: 1, count: deleted }] : [],
      ...over,
    }) as unknown as SegmentRecord;

  // Settled small segments merge, smallest first, staying within the row limit.
  it("merges small segments", () => {
    expect(pickCompaction([s(1, 100), s(2, 300), s(3, 900), s(4, 200)], p, false, NOW)).toEqual([1, 4, 2]);
    expect(pickCompaction([s(1, 450), s(2, 480), s(3, 490)], p, false, NOW)).toEqual([1, 2]);
  });

  // ... and within the byte limit: wide rows make fewer rows fill a merged segment.
  it("keeps merges within the byte limit", () => {
    const wide = (id: number, rows: number) => s(id, rows, 0, { sizeBytes: rows * 2000 });
    expect(pickCompaction([wide(1, 200), wide(2, 200), wide(3, 200)], p, false, NOW)).toEqual([1, 2]);
    // A segment over half the byte limit is not small, whatever its row count.
    expect(pickCompaction([wide(1, 300), wide(2, 100)], p, false, NOW)).toEqual([]);
  });

  // While segments keep arriving, merging waits (each new one would rewrite the same rows again);
  // it goes ahead once they settle, or at once when they fill a whole merged segment.
  it("waits for a shard's segments to settle", () => {
    const fresh = (id: number, rows: number) => s(id, rows, 0, { createdAtMs: NOW - 1_000 });
    expect(pickCompaction([s(1, 300), s(2, 300), fresh(3, 300)], p, false, NOW)).toEqual([]);
    expect(pickCompaction([s(1, 300), s(2, 300), fresh(3, 300)], p, false, NOW + 9_000)).toEqual([1, 2, 3]);
    expect(pickCompaction([s(1, 400), s(2, 400), fresh(3, 400)], p, false, NOW)).toEqual([1, 2]);
    // Forced (collections/compact): now.
    expect(pickCompaction([s(1, 300), fresh(2, 300)], p, true, NOW)).toEqual([1, 2]);
  });

  // Settled segments merge when the result is no longer small or at least doubles its largest part;
  // a tiny leftover is not worth rewriting a big segment for until they sat idle long.
  it("merges tiny leftovers only after the idle time", () => {
    expect(pickCompaction([s(1, 100), s(2, 100)], p, false, NOW)).toEqual([1, 2]);
    expect(pickCompaction([s(1, 400), s(2, 10)], p, false, NOW)).toEqual([]);
    expect(pickCompaction([s(1, 400), s(2, 10)], p, false, NOW + 600_000)).toEqual([2, 1]);
  });

  // A lone segment is rewritten when enough of it is deleted; a few deletes wait unless forced.
  it("purges deletes", () => {
    expect(pickCompaction([s(1, 800, 300), s(2, 900, 10)], p, false, NOW)).toEqual([1]);
    expect(pickCompaction([s(2, 900, 10)], p, false, NOW)).toEqual([]);
    expect(pickCompaction([s(2, 900, 10)], p, true, NOW)).toEqual([2]);
    expect(pickCompaction([s(5, 600)], p, false, NOW)).toEqual([]);
  });
});
