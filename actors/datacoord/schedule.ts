/**
 * Which index builds a flushed segment still needs: one per index definition
 * of the collection whose field the segment has no index for yet. Pure.
 */
import type { IndexDefinition } from "../../schemas/collection.ts";
import type { CollectionRecord } from "../../schemas/meta.ts";
import { canonicalIndexParams, COMPACT_MAX_BYTES, COMPACT_MAX_ROWS, indexBuiltAs, type SegmentRecord } from "../../schemas/segment.ts";

export const indexesToBuild = (coll: CollectionRecord, seg: SegmentRecord): IndexDefinition[] => {
  if (seg.state === "Dropped" || seg.rowCount === 0) return [];
  return coll.indexes.filter((def) => !indexBuiltAs(seg.indexes[def.fieldName], def));
};

/** One index definition as a string: a definition dropped and created again differently gets another. */
export const indexDefKey = (def: IndexDefinition): string =>
  `${def.fieldName}/${def.indexName}/${def.indexType}/${def.metricType}/${canonicalIndexParams(def.params)}`;

/** A segment is ready to be served by a query node once every defined index is built. */
export const segmentReady = (coll: CollectionRecord, seg: SegmentRecord): boolean =>
  seg.state !== "Dropped" && indexesToBuild(coll, seg).length === 0;

export interface CompactionPolicy {
  /** Segments below half of this many live rows are "small"; a merge stays within it. */
  readonly maxRows: number;
  /** ... and below half of this many bytes; a merge stays within it too. */
  readonly maxBytes: number;
  /** Rewrite a segment alone once this share of its rows is deleted. */
  readonly deletedRatio: number;
  /**
   * Small segments merge once no newer one has arrived for this long (while a shard is being
   * filled, merging each new segment in would rewrite the same rows again and again), unless
   * they already fill a whole merged segment...
   */
  readonly settleMs: number;
  /** ... and the merge must be worth it (see pickCompaction), unless they sat this long. */
  readonly idleMs: number;
}

/**
 * A search costs one graph walk per segment, so fewer, bigger segments answer faster (at 1M x 128,
 * five 200k-row HNSW graphs cost ~4x one graph of 1M at the same ef). Sealing stays small (growing
 * rows are searched by scan); merging makes them big. Sizes: the config's defaults.
 */
export const DEFAULT_COMPACTION: CompactionPolicy = {
  maxRows: COMPACT_MAX_ROWS,
  maxBytes: COMPACT_MAX_BYTES,
  deletedRatio: 0.2,
  settleMs: 30_000,
  idleMs: 10 * 60_000,
};

const deletedRows = (s: SegmentRecord) => s.deltas.reduce((n, d) => n + d.count, 0);

/**
 * Which segments of one shard+partition to compact next (none, one to purge
 * deletes from, or several small ones to merge). `force` (collections/compact)
 * also rewrites any segment with deletes and merges any two small ones at once.
 * Segments already being compacted must not be passed in.
 */
export const pickCompaction = (segments: readonly SegmentRecord[], p: CompactionPolicy, force = false, nowMs = Date.now()): number[] => {
  const live = segments.filter((s) => s.state !== "Dropped" && s.rowCount > 0);
  const liveRows = (s: SegmentRecord) => s.rowCount - deletedRows(s);
  const small = live
    .filter((s) => liveRows(s) < p.maxRows / 2 && s.sizeBytes < p.maxBytes / 2)
    .sort((a, b) => a.rowCount - b.rowCount || a.segmentId - b.segmentId);
  if (small.length >= 2) {
    const pick: SegmentRecord[] = [];
    let rows = 0;
    let bytes = 0;
    for (const s of small) {
      if (pick.length >= 2 && (rows + liveRows(s) > p.maxRows || bytes + s.sizeBytes > p.maxBytes)) break;
      pick.push(s);
      rows += liveRows(s);
      bytes += s.sizeBytes;
    }
    const newest = Math.max(...small.map((s) => s.createdAtMs));
    const full = small.reduce((n, s) => n + liveRows(s), 0) >= p.maxRows || small.reduce((n, s) => n + s.sizeBytes, 0) >= p.maxBytes;
    const settled = nowMs - newest >= p.settleMs;
    // Worth a rewrite: the result is no longer small, or it at least doubles its largest part (so a
    // row is rewritten O(log n) times as a shard grows, not once per new segment).
    const largest = Math.max(...pick.map(liveRows));
    const worth = rows >= p.maxRows / 2 || bytes >= p.maxBytes / 2 || largest <= rows - largest;
    if (pick.length >= 2 && (force || full || (settled && worth) || nowMs - newest >= p.idleMs)) return pick.map((s) => s.segmentId);
  }
  const threshold = force ? 0 : p.deletedRatio;
  const dirty = live
    .filter((s) => deletedRows(s) > 0 && deletedRows(s) / s.rowCount >= threshold)
    .sort((a, b) => deletedRows(b) / b.rowCount - deletedRows(a) / a.rowCount || a.segmentId - b.segmentId);
  return dirty.length > 0 ? [dirty[0]!.segmentId] : [];
};
