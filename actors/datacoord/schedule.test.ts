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
  });

  // Without index definitions a flushed segment is ready at once (served by exact search).
  it("knows when a segment is ready to serve", () => {
    expect(segmentReady(coll([]), seg({}))).toBe(true);
    expect(segmentReady(coll([hnsw]), seg({}))).toBe(false);
  });
});

describe("compaction policy", () => {
  const p = { maxRows: 1000, deletedRatio: 0.2 };
  const s = (segmentId: number, rowCount: number, deleted = 0) =>
    ({ segmentId, rowCount, state: "Flushed", deltas: deleted ? [{ object: "d", walTo: 1, count: deleted }] : [] }) as unknown as SegmentRecord;

  // Small segments merge, smallest first, staying within the row limit.
  it("merges small segments", () => {
    expect(pickCompaction([s(1, 100), s(2, 300), s(3, 900), s(4, 200)], p)).toEqual([1, 4, 2]);
    expect(pickCompaction([s(1, 450), s(2, 480), s(3, 490)], p)).toEqual([1, 2]);
  });

  // A lone segment is rewritten when enough of it is deleted; a few deletes wait unless forced.
  it("purges deletes", () => {
    expect(pickCompaction([s(1, 800, 300), s(2, 900, 10)], p)).toEqual([1]);
    expect(pickCompaction([s(2, 900, 10)], p)).toEqual([]);
    expect(pickCompaction([s(2, 900, 10)], p, true)).toEqual([2]);
    expect(pickCompaction([s(5, 600)], p)).toEqual([]);
  });
});
