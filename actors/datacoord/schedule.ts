/**
 * Which index builds a flushed segment still needs: one per index definition
 * of the collection whose field the segment has no index for yet. Pure.
 */
import type { IndexDefinition } from "../../schemas/collection.ts";
import type { CollectionRecord } from "../../schemas/meta.ts";
import type { SegmentRecord } from "../../schemas/segment.ts";

export const indexesToBuild = (coll: CollectionRecord, seg: SegmentRecord): IndexDefinition[] => {
  if (seg.state === "Dropped" || seg.rowCount === 0) return [];
  return coll.indexes.filter((def) => {
    const have = seg.indexes[def.fieldName];
    return !have || have.indexName !== def.indexName || have.indexType !== def.indexType;
  });
};

/** A segment is ready to be served by a query node once every defined index is built. */
export const segmentReady = (coll: CollectionRecord, seg: SegmentRecord): boolean =>
  seg.state !== "Dropped" && indexesToBuild(coll, seg).length === 0;

export interface CompactionPolicy {
  /** Segments below half of this many rows are "small"; merges stay within it. */
  readonly maxRows: number;
  /** Rewrite a segment alone once this share of its rows is deleted. */
  readonly deletedRatio: number;
}

export const DEFAULT_COMPACTION: CompactionPolicy = { maxRows: 200_000, deletedRatio: 0.2 };

const deletedRows = (s: SegmentRecord) => s.deltas.reduce((n, d) => n + d.count, 0);

/**
 * Which segments of one shard+partition to compact next (none, one to purge
 * deletes from, or several small ones to merge). `force` (collections/compact)
 * also rewrites any segment with deletes and merges any two small ones.
 * Segments already being compacted must not be passed in.
 */
export const pickCompaction = (segments: readonly SegmentRecord[], p: CompactionPolicy, force = false): number[] => {
  const live = segments.filter((s) => s.state !== "Dropped" && s.rowCount > 0);
  const small = live.filter((s) => s.rowCount - deletedRows(s) < p.maxRows / 2).sort((a, b) => a.rowCount - b.rowCount || a.segmentId - b.segmentId);
  if (small.length >= 2) {
    const pick: number[] = [];
    let rows = 0;
    for (const s of small) {
      const n = s.rowCount - deletedRows(s);
      if (pick.length >= 2 && rows + n > p.maxRows) break;
      pick.push(s.segmentId);
      rows += n;
    }
    if (pick.length >= 2) return pick;
  }
  const threshold = force ? 0 : p.deletedRatio;
  const dirty = live
    .filter((s) => deletedRows(s) > 0 && deletedRows(s) / s.rowCount >= threshold)
    .sort((a, b) => deletedRows(b) / b.rowCount - deletedRows(a) / a.rowCount || a.segmentId - b.segmentId);
  return dirty.length > 0 ? [dirty[0]!.segmentId] : [];
};
