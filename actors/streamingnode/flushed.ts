/**
 * What a recovering shard needs of its flushed past: the checkpoint, and each
 * flushed segment's keys (from its stats object) minus the keys deleted since
 * (from its delta logs). Only segments the checkpoint covers count.
 */
import { metaKeys } from "../../schemas/names.ts";
import type { CollectionRecord } from "../../schemas/meta.ts";
import type { SegmentRecord, ShardCheckpoint } from "../../schemas/segment.ts";
import { decodeDeltaLog, decodeStats } from "../../engine/binlog.ts";
import type { BlobStore } from "../../runtime/blob.ts";
import type { MetaStore } from "../../runtime/meta.ts";
import { ChecksumMismatch } from "../../engine/binlog.ts";
import type { FlushedKeys } from "./shard.ts";

/** Flushed segments of one shard that the checkpoint covers (not dropped). */
export const committedSegments = async (meta: MetaStore, collectionId: number, shard: number): Promise<{ checkpoint: number; segments: SegmentRecord[] }> => {
  const ckpt = await meta.get<ShardCheckpoint>(metaKeys.checkpoint(collectionId, shard));
  const checkpoint = ckpt?.value.seq ?? 0;
  const segments: SegmentRecord[] = [];
  for (const key of await meta.keys(metaKeys.segmentsOf(collectionId))) {
    const r = await meta.get<SegmentRecord>(key);
    if (!r) continue;
    const s = r.value;
    if (s.shard !== shard || s.state === "Dropped" || s.walTo > checkpoint) continue;
    segments.push(s);
  }
  return { checkpoint, segments };
};

export const loadFlushedKeys = async (
  meta: MetaStore,
  blobs: BlobStore,
  rec: CollectionRecord,
  shard: number,
): Promise<{ checkpoint: number; segments: FlushedKeys[] }> => {
  const { checkpoint, segments } = await committedSegments(meta, rec.id, shard);
  const out: FlushedKeys[] = [];
  for (const s of segments) {
    const bytes = await blobs.get(s.objects.stats);
    if (!bytes) throw new ChecksumMismatch(s.objects.stats, "object missing");
    const stats = decodeStats(bytes, s.objects.stats);
    const deleted = [];
    for (const d of s.deltas) {
      if (d.walTo > checkpoint) continue;
      const db = await blobs.get(d.object);
      if (!db) throw new ChecksumMismatch(d.object, "object missing");
      for (const e of decodeDeltaLog(db, d.object)) deleted.push(e.pk);
    }
    out.push({ segmentId: s.segmentId, partitionId: s.partitionId, pks: stats.sortedPks, deleted });
  }
  return { checkpoint, segments: out };
};
