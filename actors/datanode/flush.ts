/**
 * A flush: rebuild the segments sealed at `walTo` from exactly the shard's WAL
 * range (walFrom, walTo], write them to the Object Store (binlogs + stats),
 * write delta logs for deletes in the range that hit older segments, record
 * everything in KV, and last advance the shard's checkpoint to walTo — the
 * commit point. Idempotent: a redelivered task redoes the same writes or,
 * once the checkpoint has passed walTo, nothing. A task whose range the
 * checkpoint has entered (a shard owner restarted and queued a longer range
 * than a flush still queued from before) is dropped: it can never apply.
 */
import { metaKeys, objectNames } from "../../schemas/names.ts";
import type { CollectionRecord } from "../../schemas/meta.ts";
import type { FlushTask, SegmentRecord, ShardCheckpoint } from "../../schemas/segment.ts";
import { concatBatches, decodeBatch, takeRows, type RowBatch } from "../../engine/columns.ts";
import { pkValues } from "../../engine/rows.ts";
import { encodeDeltaLog, encodeSegment, type DeltaEntry } from "../../engine/binlog.ts";
import type { BlobStore } from "../../runtime/blob.ts";
import type { MetaStore } from "../../runtime/meta.ts";
import type { Wal } from "../../runtime/wal.ts";
import { unpackWalEntry, type Pk, type WalEntry, type WalOp } from "../streamingnode/protocol.ts";
import { liveSegmentFor } from "./compact.ts";

export interface FlushDeps {
  readonly meta: MetaStore;
  readonly blobs: BlobStore;
  readonly wal: Wal;
  readonly walSubject: (collectionId: number, shard: number) => string;
  readonly collection: (id: number) => Promise<CollectionRecord | undefined>;
}

export type FlushOutcome = "done" | "already-done" | "not-ready" | "superseded" | "collection-gone";

class SegmentBuilder {
  readonly batches: RowBatch[] = [];
  readonly ts: bigint[] = [];
  readonly rowOfPk = new Map<Pk, number>();
  readonly deleted = new Set<number>();
  rows = 0;
  constructor(readonly partitionId: number) {}

  append(batch: RowBatch, pks: readonly Pk[], ts: bigint) {
    this.batches.push(batch);
    for (let i = 0; i < batch.rowCount; i++) {
      const old = this.rowOfPk.get(pks[i]!);
      if (old !== undefined) this.deleted.add(old);
      this.rowOfPk.set(pks[i]!, this.rows + i);
      this.ts.push(ts);
    }
    this.rows += batch.rowCount;
  }

  delete(pk: Pk): boolean {
    const row = this.rowOfPk.get(pk);
    if (row === undefined) return false;
    this.deleted.add(row);
    this.rowOfPk.delete(pk);
    return true;
  }
}

export const runFlush = async (task: FlushTask, deps: FlushDeps): Promise<FlushOutcome> => {
  const rec = await deps.collection(task.collectionId);
  if (!rec) return "collection-gone";
  const ckptKey = metaKeys.checkpoint(task.collectionId, task.shard);
  const ckpt = (await deps.meta.get<ShardCheckpoint>(ckptKey))?.value.seq ?? 0;
  if (ckpt >= task.walTo) return "already-done";
  if (ckpt < task.walFrom - 1) return "not-ready";
  // The checkpoint is inside the range: a flush queued before the shard owner restarted committed
  // part of it. This task can never apply; the owner queues the rest from the new checkpoint.
  if (ckpt > task.walFrom - 1) return "superseded";

  const builders = new Map<number, SegmentBuilder>();
  for (const s of task.segments) builders.set(s.segmentId, new SegmentBuilder(s.partitionId));
  const deltas = new Map<number, DeltaEntry[]>();
  let maxTs = 0n;
  const applyOps = (ops: readonly WalOp[], ts: bigint) => {
    if (ts > maxTs) maxTs = ts;
    for (const op of ops) {
      if (op.op === "insert") {
        const b = builders.get(op.segmentId);
        if (!b) continue; // a partition dropped mid-range, or a segment not part of this flush
        const batch = decodeBatch(op.batch);
        b.append(batch, pkValues(rec.schema, batch), ts);
      } else if (op.op === "delete") {
        op.pks.forEach((pk, i) => {
          const seg = op.segs[i]!;
          const b = builders.get(seg);
          if (b) b.delete(pk);
          else if (seg >= 0) {
            const l = deltas.get(seg) ?? [];
            l.push({ pk, ts });
            deltas.set(seg, l);
          }
        });
      }
    }
  };
  const parts = new Map<string, WalEntry[]>();
  await deps.wal.read(deps.walSubject(task.collectionId, task.shard), task.walFrom, task.walTo, (_seq, bytes) => {
    const e = unpackWalEntry(bytes);
    if (!e.part) return applyOps(e.ops, e.ts);
    const l = parts.get(e.part.txn) ?? [];
    l.push(e);
    parts.set(e.part.txn, l);
    if (l.length === e.part.count) {
      parts.delete(e.part.txn);
      l.sort((a, b) => a.part!.index - b.part!.index);
      applyOps(
        l.flatMap((x) => x.ops),
        e.ts,
      );
    }
  });

  // Segments: only rows still live at walTo are stored.
  const now = Date.now();
  const records: SegmentRecord[] = [];
  for (const [segmentId, b] of builders) {
    const live: number[] = [];
    for (let r = 0; r < b.rows; r++) if (!b.deleted.has(r)) live.push(r);
    if (live.length === 0) continue;
    const all = concatBatches(rec.schema, b.batches);
    const batch = live.length === b.rows ? all : takeRows(all, live);
    const insertTs = BigUint64Array.from(live.map((r) => b.ts[r]!));
    const { fieldLogs, stats, segmentStats } = encodeSegment(rec.schema, batch, insertTs);
    const fields: Record<number, string> = {};
    for (const [fieldId, bytes] of fieldLogs) {
      const name = objectNames.insertLog(rec.id, b.partitionId, segmentId, fieldId);
      await deps.blobs.put(name, bytes);
      fields[fieldId] = name;
    }
    const statsName = objectNames.stats(rec.id, b.partitionId, segmentId);
    await deps.blobs.put(statsName, stats);
    let segMaxTs = 0n;
    for (const t of insertTs) if (t > segMaxTs) segMaxTs = t;
    records.push({
      segmentId,
      collectionId: rec.id,
      partitionId: b.partitionId,
      shard: task.shard,
      state: "Flushed",
      rowCount: live.length,
      sizeBytes: segmentStats.sizeBytes,
      walFrom: task.walFrom,
      walTo: task.walTo,
      maxTs: segMaxTs,
      objects: { fields, stats: statsName },
      deltas: [],
      indexes: {},
      createdAtMs: now,
    });
  }
  for (const r of records) await deps.meta.mutate<SegmentRecord>(metaKeys.segment(rec.id, r.segmentId), () => r);

  // Delta logs for older segments, recorded on their records. A segment compacted away since the
  // delete was logged passes its deletes on to the segment that holds its rows now.
  for (const [segmentId, entries] of deltas) {
    const bytes = encodeDeltaLog(entries);
    let appended = false;
    const seg = (await deps.meta.get<SegmentRecord>(metaKeys.segment(rec.id, segmentId)))?.value;
    if (seg && seg.state !== "Dropped") {
      const object = objectNames.deltaLog(rec.id, seg.partitionId, segmentId, BigInt(task.walTo));
      await deps.blobs.put(object, bytes);
      // CAS against the compaction's Dropped mark: either this lands first (and the compaction copies
      // it to its result) or it sees Dropped and goes to the result itself.
      await deps.meta.mutate<SegmentRecord>(metaKeys.segment(rec.id, segmentId), (cur) => {
        if (!cur || cur.state === "Dropped") return undefined;
        appended = true;
        return cur.deltas.some((d) => d.object === object) ? undefined : { ...cur, deltas: [...cur.deltas, { object, walTo: task.walTo, count: entries.length }] };
      });
    }
    if (appended) continue;
    const live = await liveSegmentFor(deps.meta, rec.id, segmentId);
    if (!live) continue; // dropped with its partition or collection: nothing left to delete from
    const object = objectNames.deltaLogFrom(rec.id, live.partitionId, live.segmentId, task.walTo, segmentId);
    await deps.blobs.put(object, bytes);
    await deps.meta.mutate<SegmentRecord>(metaKeys.segment(rec.id, live.segmentId), (cur) =>
      !cur || cur.deltas.some((d) => d.object === object) ? undefined : { ...cur, deltas: [...cur.deltas, { object, walTo: task.walTo, count: entries.length }] },
    );
  }

  // Commit point.
  await deps.meta.mutate<ShardCheckpoint>(ckptKey, (cur) =>
    cur && cur.seq >= task.walTo
      ? undefined
      : { collectionId: rec.id, shard: task.shard, seq: task.walTo, ts: maxTs > (cur?.ts ?? 0n) ? maxTs : (cur?.ts ?? 0n), updatedAtMs: Date.now() },
  );
  return "done";
};
