/**
 * A compaction: merge sealed segments of one shard+partition into one,
 * leaving out rows deleted up to the shard's checkpoint C at the start. The
 * result's `walTo` is C: deletes after C (in the WAL, or in delta logs written
 * later for the sources) still apply to it — query nodes map a delete that
 * names a source onto its replacement, and flushes redirect delta logs to it.
 *
 * Order (each step idempotent, so a redelivered task converges):
 *   1. write the result's objects and record (state Flushed, compactedFrom);
 *   2. mark the sources Dropped (query nodes keep serving them until the
 *      result serves: the serving view swaps them in one write);
 *   3. copy delta logs the sources got after C onto the result.
 */
import { metaKeys, objectNames } from "../../schemas/names.ts";
import type { CollectionRecord } from "../../schemas/meta.ts";
import type { CompactTask, SegmentRecord, ShardCheckpoint } from "../../schemas/segment.ts";
import { concatBatches, takeRows, type RowBatch } from "../../engine/columns.ts";
import { ChecksumMismatch, decodeDeltaLog, decodeSegment, encodeSegment } from "../../engine/binlog.ts";
import { pkValues } from "../../engine/rows.ts";
import type { BlobStore } from "../../runtime/blob.ts";
import type { MetaStore } from "../../runtime/meta.ts";
import type { Pk } from "../streamingnode/protocol.ts";

export interface CompactDeps {
  readonly meta: MetaStore;
  readonly blobs: BlobStore;
  readonly collection: (id: number) => Promise<CollectionRecord | undefined>;
}

export type CompactOutcome = "done" | "stale" | "collection-gone";

const mustGet = async (blobs: BlobStore, name: string): Promise<Uint8Array> => {
  const b = await blobs.get(name);
  if (!b) throw new ChecksumMismatch(name, "object missing");
  return b;
};

export const runCompact = async (task: CompactTask, deps: CompactDeps): Promise<CompactOutcome> => {
  const rec = await deps.collection(task.collectionId);
  if (!rec) return "collection-gone";
  const targetKey = metaKeys.segment(rec.id, task.targetSegmentId);
  let target = (await deps.meta.get<SegmentRecord>(targetKey))?.value;
  const sources: SegmentRecord[] = [];
  for (const id of task.segmentIds) {
    const s = (await deps.meta.get<SegmentRecord>(metaKeys.segment(rec.id, id)))?.value;
    if (!s) return "stale";
    // Dropped before we wrote the target: another compaction took it.
    if (s.state === "Dropped" && !target) return "stale";
    sources.push(s);
  }
  const checkpoint = target?.walTo ?? (await deps.meta.get<ShardCheckpoint>(metaKeys.checkpoint(rec.id, task.shard)))?.value.seq ?? 0;

  if (!target) {
    const batches: RowBatch[] = [];
    const ts: bigint[] = [];
    let maxTs = 0n;
    for (const s of sources) {
      const logs = new Map<number, Uint8Array>();
      for (const [fieldId, name] of Object.entries(s.objects.fields)) logs.set(Number(fieldId), await mustGet(deps.blobs, name));
      const names = new Map<number | "stats", string>([["stats", s.objects.stats], ...Object.entries(s.objects.fields).map(([k, v]) => [Number(k), v] as [number, string])]);
      const seg = decodeSegment(rec.schema, logs, await mustGet(deps.blobs, s.objects.stats), (o) => names.get(o) ?? `segment ${s.segmentId} object ${o}`);
      const deleted = new Set<Pk>();
      for (const d of s.deltas) if (d.walTo <= checkpoint) for (const e of decodeDeltaLog(await mustGet(deps.blobs, d.object), d.object)) deleted.add(e.pk);
      const pks = pkValues(rec.schema, seg.batch);
      const keep: number[] = [];
      for (let i = 0; i < pks.length; i++) if (!deleted.has(pks[i]!)) keep.push(i);
      batches.push(keep.length === pks.length ? seg.batch : takeRows(seg.batch, keep));
      for (const i of keep) {
        const t = seg.insertTs[i]!;
        ts.push(t);
        if (t > maxTs) maxTs = t;
      }
    }
    const rows = ts.length;
    if (rows > 0) {
      const batch = concatBatches(rec.schema, batches);
      const { fieldLogs, stats, segmentStats } = encodeSegment(rec.schema, batch, BigUint64Array.from(ts));
      const fields: Record<number, string> = {};
      for (const [fieldId, bytes] of fieldLogs) {
        const name = objectNames.insertLog(rec.id, task.partitionId, task.targetSegmentId, fieldId);
        await deps.blobs.put(name, bytes);
        fields[fieldId] = name;
      }
      const statsName = objectNames.stats(rec.id, task.partitionId, task.targetSegmentId);
      await deps.blobs.put(statsName, stats);
      target = {
        segmentId: task.targetSegmentId,
        collectionId: rec.id,
        partitionId: task.partitionId,
        shard: task.shard,
        state: "Flushed",
        rowCount: rows,
        sizeBytes: segmentStats.sizeBytes,
        walFrom: Math.min(...sources.map((s) => s.walFrom)),
        walTo: checkpoint,
        maxTs,
        objects: { fields, stats: statsName },
        deltas: [],
        indexes: {},
        compactedFrom: [...task.segmentIds],
        createdAtMs: Date.now(),
      };
      await deps.meta.mutate<SegmentRecord>(targetKey, (cur) => cur ?? target);
    }
  }

  // 2. Sources out (query nodes serve them until the target serves).
  const now = Date.now();
  for (const s of sources)
    await deps.meta.mutate<SegmentRecord>(metaKeys.segment(rec.id, s.segmentId), (cur) =>
      cur && cur.state !== "Dropped" ? { ...cur, state: "Dropped", droppedAtMs: now } : undefined,
    );

  // 3. Deletes the sources got after the checkpoint follow the rows to the target.
  if (target) {
    for (const s of sources) {
      const cur = (await deps.meta.get<SegmentRecord>(metaKeys.segment(rec.id, s.segmentId)))?.value;
      for (const d of cur?.deltas ?? []) {
        if (d.walTo <= checkpoint) continue;
        const object = objectNames.deltaLogFrom(rec.id, task.partitionId, task.targetSegmentId, d.walTo, s.segmentId);
        await deps.blobs.put(object, await mustGet(deps.blobs, d.object));
        await deps.meta.mutate<SegmentRecord>(targetKey, (t) =>
          !t || t.deltas.some((x) => x.object === object) ? undefined : { ...t, deltas: [...t.deltas, { object, walTo: d.walTo, count: d.count }] },
        );
      }
    }
  }
  return "done";
};

/** The segment that holds a segment's rows now: itself, or what compacted it (followed through chains). */
export const liveSegmentFor = async (meta: MetaStore, collectionId: number, segmentId: number): Promise<SegmentRecord | undefined> => {
  let id = segmentId;
  for (let hops = 0; hops < 16; hops++) {
    const s = (await meta.get<SegmentRecord>(metaKeys.segment(collectionId, id)))?.value;
    if (s && s.state !== "Dropped") return s;
    let next: number | undefined;
    for (const k of await meta.keys(metaKeys.segmentsOf(collectionId))) {
      const r = (await meta.get<SegmentRecord>(k))?.value;
      if (r?.compactedFrom?.includes(id)) next = r.segmentId;
    }
    if (next === undefined) return undefined;
    id = next;
  }
  return undefined;
};
