/**
 * The serving-view planner: pure logic, no I/O. Given what the meta KV says
 * about one collection (load record, segments, shard checkpoints, index
 * definitions) and which query nodes are alive, compute the next serving view.
 *
 * Rules (each one keeps a row served exactly once or keeps assignments calm):
 * - A segment is *servable* when the collection is loaded (and its partition
 *   is selected), the segment is Flushed or Indexed, and its shard's
 *   checkpoint has reached its `walTo` (the commit point). It is *ready* to
 *   enter the view when, besides, every vector field with an index definition
 *   has its index built. An entry stays in the view while servable (so an
 *   index defined on a loaded collection does not unserve it).
 * - Existing assignments stay where they are; only segments of a node whose
 *   heartbeat vanished move (back to `loading`). New segments go to the least
 *   loaded live node, by rows across every collection.
 * - Compaction: a source segment (named in a ready segment's `compactedFrom`)
 *   is never added to the view; one already in it stays while it is serving and
 *   its replacement is not, and leaves once the replacement is serving. A
 *   Dropped segment nobody replaces leaves at once.
 * - The version goes up by one on every change; an unchanged view is not
 *   rewritten.
 */
import type { LoadRecord, SegmentRecord, ServingView, ViewSegment } from "../../schemas/segment.ts";

export interface PlanInput {
  readonly collectionId: number;
  /** Load record; undefined = never loaded. */
  readonly load: LoadRecord | undefined;
  /** False once the collection record is gone (dropped): nothing is served. */
  readonly collectionExists: boolean;
  /** Partitions the collection still has; undefined = not known (no filtering on existence). */
  readonly partitionIds?: readonly number[];
  /** Vector fields with an index definition: a segment is ready only once each has its index. */
  readonly indexedFields: readonly string[];
  readonly segments: ReadonlyMap<number, SegmentRecord>;
  /** Checkpoint seq per shard (absent = 0). */
  readonly checkpoints: ReadonlyMap<number, number>;
  /** Query nodes with a live heartbeat. */
  readonly liveNodes: readonly string[];
  /** Rows already assigned to each node by other collections' views. */
  readonly otherLoad?: ReadonlyMap<string, number>;
}

export const isLoaded = (input: PlanInput): boolean => input.collectionExists && input.load?.loaded === true;

const partitionSelected = (input: PlanInput, partitionId: number): boolean => {
  const wanted = input.load?.partitionIds ?? [];
  if (wanted.length > 0 && !wanted.includes(partitionId)) return false;
  if (input.partitionIds !== undefined && !input.partitionIds.includes(partitionId)) return false;
  return true;
};

/** May be served: loaded, selected, committed, not dropped (an entry already in the view stays while this holds). */
export const isServable = (input: PlanInput, seg: SegmentRecord): boolean => {
  if (!isLoaded(input)) return false;
  if (seg.state !== "Flushed" && seg.state !== "Indexed") return false;
  if (!partitionSelected(input, seg.partitionId)) return false;
  return seg.walTo <= (input.checkpoints.get(seg.shard) ?? 0);
};

/**
 * Ready to be added to the view: servable, and indexed for every vector field
 * with an index definition. (An index defined later does not pull segments
 * already served out of the view: their nodes add the index when it is built.)
 */
export const isReady = (input: PlanInput, seg: SegmentRecord): boolean =>
  isServable(input, seg) && input.indexedFields.every((f) => seg.indexes[f] !== undefined);

/** Segments that replace each source segment (not Dropped ones), ready or not. */
const replacementsOf = (segments: ReadonlyMap<number, SegmentRecord>): Map<number, SegmentRecord[]> => {
  const out = new Map<number, SegmentRecord[]>();
  for (const s of segments.values()) {
    if (s.state === "Dropped" || !s.compactedFrom) continue;
    for (const src of s.compactedFrom) {
      const l = out.get(src) ?? [];
      l.push(s);
      out.set(src, l);
    }
  }
  return out;
};

const sameEntry = (a: ViewSegment, b: ViewSegment): boolean =>
  a.node === b.node &&
  a.state === b.state &&
  a.servingSince === b.servingSince &&
  a.rowCount === b.rowCount &&
  a.shard === b.shard &&
  a.partitionId === b.partitionId;

const sameSegments = (a: Readonly<Record<number, ViewSegment>>, b: Readonly<Record<number, ViewSegment>>): boolean => {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    const x = a[Number(k)]!;
    const y = b[Number(k)];
    if (!y || !sameEntry(x, y)) return false;
  }
  return true;
};

/** Rows per node in a set of view entries. */
export const rowsByNode = (segments: Readonly<Record<number, ViewSegment>>): Map<string, number> => {
  const out = new Map<string, number>();
  for (const e of Object.values(segments)) out.set(e.node, (out.get(e.node) ?? 0) + e.rowCount);
  return out;
};

/**
 * The next view of one collection, or undefined when `current` is already
 * right (so the caller writes nothing).
 */
export const planView = (current: ServingView | undefined, input: PlanInput): ServingView | undefined => {
  const now: Readonly<Record<number, ViewSegment>> = current?.segments ?? {};
  const live = new Set(input.liveNodes);
  const next: Record<number, ViewSegment> = {};
  const replacements = replacementsOf(input.segments);
  const servingLive = (id: number): boolean => {
    const e = now[id];
    return e !== undefined && e.state === "serving" && live.has(e.node);
  };
  const replacedBy = (id: number) => replacements.get(id) ?? [];
  const loaded = isLoaded(input);

  // Load per node: other collections plus what this view keeps.
  const load = new Map<string, number>();
  for (const n of input.liveNodes) load.set(n, input.otherLoad?.get(n) ?? 0);
  const leastLoaded = (): string | undefined => {
    let best: string | undefined;
    let bestRows = Infinity;
    for (const n of [...live].sort()) {
      const r = load.get(n) ?? 0;
      if (r < bestRows) {
        best = n;
        bestRows = r;
      }
    }
    return best;
  };
  const unassigned: SegmentRecord[] = [];

  // 1. Existing entries: keep, move off dead nodes, or retire.
  if (loaded) {
    for (const [key, e] of Object.entries(now)) {
      const id = Number(key);
      const seg = input.segments.get(id);
      if (seg && isServable(input, seg)) {
        // Superseded: its compaction result serves the same rows now.
        if (replacedBy(id).some((r) => servingLive(r.segmentId))) continue;
        const entry: ViewSegment = { ...e, rowCount: seg.rowCount, shard: seg.shard, partitionId: seg.partitionId };
        if (live.has(e.node)) {
          next[id] = entry;
          load.set(e.node, (load.get(e.node) ?? 0) + seg.rowCount);
        } else unassigned.push(seg);
        continue;
      }
      // Not ready. A compaction source keeps serving until its replacement does.
      if (
        seg?.state === "Dropped" &&
        partitionSelected(input, seg.partitionId) &&
        servingLive(id) &&
        replacedBy(id).length > 0 &&
        !replacedBy(id).some((r) => servingLive(r.segmentId))
      ) {
        next[id] = e;
        load.set(e.node, (load.get(e.node) ?? 0) + e.rowCount);
      }
    }
  }

  // 2. Ready segments not in the view (and not replaced by a ready segment) get a node.
  if (loaded) {
    for (const seg of input.segments.values()) {
      if (next[seg.segmentId] !== undefined || !isReady(input, seg)) continue;
      if (unassigned.includes(seg)) continue;
      if (now[seg.segmentId] !== undefined) continue; // dropped from the view above on purpose (superseded)
      if (replacedBy(seg.segmentId).some((r) => isReady(input, r))) continue;
      unassigned.push(seg);
    }
  }
  // Biggest first spreads rows more evenly; ids break ties so the plan is deterministic.
  unassigned.sort((a, b) => b.rowCount - a.rowCount || a.segmentId - b.segmentId);
  for (const seg of unassigned) {
    const node = leastLoaded();
    if (node === undefined) break; // no live query node: stays unassigned
    next[seg.segmentId] = {
      node,
      state: "loading",
      rowCount: seg.rowCount,
      shard: seg.shard,
      partitionId: seg.partitionId,
      ...(seg.compactedFrom?.length ? { compactedFrom: seg.compactedFrom } : {}),
    };
    load.set(node, (load.get(node) ?? 0) + seg.rowCount);
  }

  if (current && sameSegments(now, next)) return undefined;
  if (!current && Object.keys(next).length === 0) return undefined;
  return { collectionId: input.collectionId, version: (current?.version ?? 0) + 1, segments: next };
};

export type LoadStateName = "LoadStateLoaded" | "LoadStateLoading" | "LoadStateNotLoad";

export interface LoadProgress {
  readonly state: LoadStateName;
  /** 0-100: rows servable now / rows of every ready segment. */
  readonly progress: number;
  readonly servingRows: number;
  readonly totalRows: number;
}

/**
 * Load progress of a collection. The target is the set of ready segments (and
 * servable ones already in the view) that no ready segment replaces; a target segment counts as served when it is
 * serving, or when it is a compaction result whose sources all still serve
 * (its rows are answered either way).
 */
export const loadProgress = (view: ServingView | undefined, input: PlanInput): LoadProgress => {
  if (!isLoaded(input)) return { state: "LoadStateNotLoad", progress: 0, servingRows: 0, totalRows: 0 };
  const segs = view?.segments ?? {};
  const replacements = replacementsOf(input.segments);
  const serving = (id: number) => segs[id]?.state === "serving";
  let totalRows = 0;
  let servingRows = 0;
  for (const seg of input.segments.values()) {
    if (!isReady(input, seg) && !(segs[seg.segmentId] !== undefined && isServable(input, seg))) continue;
    if ((replacements.get(seg.segmentId) ?? []).some((r) => isReady(input, r))) continue;
    totalRows += seg.rowCount;
    const covered =
      serving(seg.segmentId) ||
      (seg.compactedFrom !== undefined && seg.compactedFrom.length > 0 && seg.compactedFrom.every((src) => serving(src)));
    if (covered) servingRows += seg.rowCount;
  }
  const progress = totalRows === 0 ? 100 : Math.floor((100 * servingRows) / totalRows);
  return { state: servingRows === totalRows ? "LoadStateLoaded" : "LoadStateLoading", progress, servingRows, totalRows };
};
