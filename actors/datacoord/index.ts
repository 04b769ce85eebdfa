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
import { DEFAULT_COMPACTION, indexDefKey, indexesToBuild, pickCompaction } from "./schedule.ts";
import { RequestClient } from "../../runtime/client.ts";
import { serveEndpoints, type ServedEndpoints } from "../../runtime/host.ts";
import { ROOTCOORD_VERBS, type AllocIdsReply } from "../rootcoord/protocol.ts";
import { InvalidParameter } from "../../schemas/errors.ts";

/** How often datacoord looks for segments to compact. */
const COMPACTION_CHECK_MS = 5_000;

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
  /** (segment, index definition) pairs already queued in this term, so a watch storm queues each once. */
  const queued = new Set<string>();
  const trimmedTo = new Map<string, number>();
  const checkpoints = new Map<string, number>(); // "c/shard" -> seq
  const viewed = new Map<number, Set<number>>(); // collection -> segments in its serving view
  /** Sources of compactions queued and not yet dropped. */
  const compacting = new Map<number, number>(); // source segment -> queued at ms
  const client = new RequestClient(h.nc, config.requestTimeoutMs, config.localDelivery);
  let served: ServedEndpoints | undefined;
  let compactTimer: NodeJS.Timeout | undefined;
  let lease: Lease | undefined;
  let stopped = false;
  const stops: (() => void)[] = [];
  let timer: NodeJS.Timeout | undefined;

  const scheduleIndexes = async (seg: SegmentRecord) => {
    const coll = collections.get(seg.collectionId);
    if (!coll || !lease || lease.lost) return;
    for (const def of indexesToBuild(coll, seg)) {
      const key = `${seg.segmentId}/${indexDefKey(def)}`;
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

  /** Queue compactions for every shard+partition of a collection (or all) that needs one. */
  const scheduleCompactions = async (onlyCollection?: number, force = false): Promise<number> => {
    if (!lease || lease.lost) return 0;
    const now = Date.now();
    for (const [id, at] of compacting) if (now - at > 10 * 60_000) compacting.delete(id); // a lost task: allow again
    const groups = new Map<string, SegmentRecord[]>();
    for (const seg of segments.values()) {
      if (onlyCollection !== undefined && seg.collectionId !== onlyCollection) continue;
      if (!collections.has(seg.collectionId) || seg.state === "Dropped" || compacting.has(seg.segmentId)) continue;
      if (seg.walTo > (checkpoints.get(`${seg.collectionId}/${seg.shard}`) ?? 0)) continue;
      const key = `${seg.collectionId}/${seg.shard}/${seg.partitionId}`;
      groups.set(key, [...(groups.get(key) ?? []), seg]);
    }
    let queuedTasks = 0;
    for (const [key, segs] of groups) {
      // A compaction whose result has not replaced its sources in the serving view yet: wait for the swap.
      const inView = viewed.get(segs[0]!.collectionId);
      if (segs.some((s) => s.compactedFrom?.some((src) => inView?.has(src)))) continue;
      const pick = pickCompaction(segs, { ...DEFAULT_COMPACTION, maxRows: config.compactMaxRows, maxBytes: config.compactMaxBytes }, force, now);
      if (pick.length === 0) continue;
      const [c, shard, partitionId] = key.split("/").map(Number) as [number, number, number];
      const targetSegmentId = Number(
        ((await client.call(h.names.role("rootcoord", "any", ROOTCOORD_VERBS.allocIds), { count: 1 }, { timeoutMs: 10_000 })).data as AllocIdsReply).start,
      );
      for (const id of pick) compacting.set(id, now);
      await publishTask(h, { kind: "compact", collectionId: c, shard, partitionId, segmentIds: pick, targetSegmentId });
      queuedTasks++;
    }
    return queuedTasks;
  };

  const collectGarbage = async () => {
    if (!lease || lease.lost) return;
    const now = Date.now();
    for (const [key, seg] of segments) {
      if (seg.state !== "Dropped" || !seg.droppedAtMs || now - seg.droppedAtMs < GC_GRACE_MS) continue;
      // Still served (a compaction source until its result serves): not garbage yet.
      if (viewed.get(seg.collectionId)?.has(seg.segmentId)) continue;
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
        if (v.state === "Dropped") compacting.delete(v.segmentId);
        else void scheduleIndexes(v);
      }),
      await meta.watch<ShardCheckpoint>(metaKeys.checkpointPrefix(), (k, v) => {
        if (!v) return;
        const prev = prevCkpt.get(k);
        prevCkpt.set(k, v.seq);
        checkpoints.set(`${v.collectionId}/${v.shard}`, v.seq);
        void trim(v, prev).catch((e) => log.warn(`datacoord: WAL trim of ${k} failed: ${(e as Error).message}`));
      }),
    );
    stops.push(
      await meta.watch<ServingView>(metaKeys.viewPrefix(), (k, v) => {
        const id = Number(k.slice(k.indexOf(".") + 1));
        if (v) viewed.set(id, new Set(Object.keys(v.segments).map(Number)));
        else viewed.delete(id);
      }),
    );
    served = serveEndpoints(
      h,
      [
        {
          subject: h.names.role("datacoord", "any", "compact"),
          queue: "datacoord",
          handle: async (body) => {
            const id = (body as { collectionId?: unknown }).collectionId;
            if (typeof id !== "number") throw new InvalidParameter({ message: "compact needs collectionId" });
            return { data: { compactionTasks: await scheduleCompactions(id, true) } };
          },
        },
      ],
      "datacoord",
    );
    compactTimer = setInterval(() => void scheduleCompactions().catch((e) => log.warn(`datacoord: compaction scheduling failed: ${(e as Error).message}`)), COMPACTION_CHECK_MS);
    compactTimer.unref();
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
        if (compactTimer) clearInterval(compactTimer);
        void served?.stop();
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
      if (compactTimer) clearInterval(compactTimer);
      await served?.stop();
      await client.close();
      await lease?.release();
    },
  };
};

export type { LoadRecord, ServingView };
