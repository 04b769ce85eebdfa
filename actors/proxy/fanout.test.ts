import { describe, expect, it } from "vitest";
import { planFromView, uncovered } from "./fanout.ts";
import type { SegmentRecord, ServingView } from "../../schemas/segment.ts";

const seg = (segmentId: number, over: Partial<SegmentRecord> = {}) => ({ segmentId, partitionId: 1, shard: 0, state: "Flushed", ...over }) as SegmentRecord;
const view: ServingView = {
  collectionId: 1,
  version: 3,
  segments: {
    10: { node: "a", state: "serving", servingSince: 2, rowCount: 5, shard: 0, partitionId: 1 },
    11: { node: "b", state: "loading", rowCount: 5, shard: 0, partitionId: 1 },
    12: { node: "a", state: "serving", servingSince: 3, rowCount: 5, shard: 0, partitionId: 2 },
  },
};

describe("read plans", () => {
  // Only serving segments are read from query nodes, grouped by node; partitions narrow the node lists.
  it("plans from the serving view", () => {
    const p = planFromView(view, [1]);
    expect(p.viewVersion).toBe(3);
    expect(p.servingSegments.sort()).toEqual([10, 12]);
    expect([...p.byNode]).toEqual([["a", [10]]]);
  });

  // A committed segment read from nowhere is reported; held by the shard or served counts as covered.
  it("finds segments no one read", () => {
    const plan = planFromView(view, undefined);
    expect(uncovered([seg(10), seg(11), seg(12, { partitionId: 2 })], plan, new Set(), undefined)).toEqual([11]);
    expect(uncovered([seg(10), seg(11)], plan, new Set([11]), undefined)).toEqual([]);
    // Partitions not read do not need covering.
    expect(uncovered([seg(11, { partitionId: 3 })], plan, new Set(), [1])).toEqual([]);
    // A compaction result whose sources are all served is covered by them.
    expect(uncovered([seg(20, { compactedFrom: [10, 12] })], plan, new Set(), undefined)).toEqual([]);
    expect(uncovered([seg(21, { compactedFrom: [10, 11] })], plan, new Set(), undefined)).toEqual([21]);
  });
});
