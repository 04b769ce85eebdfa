import { describe, expect, it } from "vitest";
import type { SegmentRecord, ServingView, ViewSegment } from "../../schemas/segment.ts";
import { isReady, loadProgress, planView, type PlanInput } from "./balance.ts";

const seg = (segmentId: number, over: Partial<SegmentRecord> = {}): SegmentRecord => ({
  segmentId,
  collectionId: 1,
  partitionId: 10,
  shard: 0,
  state: "Flushed",
  rowCount: 100,
  sizeBytes: 1000,
  walFrom: 1,
  walTo: 5,
  maxTs: 1n,
  objects: { fields: {}, stats: "s" },
  deltas: [],
  indexes: {},
  createdAtMs: 0,
  ...over,
});

const input = (segments: SegmentRecord[], over: Partial<PlanInput> = {}): PlanInput => ({
  collectionId: 1,
  load: { collectionId: 1, loaded: true, partitionIds: [], updatedAtMs: 0 },
  collectionExists: true,
  indexedFields: [],
  segments: new Map(segments.map((s) => [s.segmentId, s])),
  checkpoints: new Map([[0, 10]]),
  liveNodes: ["a", "b"],
  ...over,
});

const serve = (v: ServingView, id: number): ServingView => ({
  ...v,
  version: v.version + 1,
  segments: { ...v.segments, [id]: { ...v.segments[id]!, state: "serving", servingSince: v.version + 1 } },
});

const nodesOf = (v: ServingView) => Object.fromEntries(Object.entries(v.segments).map(([k, e]) => [k, (e as ViewSegment).node]));

describe("planView", () => {
  it("assigns ready segments to the least loaded node, biggest first, and starts them loading", () => {
    const v = planView(undefined, input([seg(1, { rowCount: 300 }), seg(2, { rowCount: 200 }), seg(3, { rowCount: 150 })]))!;
    expect(v.version).toBe(1);
    // 300 -> a, 200 -> b, 150 -> b (b has 200 < 300)
    expect(nodesOf(v)).toEqual({ 1: "a", 2: "b", 3: "b" });
    for (const e of Object.values(v.segments)) expect(e.state).toBe("loading");
  });

  it("counts rows other collections put on a node", () => {
    const v = planView(undefined, input([seg(1)], { otherLoad: new Map([["a", 1000]]) }))!;
    expect(nodesOf(v)).toEqual({ 1: "b" });
  });

  it("keeps existing assignments stable when nodes join and does not rewrite an unchanged view", () => {
    const v1 = planView(undefined, input([seg(1), seg(2)]))!;
    const v2 = serve(v1, 1);
    // A third, empty node joins: nothing moves.
    expect(planView(v2, input([seg(1), seg(2)], { liveNodes: ["a", "b", "c"] }))).toBeUndefined();
    // A new segment goes to the empty node.
    const v3 = planView(v2, input([seg(1), seg(2), seg(3)], { liveNodes: ["a", "b", "c"] }))!;
    expect(v3.version).toBe(v2.version + 1);
    expect(v3.segments[1]).toEqual(v2.segments[1]);
    expect(v3.segments[2]).toEqual(v2.segments[2]);
    expect(v3.segments[3]!.node).toBe("c");
  });

  it("reassigns the segments of a node whose heartbeat vanished, as loading", () => {
    let v = planView(undefined, input([seg(1), seg(2), seg(3, { rowCount: 50 })]))!;
    v = serve(serve(serve(v, 1), 2), 3);
    const before = nodesOf(v);
    const dead = before[1]!;
    const v2 = planView(v, input([seg(1), seg(2), seg(3, { rowCount: 50 })], { liveNodes: ["a", "b"].filter((n) => n !== dead) }))!;
    for (const e of Object.values(v2.segments)) expect(e.node).not.toBe(dead);
    for (const [id, e] of Object.entries(v2.segments)) {
      if (before[Number(id)] === dead) {
        expect(e.state).toBe("loading");
        expect(e.servingSince).toBeUndefined();
      } else expect(e).toEqual(v.segments[Number(id)]);
    }
  });

  it("leaves segments unassigned while no query node is alive", () => {
    expect(planView(undefined, input([seg(1)], { liveNodes: [] }))).toBeUndefined();
  });

  it("serves only committed, indexed, selected, not dropped segments", () => {
    const base = input([], { indexedFields: ["vec"] });
    const idx = { vec: { indexName: "i", fieldName: "vec", indexType: "HNSW", metricType: "L2", params: {}, object: "o", sizeBytes: 1, builtAtMs: 0 } };
    expect(isReady(base, seg(1, { indexes: idx }))).toBe(true);
    expect(isReady(base, seg(1))).toBe(false); // index not built yet
    expect(isReady(base, seg(1, { indexes: idx, walTo: 11 }))).toBe(false); // checkpoint at 10
    expect(isReady(base, seg(1, { indexes: idx, state: "Dropped" }))).toBe(false);
    expect(isReady({ ...base, load: { ...base.load!, partitionIds: [11] } }, seg(1, { indexes: idx }))).toBe(false);
    expect(isReady({ ...base, load: { ...base.load!, loaded: false } }, seg(1, { indexes: idx }))).toBe(false);
    expect(isReady({ ...base, collectionExists: false }, seg(1, { indexes: idx }))).toBe(false);
  });

  it("an index defined on a loaded collection keeps served segments in the view; new segments wait for their index", () => {
    const v = serve(planView(undefined, input([seg(1)]))!, 1);
    expect(planView(v, input([seg(1), seg(2)], { indexedFields: ["vec"] }))).toBeUndefined();
    expect(loadProgress(v, input([seg(1), seg(2)], { indexedFields: ["vec"] }))).toMatchObject({ state: "LoadStateLoaded", totalRows: 100 });
  });

  it("empties the view when the collection is released", () => {
    const v = serve(planView(undefined, input([seg(1)]))!, 1);
    const released = planView(v, input([seg(1)], { load: { collectionId: 1, loaded: false, partitionIds: [], updatedAtMs: 1 } }))!;
    expect(released.segments).toEqual({});
    expect(released.version).toBe(v.version + 1);
  });

  it("compaction: sources serve until the result serves, then leave; the result never coexists half-served", () => {
    // Sources 1 and 2 serving.
    let v = planView(undefined, input([seg(1), seg(2)]))!;
    v = serve(serve(v, 1), 2);
    // Compaction writes 3 (from 1, 2) and drops 1, 2; 3 is not indexed yet -> not ready.
    const compacted = [seg(1, { state: "Dropped" }), seg(2, { state: "Dropped" }), seg(3, { compactedFrom: [1, 2], rowCount: 180 })];
    const notReady = input(compacted, { indexedFields: ["vec"] });
    // 1 and 2 lack the index too, but they are Dropped sources still serving: they stay.
    expect(planView(v, notReady)).toBeUndefined();
    // 3 becomes ready: assigned loading, sources stay serving.
    const v2 = planView(v, input(compacted))!;
    expect(v2.segments[1]!.state).toBe("serving");
    expect(v2.segments[2]!.state).toBe("serving");
    expect(v2.segments[3]!.state).toBe("loading");
    expect(loadProgress(v2, input(compacted))).toMatchObject({ state: "LoadStateLoaded", progress: 100 });
    // Nothing changes until 3 serves.
    expect(planView(v2, input(compacted))).toBeUndefined();
    // 3 serves: the sources leave.
    const v3 = planView(serve(v2, 3), input(compacted))!;
    expect(Object.keys(v3.segments)).toEqual(["3"]);
    expect(v3.segments[3]!.state).toBe("serving");
  });

  it("compaction: a source not yet marked Dropped leaves once the result serves, and is never re-added", () => {
    let v = serve(planView(undefined, input([seg(1), seg(2)]))!, 1);
    v = serve(v, 2);
    const segs = [seg(1), seg(2), seg(3, { compactedFrom: [1, 2] })];
    const v2 = planView(v, input(segs))!;
    expect(v2.segments[3]!.state).toBe("loading");
    const v3 = planView(serve(v2, 3), input(segs))!;
    expect(Object.keys(v3.segments)).toEqual(["3"]);
    expect(planView(v3, input(segs))).toBeUndefined();
    // The result's node dies: the result is reassigned; the sources do not come back.
    const v4 = planView(v3, input(segs, { liveNodes: ["a", "b"].filter((n) => n !== v3.segments[3]!.node) }))!;
    expect(Object.keys(v4.segments)).toEqual(["3"]);
    expect(v4.segments[3]!.state).toBe("loading");
  });

  it("compaction: a fresh load serves the result, not its sources", () => {
    const v = planView(undefined, input([seg(1), seg(2), seg(3, { compactedFrom: [1, 2] })]))!;
    expect(Object.keys(v.segments)).toEqual(["3"]);
  });

  it("a Dropped segment nobody replaces leaves at once", () => {
    const v = serve(planView(undefined, input([seg(1)]))!, 1);
    expect(planView(v, input([seg(1, { state: "Dropped" })]))!.segments).toEqual({});
  });
});

describe("loadProgress", () => {
  it("reports rows serving over rows ready", () => {
    const segs = [seg(1, { rowCount: 300 }), seg(2, { rowCount: 100 }), seg(4, { walTo: 99 })];
    const v = planView(undefined, input(segs))!;
    expect(loadProgress(v, input(segs))).toEqual({ state: "LoadStateLoading", progress: 0, servingRows: 0, totalRows: 400 });
    expect(loadProgress(serve(v, 1), input(segs))).toEqual({ state: "LoadStateLoading", progress: 75, servingRows: 300, totalRows: 400 });
    expect(loadProgress(serve(serve(v, 1), 2), input(segs))).toEqual({ state: "LoadStateLoaded", progress: 100, servingRows: 400, totalRows: 400 });
    expect(loadProgress(v, input(segs, { load: undefined })).state).toBe("LoadStateNotLoad");
    expect(loadProgress(undefined, input([]))).toEqual({ state: "LoadStateLoaded", progress: 100, servingRows: 0, totalRows: 0 });
  });
});
