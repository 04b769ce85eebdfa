import { describe, expect, it } from "vitest";
import { indexesToBuild, segmentReady } from "./schedule.ts";
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
