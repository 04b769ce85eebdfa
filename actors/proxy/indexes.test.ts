import { describe, expect, it } from "vitest";
import { indexProgress } from "./indexes.ts";
import type { SegmentRecord } from "../../schemas/segment.ts";

const def = { indexName: "vector", fieldName: "vector", indexType: "HNSW", metricType: "L2" as const, params: {} };
const built = { vector: { ...def, object: "o", sizeBytes: 1, builtAtMs: 1 } };
const seg = (segmentId: number, rowCount: number, over: Partial<SegmentRecord> = {}) => ({ segmentId, rowCount, indexes: {}, ...over }) as unknown as SegmentRecord;

describe("indexes/describe progress", () => {
  it("counts indexed and pending rows", () => {
    expect(indexProgress([seg(1, 100, { indexes: built }), seg(2, 50)], def)).toEqual({ indexedRows: 100, totalRows: 150, pendingRows: 50 });
  });

  // Created again under the same name with another metric: the old builds are pending again.
  it("does not count an index built for an earlier definition", () => {
    expect(indexProgress([seg(1, 100, { indexes: built })], { ...def, metricType: "COSINE" })).toEqual({ indexedRows: 0, totalRows: 100, pendingRows: 100 });
  });

  // Compaction: the result and its sources are both committed until the result serves. Each row is
  // counted once, as the result's: pending until the result's index is built.
  it("counts a compaction result's rows once", () => {
    const sources = [seg(1, 100, { indexes: built }), seg(2, 100, { indexes: built })];
    expect(indexProgress([...sources, seg(3, 190, { compactedFrom: [1, 2] })], def)).toEqual({ indexedRows: 0, totalRows: 190, pendingRows: 190 });
    expect(indexProgress([...sources, seg(3, 190, { compactedFrom: [1, 2], indexes: built })], def)).toEqual({ indexedRows: 190, totalRows: 190, pendingRows: 0 });
  });
});
