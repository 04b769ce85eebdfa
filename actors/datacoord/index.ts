/**
 * datacoord: schedules index builds for flushed segments, trims each shard's
 * WAL below its checkpoint, and collects the garbage of dropped collections
 * and segments. One active instance (the `datacoord` lease). Flushes are
 * queued by the shard owners themselves (they know when they seal).
 */
import { metaKeys, objectNames } from "../../schemas/names.ts";
import type { CollectionRecord } from "../../schemas/meta.ts";
import type { LoadRecord, SegmentRecord, ServingView, ShardCheckpoint } from "../../schemas/segment.ts";
import { ObjectStoreBlobs } from "../../runtime/blob.ts";
import { tryAcquireLease, type Lease } from "../../runtime/lease.ts";
import { log } from "../../runtime/log.ts";
import { publishTask } from "../../runtime/tasks.ts";
import type { NatsHandles, NatsvecConfig } from "../../runtime/services.ts";
import type { Storage } from "../../runtime/storage.ts";
import { indexesToBuild } from "./schedule.ts";

export interface DatacoordHandle {
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}

/** Dropped segments' objects are deleted this long after the drop (readers may still hold them). */
const GC_GRACE_MS = 60_000;

export const startDatacoord = (h: NatsHandles, storage: Storage, config: NatsvecConfig): DatacoordHandle => {
  const meta = storage.meta;
  const blobs = new ObjectStoreBlobs(storage.segments);
  const collections = new Map<number, CollectionRecord>();
  const collKeyToId = new Map<string, number>();
  const segments = new Map<string, SegmentRecord>();
  /** (segment, field) pairs already queued in this term, so a watch storm queues each once. */
  const queued = new Set<string>();
  const trimmedTo = new Map<string, number>();
  let lease: Lease | undefined;
  let stopped = false;
  const stops: (() => void)[] = [];
  let timer: NodeJS.Timeout | undefined;

  const scheduleIndexes = async (seg: SegmentRecord) => {
    const coll = collections.get(seg.collectionId);
    if (!coll || !lease || lease.lost) return;
    for (const def of indexesToBuild(coll, seg)) {
      const key = `${seg.segmentId}/${def.fieldName}/${def.indexName}`;
      if (queued.has(key)) continue;
      queued.add(key);
      await publishTask(h, { kind: "index", collectionId: seg.collectionId, segmentId: seg.segmentId, fieldName: def.fieldName, indexName: def.indexName }).catch(
        (e) => {
          queued.delete(key);
          log.error(`datacoord: could not queue index build of segment ${seg.segmentId}`, e);
        },
      );
    }
  };

  /** Trim a shard's WAL one flush behind its checkpoint: readers that follow it have a flush's time to catch up. */
  const trim = async (ck: ShardCheckpoint, previous: number | undefined) => {
    if (previous === undefined || previous <= 0) return;
    const subject = h.names.wal(ck.collectionId, ck.shard);
    if ((trimmedTo.get(subject) ?? 0) >= previous) return;
    await storage.wal.trim(subject, previous + 1);
    trimmedTo.set(subject, previous);
  };

  const collectGarbage = async () => {
    if (!lease || lease.lost) return;
    const now = Date.now();
    for (const [key, seg] of segments) {
      if (seg.state !== "Dropped" || !seg.droppedAtMs || now - seg.droppedAtMs < GC_GRACE_MS) continue;
      for (const name of await blobs.list(objectNames.segmentPrefix(seg.collectionId, seg.partitionId, seg.segmentId))) await blobs.delete(name);
      await meta.delete(key).catch(() => undefined);
    }
  };

  const dropCollectionData = async (collectionId: number) => {
    for (const name of await blobs.list(objectNames.collectionPrefix(collectionId))) await blobs.delete(name);
    for (const prefix of [metaKeys.segmentsOf(collectionId), metaKeys.checkpointsOf(collectionId)])
      for (const k of await meta.keys(prefix)) await meta.delete(k).catch(() => undefined);
    for (const k of [metaKeys.view(collectionId), metaKeys.load(collectionId)]) await meta.delete(k).catch(() => undefined);
    log.info(`datacoord: removed the data of dropped collection ${collectionId}`);
  };

  const becomeActive = async () => {
    const prevCkpt = new Map<string, number>();
    stops.push(
      await meta.watch<CollectionRecord>(metaKeys.collectionPrefix(), (k, v) => {
        if (v) {
          collKeyToId.set(k, v.id);
          const old = collections.get(v.id);
          collections.set(v.id, v);
          // A new index definition: build it for every flushed segment.
          if (old && JSON.stringify(old.indexes) !== JSON.stringify(v.indexes))
            for (const s of segments.values()) if (s.collectionId === v.id) void scheduleIndexes(s);
          return;
        }
        const id = collKeyToId.get(k);
        collKeyToId.delete(k);
        if (id === undefined || [...collKeyToId.values()].includes(id)) return; // renamed, not dropped
        collections.delete(id);
        void dropCollectionData(id).catch((e) => log.error(`datacoord: cleaning up collection ${id} failed`, e));
      }),
      await meta.watch<SegmentRecord>(metaKeys.segmentPrefix(), (k, v) => {
        if (!v) {
          segments.delete(k);
          return;
        }
        segments.set(k, v);
        if (v.state !== "Dropped") void scheduleIndexes(v);
      }),
      await meta.watch<ShardCheckpoint>(metaKeys.checkpointPrefix(), (k, v) => {
        if (!v) return;
        const prev = prevCkpt.get(k);
        prevCkpt.set(k, v.seq);
        void trim(v, prev).catch((e) => log.warn(`datacoord: WAL trim of ${k} failed: ${(e as Error).message}`));
      }),
    );
    timer = setInterval(() => void collectGarbage().catch((e) => log.warn(`datacoord: gc failed: ${(e as Error).message}`)), 10_000);
    timer.unref();
    log.info(`datacoord ${config.nodeId}: active`);
  };

  const ready = (async () => {
    for (;;) {
      if (stopped) return;
      lease = await tryAcquireLease(storage.leases, "datacoord", config.nodeId, config.leaseTtlMs, () => {
        for (const s of stops.splice(0)) s();
        if (timer) clearInterval(timer);
      });
      if (lease) break;
      await new Promise((r) => setTimeout(r, Math.max(100, config.leaseTtlMs / 3)));
    }
    await becomeActive();
  })();
  // Not awaited by `ready` in standbys: a standby is "ready" once it is waiting for the lease.
  const readyOrStandby = Promise.race([ready, new Promise<void>((r) => setTimeout(r, 2_000))]);

  return {
    ready: readyOrStandby,
    async stop() {
      stopped = true;
      for (const s of stops.splice(0)) s();
      if (timer) clearInterval(timer);
      await lease?.release();
    },
  };
};

export type { LoadRecord, ServingView };
