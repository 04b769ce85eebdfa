/**
 * querynode: serves sealed segments. Watches the serving views (`view.>`),
 * loads the segments assigned to this node (blob reads, binlog decode in
 * slices, vector indexes into the worker pool, delta logs, then a catch-up on
 * the shard's WAL), flips each entry to `serving` in the view once it can
 * answer for it, and unloads what is no longer assigned. One WAL follower per
 * shard keeps deletes applied (follower.ts). Serves
 * `<root>.querynode.<nodeId>.{search,query,stats}`.
 */
import { ConsistencyTimeout, InvalidParameter, StaleView } from "../../schemas/errors.ts";
import { metaKeys } from "../../schemas/names.ts";
import type { SegmentRecord, ServingView, ShardCheckpoint, ViewSegment } from "../../schemas/segment.ts";
import type { CollectionSchema } from "../../schemas/collection.ts";
import { ChecksumMismatch, decodeDeltaLog } from "../../engine/binlog.ts";
import { IndexWorkerPool, type IndexHandle } from "../../engine/index/pool.ts";
import type { SearchResult } from "../../engine/index/kernels.ts";
import type { BuildParams, IndexType } from "../../engine/index/types.ts";
import type { Metric } from "../../engine/search.ts";
import { ObjectStoreBlobs, type BlobStore } from "../../runtime/blob.ts";
import { Catalog } from "../../runtime/catalog.ts";
import { RequestClient } from "../../runtime/client.ts";
import { serveEndpoints, type Endpoint, type RequestContext, type ServedEndpoints } from "../../runtime/host.ts";
import { log } from "../../runtime/log.ts";
import type { NatsHandles, NatsvecConfig } from "../../runtime/services.ts";
import type { Storage } from "../../runtime/storage.ts";
import { SHARD_VERBS, type PositionReply, type PositionRequest } from "../streamingnode/protocol.ts";
import { ShardFollower } from "./follower.ts";
import { querySegments, searchSegments } from "./read.ts";
import { decodeSegmentSliced, LoadedSegment } from "./segment.ts";
import {
  QUERYNODE_VERBS,
  type QnQueryReply,
  type QnQueryRequest,
  type QnSearchReply,
  type QnSearchRequest,
  type QnStatsReply,
} from "./protocol.ts";

export * from "./protocol.ts";

/** What the query node needs of the index worker pool (engine/index/pool.ts). */
export interface QueryIndexPool {
  build(type: IndexType, metric: Metric, vectors: Float32Array, dim: number, params?: BuildParams): Promise<Uint8Array>;
  load(bytes: Uint8Array): Promise<IndexHandle>;
  search(handle: IndexHandle, queries: Float32Array[], k: number, params: { ef?: number; nprobe?: number }, allow?: Uint8Array): Promise<SearchResult[]>;
  unload(handle: IndexHandle): Promise<void>;
  close(): Promise<void>;
}

export interface QueryNodeOptions {
  /** Index worker pool (default: a new IndexWorkerPool, workers started on first use). */
  readonly pool?: QueryIndexPool;
  /** Blob store of segment objects (default: the segments Object Store bucket). */
  readonly blobs?: BlobStore;
}

export interface QueryNodeHandle {
  readonly ready: Promise<void>;
  stats(): QnStatsReply;
  stop(): Promise<void>;
}

/** At most this many segments load at once (each reads, decodes and loads indexes). */
const LOAD_CONCURRENCY = 2;
/** Failed loads and unconfirmed flips are retried from this periodic pass. */
const SYNC_MS = 2_000;

interface Slot<H> {
  readonly collectionId: number;
  readonly segmentId: number;
  state: "loading" | "ready" | "failed";
  seg?: LoadedSegment<H>;
  error?: string;
  failures: number;
  retryAtMs: number;
  /** Memory this segment holds or is about to hold. */
  bytes: number;
  /** Reads in progress; pool handles are freed only when 0. */
  readers: number;
  retired: boolean;
  /** Fields whose index is being added after the load. */
  readonly indexing: Set<string>;
}

class MemoryBudgetExceeded extends Error {}

const shardKey = (c: number, shard: number) => `${c}/${shard}`;

/** Segment loads wait this long after a failure: long for corrupt data, short for transient trouble. */
const backoffMs = (e: unknown, failures: number): number => {
  if (e instanceof MemoryBudgetExceeded) return 5_000;
  if (e instanceof ChecksumMismatch) return Math.min(600_000, 60_000 * 2 ** (failures - 1));
  return Math.min(60_000, 2_000 * 2 ** (failures - 1));
};

type H = IndexHandle;

export const startQueryNode = (h: NatsHandles, storage: Storage, config: NatsvecConfig, options: QueryNodeOptions = {}): QueryNodeHandle => {
  const me = config.nodeId;
  const meta = storage.meta;
  const catalog = new Catalog(meta);
  const blobs = options.blobs ?? new ObjectStoreBlobs(storage.segments);
  const client = new RequestClient(h.nc, config.requestTimeoutMs, config.localDelivery);
  const budgetBytes = config.queryNodeMemoryBytes ?? Number.MAX_SAFE_INTEGER;
  const pool: QueryIndexPool = options.pool ?? new IndexWorkerPool();

  const views = new Map<number, ServingView>();
  const slots = new Map<number, Slot<H>>();
  const followers = new Map<string, ShardFollower>();
  const schemas = new Map<number, CollectionSchema>();
  const flipping = new Set<number>();
  const loadQueue: Slot<H>[] = [];
  let activeLoads = 0;
  let stopped = false;

  const memoryUsed = () => {
    let n = 0;
    for (const s of slots.values()) if (s.state !== "failed") n += s.bytes;
    return n;
  };

  // ------------------------------------------------------------------ loading

  const getBlob = async (name: string): Promise<Uint8Array> => {
    const b = await blobs.get(name);
    if (!b) throw new ChecksumMismatch(name, "object missing from the segments store");
    return b;
  };

  const checkpointOf = async (c: number, shard: number): Promise<number> =>
    (await meta.get<ShardCheckpoint>(metaKeys.checkpoint(c, shard)))?.value.seq ?? 0;

  /** Apply the delta logs the checkpoint commits (each once). */
  const applyDeltas = async (seg: LoadedSegment<H>, rec: SegmentRecord, checkpoint: number) => {
    for (const d of rec.deltas) {
      if (d.walTo > checkpoint || seg.appliedDeltas.has(d.object)) continue;
      for (const e of decodeDeltaLog(await getBlob(d.object), d.object)) seg.deletePk(e.pk, e.ts);
      seg.appliedDeltas.add(d.object);
    }
  };

  /** Rough resident size of a segment before loading it (decoded columns + indexes + a FLAT copy of unindexed vectors). */
  const estimateBytes = (rec: SegmentRecord, schema: CollectionSchema): number => {
    let n = rec.sizeBytes + rec.rowCount * 16;
    for (const f of schema.fields) {
      if (f.dataType !== "FloatVector") continue;
      const idx = rec.indexes[f.name];
      n += idx ? idx.sizeBytes : rec.rowCount * (f.dim ?? 0) * 4;
    }
    return n;
  };

  const freeHandles = async (seg: LoadedSegment<H>) => {
    const p = pool;
    const handles: (H | undefined)[] = [...seg.indexes.values()].map((i) => i.handle);
    for (const f of seg.flats.values()) handles.push(await f.catch(() => undefined));
    seg.indexes.clear();
    seg.flats.clear();
    for (const handle of handles) if (handle !== undefined) await p.unload(handle).catch((e) => log.warn(`querynode ${me}: unloading an index failed: ${(e as Error).message}`));
  };

  const load = async (slot: Slot<H>) => {
    const { collectionId: c, segmentId: id } = slot;
    const recEntry = await meta.get<SegmentRecord>(metaKeys.segment(c, id));
    if (!recEntry) throw new Error(`segment ${id} of collection ${c} has no record in the meta store`);
    const rec = recEntry.value;
    const coll = await catalog.collectionById(c);
    if (!coll) throw new Error(`collection ${c} does not exist`);
    schemas.set(c, coll.schema);
    const estimate = estimateBytes(rec, coll.schema);
    const used = memoryUsed() - slot.bytes;
    if (used + estimate > budgetBytes)
      throw new MemoryBudgetExceeded(`needs ~${estimate} bytes, ${used} of the ${budgetBytes}-byte budget are in use`);
    slot.bytes = estimate;

    const fieldIds = Object.keys(rec.objects.fields).map(Number);
    const [statsBytes, ...logBytes] = await Promise.all([getBlob(rec.objects.stats), ...fieldIds.map((f) => getBlob(rec.objects.fields[f]!))]);
    const logs = new Map<number, Uint8Array>(fieldIds.map((f, i) => [f, logBytes[i]!]));
    if (slot.retired) return;
    const decoded = await decodeSegmentSliced(coll.schema, rec, logs, statsBytes!);
    logs.clear();
    const seg = new LoadedSegment<H>(rec, coll.schema, decoded.batch, decoded.insertTs, decoded.stats);
    let latest = rec;
    try {
      const checkpoint = await checkpointOf(c, rec.shard);
      await applyDeltas(seg, rec, checkpoint);
      const p = pool;
      for (const [field, info] of Object.entries(rec.indexes)) {
        if (slot.retired) break;
        const handle = await p.load(await getBlob(info.object));
        seg.indexes.set(field, { handle, fieldName: field, indexType: handle.type, metric: handle.metric, sizeBytes: handle.memoryBytes });
        if (handle.count !== seg.rowCount)
          throw new ChecksumMismatch(info.object, `index covers ${handle.count} rows, segment ${id} has ${seg.rowCount}`);
      }
      if (slot.retired) {
        await freeHandles(seg);
        return;
      }
      const key = shardKey(c, rec.shard);
      let follower = followers.get(key);
      if (!follower) {
        follower = new ShardFollower(c, rec.shard, storage.wal, h.names.wal(c, rec.shard), checkpoint);
        followers.set(key, follower);
        follower.start();
      }
      await follower.attach(seg, checkpoint);
      // Delta logs a flush committed meanwhile (their WAL range may be trimmed before the follower saw it).
      latest = (await meta.get<SegmentRecord>(metaKeys.segment(c, id)))?.value ?? rec;
      await applyDeltas(seg, latest, await checkpointOf(c, rec.shard));
    } catch (e) {
      detach(c, seg);
      await freeHandles(seg);
      throw e;
    }
    if (slot.retired) {
      detach(c, seg);
      await freeHandles(seg);
      return;
    }
    slot.seg = seg;
    slot.bytes = seg.memoryBytes();
    slot.state = "ready";
    log.info(`querynode ${me}: loaded segment ${id} of collection ${c} (${seg.rowCount} rows, ${seg.indexes.size} indexes)`);
    // An index built while we loaded (its record change came before we were ready).
    void addIndexes(slot, latest);
  };

  /** A loaded segment's record gained an index (built after it was loaded): load it alongside. */
  const addIndexes = async (slot: Slot<H>, rec: SegmentRecord) => {
    const seg = slot.seg;
    if (!seg || slot.retired) return;
    for (const [field, info] of Object.entries(rec.indexes)) {
      if (seg.indexes.has(field) || slot.indexing.has(field)) continue;
      slot.indexing.add(field);
      try {
        const handle = await pool.load(await getBlob(info.object));
        if (slot.retired || handle.count !== seg.rowCount) {
          await pool.unload(handle);
          if (!slot.retired) log.error(`querynode ${me}: index ${info.object} covers ${handle.count} rows, segment ${seg.segmentId} has ${seg.rowCount}; not used`);
          continue;
        }
        seg.indexes.set(field, { handle, fieldName: field, indexType: handle.type, metric: handle.metric, sizeBytes: handle.memoryBytes });
        slot.bytes = seg.memoryBytes();
        log.info(`querynode ${me}: added the ${handle.type} index of field '${field}' to segment ${seg.segmentId}`);
      } catch (e) {
        log.error(`querynode ${me}: loading index ${info.object} of segment ${seg.segmentId} failed (the segment is searched exactly meanwhile)`, e);
      } finally {
        slot.indexing.delete(field);
      }
    }
  };

  const detach = (c: number, seg: LoadedSegment<H>) => {
    const key = shardKey(c, seg.record.shard);
    const f = followers.get(key);
    if (!f) return;
    f.detach(seg.segmentId);
    if (f.size === 0) {
      f.stop();
      followers.delete(key);
    }
  };

  const pumpLoads = () => {
    while (activeLoads < LOAD_CONCURRENCY && loadQueue.length > 0 && !stopped) {
      const slot = loadQueue.shift()!;
      if (slot.retired) continue;
      activeLoads++;
      void load(slot)
        .catch((e) => {
          if (slot.retired) return;
          slot.failures++;
          slot.state = "failed";
          slot.error = e instanceof Error ? e.message : String(e);
          slot.retryAtMs = Date.now() + backoffMs(e, slot.failures);
          slot.bytes = 0;
          const level = e instanceof MemoryBudgetExceeded ? "warn" : "error";
          log[level](`querynode ${me}: segment ${slot.segmentId} of collection ${slot.collectionId} not loaded (attempt ${slot.failures}): ${slot.error}`);
        })
        .finally(() => {
          activeLoads--;
          pumpLoads();
          requestSync();
        });
    }
  };

  const startLoad = (c: number, id: number) => {
    const slot: Slot<H> = { collectionId: c, segmentId: id, state: "loading", failures: 0, retryAtMs: 0, bytes: 0, readers: 0, retired: false, indexing: new Set() };
    slots.set(id, slot);
    loadQueue.push(slot);
    pumpLoads();
  };

  const retryLoad = (slot: Slot<H>) => {
    slot.state = "loading";
    slot.error = undefined;
    loadQueue.push(slot);
    pumpLoads();
  };

  const unload = (id: number) => {
    const slot = slots.get(id);
    if (!slot) return;
    slots.delete(id);
    slot.retired = true;
    const seg = slot.seg;
    if (!seg) return;
    detach(slot.collectionId, seg);
    if (slot.readers === 0) void freeHandles(seg);
    log.info(`querynode ${me}: unloaded segment ${id} of collection ${slot.collectionId}`);
  };

  // ------------------------------------------------------------------ the view

  /** Mark our entry serving (CAS); compaction sources of the segment leave the view in the same version. */
  const flip = async (c: number, id: number, compactedFrom: readonly number[]) => {
    if (flipping.has(id)) return;
    flipping.add(id);
    try {
      const v = await meta.mutate<ServingView>(metaKeys.view(c), (cur) => {
        const e = cur?.segments[id];
        if (!cur || !e || e.node !== me || e.state === "serving") return undefined;
        if (slots.get(id)?.state !== "ready") return undefined;
        const version = cur.version + 1;
        const segments: Record<number, ViewSegment> = { ...cur.segments, [id]: { ...e, state: "serving", servingSince: version } };
        for (const src of compactedFrom) delete segments[src];
        return { ...cur, version, segments };
      });
      if (v) views.set(c, v);
    } catch (e) {
      log.warn(`querynode ${me}: marking segment ${id} serving failed (retried): ${(e as Error).message}`);
    } finally {
      flipping.delete(id);
    }
  };

  /** Our entry says serving but we cannot answer for it (e.g. after a restart): say loading. */
  const unflip = async (c: number, id: number) => {
    if (flipping.has(id)) return;
    flipping.add(id);
    try {
      const v = await meta.mutate<ServingView>(metaKeys.view(c), (cur) => {
        const e = cur?.segments[id];
        if (!cur || !e || e.node !== me || e.state !== "serving" || slots.get(id)?.state === "ready") return undefined;
        const { servingSince: _, ...rest } = e;
        return { ...cur, version: cur.version + 1, segments: { ...cur.segments, [id]: { ...rest, state: "loading" } } };
      });
      if (v) views.set(c, v);
    } catch (e) {
      log.warn(`querynode ${me}: marking segment ${id} loading failed (retried): ${(e as Error).message}`);
    } finally {
      flipping.delete(id);
    }
  };

  const syncOnce = () => {
    const mine = new Map<number, { c: number; e: ViewSegment }>();
    for (const [c, v] of views) for (const [id, e] of Object.entries(v.segments)) if (e.node === me) mine.set(Number(id), { c, e });
    for (const id of [...slots.keys()]) {
      const m = mine.get(id);
      if (!m || m.c !== slots.get(id)!.collectionId) unload(id);
    }
    const now = Date.now();
    for (const [id, { c, e }] of mine) {
      const slot = slots.get(id);
      if (!slot) {
        startLoad(c, id);
        if (e.state === "serving") void unflip(c, id);
        continue;
      }
      if (slot.state === "ready" && e.state === "loading") void flip(c, id, slot.seg!.record.compactedFrom ?? []);
      else if (slot.state !== "ready" && e.state === "serving") void unflip(c, id);
      if (slot.state === "failed" && now >= slot.retryAtMs) retryLoad(slot);
    }
  };

  let syncQueued = false;
  const requestSync = () => {
    if (syncQueued || stopped) return;
    syncQueued = true;
    queueMicrotask(() => {
      syncQueued = false;
      if (!stopped) syncOnce();
    });
  };

  // ------------------------------------------------------------------ reads

  /** The requested segments, held for the read; StaleView if any is not ready here (the caller's view is outdated). */
  const acquire = (collectionId: number, segmentIds: readonly number[]) => {
    if (!Number.isInteger(collectionId)) throw new InvalidParameter({ message: `collectionId must be an integer, got ${JSON.stringify(collectionId)}` });
    if (!Array.isArray(segmentIds)) throw new InvalidParameter({ message: "segmentIds must be an array of segment ids" });
    const held: Slot<H>[] = [];
    for (const id of new Set(segmentIds)) {
      const slot = slots.get(id);
      if (!slot || slot.state !== "ready" || slot.collectionId !== collectionId || !slot.seg) {
        const why = !slot ? "not assigned to it" : slot.state === "failed" ? `failed to load: ${slot.error}` : slot.state === "loading" ? "still loading" : "of another collection";
        throw new StaleView({
          message: `query node ${me} does not serve segment ${id} of collection ${collectionId} (${why}); the serving view used is outdated: refresh it and retry`,
        });
      }
      held.push(slot);
    }
    for (const s of held) s.readers++;
    return {
      segs: held.map((s) => s.seg!),
      release: () => {
        for (const s of held) {
          s.readers--;
          if (s.retired && s.readers === 0 && s.seg) void freeHandles(s.seg);
        }
      },
    };
  };

  /** Wait until every shard of the read has applied the WAL up to the owner's position for guaranteeTs. */
  const waitConsistent = async (collectionId: number, segs: readonly LoadedSegment<H>[], guaranteeTs: bigint | undefined, ctx: RequestContext) => {
    if (guaranteeTs === undefined || guaranteeTs === null) return;
    const deadline = Math.min(ctx.deadlineMs, Date.now() + config.consistencyWaitMs);
    const shards = [...new Set(segs.map((s) => s.record.shard))];
    await Promise.all(
      shards.map(async (shard) => {
        const left = deadline - Date.now();
        if (left <= 0) throw new ConsistencyTimeout({ message: `no time left to reach timestamp ${guaranteeTs} on shard ${collectionId}/${shard}` });
        const body: PositionRequest = { collectionId, guaranteeTs };
        const pos = (await client.call(h.names.shard(collectionId, shard, SHARD_VERBS.position), body, { timeoutMs: left })).data as PositionReply;
        const f = followers.get(shardKey(collectionId, shard));
        if (!f) throw new StaleView({ message: `query node ${me} no longer follows shard ${collectionId}/${shard}; refresh the serving view and retry` });
        await f.waitApplied(pos.seq, deadline);
      }),
    );
  };

  const schemaOf = async (c: number): Promise<CollectionSchema> => {
    const s = schemas.get(c);
    if (s) return s;
    const coll = await catalog.collectionById(c);
    if (!coll) throw new StaleView({ message: `collection ${c} is not known to query node ${me}` });
    schemas.set(c, coll.schema);
    return coll.schema;
  };

  const flatHandle = (seg: LoadedSegment<H>, field: string, metric: Metric): Promise<H> => {
    const key = `${field}/${metric}`;
    let p = seg.flats.get(key);
    if (!p) {
      p = (async () => {
        const v = seg.vectors(field);
        if (!v) throw new InvalidParameter({ message: `field '${field}' is not a vector field of the collection` });
        const handle = await pool.load(await pool.build("FLAT", metric, v.data, v.dim));
        seg.extraBytes += handle.memoryBytes;
        return handle;
      })();
      seg.flats.set(key, p);
      p.catch(() => seg.flats.delete(key));
    }
    return p;
  };

  const withSegments = async <T>(
    b: { collectionId: number; segmentIds: number[]; guaranteeTs?: bigint },
    ctx: RequestContext,
    fn: (schema: CollectionSchema, segs: LoadedSegment<H>[]) => Promise<T>,
  ): Promise<T> => {
    const { segs, release } = acquire(b.collectionId, b.segmentIds);
    try {
      await waitConsistent(b.collectionId, segs, b.guaranteeTs ?? undefined, ctx);
      return await fn(await schemaOf(b.collectionId), segs);
    } finally {
      release();
    }
  };

  /** msgpack may carry nil for absent optionals. */
  const clean = <T extends object>(b: T): T => Object.fromEntries(Object.entries(b).filter(([, v]) => v !== null && v !== undefined)) as T;

  const search = async (raw: QnSearchRequest, ctx: RequestContext): Promise<QnSearchReply> => {
    const b = clean(raw);
    return withSegments(b, ctx, async (schema, segs) => ({ results: await searchSegments({ pool, flatHandle }, schema, segs, b) }));
  };

  const query = async (raw: QnQueryRequest, ctx: RequestContext): Promise<QnQueryReply> => {
    const b = clean(raw);
    return withSegments(b, ctx, (schema, segs) => querySegments(schema, segs, b));
  };

  const stats = (): QnStatsReply => {
    const segments: QnStatsReply["segments"] = [];
    const loading: NonNullable<QnStatsReply["loading"]> = [];
    const failed: NonNullable<QnStatsReply["failed"]> = [];
    let memoryBytes = 0;
    for (const s of slots.values()) {
      if (s.state === "ready" && s.seg) {
        const mb = s.seg.memoryBytes();
        memoryBytes += mb;
        segments.push({
          segmentId: s.segmentId,
          collectionId: s.collectionId,
          rowCount: s.seg.rowCount,
          liveRows: s.seg.liveRows,
          memoryBytes: mb,
          indexed: s.seg.indexes.size > 0,
        });
      } else if (s.state === "loading") loading.push({ segmentId: s.segmentId, collectionId: s.collectionId });
      else failed.push({ segmentId: s.segmentId, collectionId: s.collectionId, error: s.error ?? "unknown", attempts: s.failures, retryAtMs: s.retryAtMs });
    }
    const shards = [...followers.values()].map((f) => ({ collectionId: f.collectionId, shard: f.shard, appliedSeq: f.appliedSeq, segments: f.size }));
    return { nodeId: me, segments, memoryBytes, memoryBudgetBytes: budgetBytes, loading, failed, shards };
  };

  // ------------------------------------------------------------------ wiring

  const ep = (verb: string, fn: (body: any, ctx: RequestContext) => Promise<unknown> | unknown): Endpoint => ({
    subject: h.names.role("querynode", me, verb),
    handle: async (body, ctx) => ({ data: await fn(body, ctx) }),
  });
  let served: ServedEndpoints | undefined;
  let stopWatches: (() => void)[] = [];
  const timer = setInterval(requestSync, SYNC_MS);
  timer.unref();

  const ready = (async () => {
    served = serveEndpoints(
      h,
      [ep(QUERYNODE_VERBS.search, search), ep(QUERYNODE_VERBS.query, query), ep(QUERYNODE_VERBS.stats, stats)],
      `querynode ${me}`,
    );
    stopWatches.push(
      await meta.watch<SegmentRecord>(metaKeys.segmentPrefix(), (_key, rec) => {
        const slot = rec ? slots.get(rec.segmentId) : undefined;
        if (rec && slot?.state === "ready" && slot.collectionId === rec.collectionId) void addIndexes(slot, rec);
      }),
    );
    const stopViews = await meta.watch<ServingView>(metaKeys.viewPrefix(), (key, v) => {
      const c = Number(key.split(".")[1]);
      if (!Number.isInteger(c)) return;
      const prev = views.get(c);
      if (v && prev && v.version < prev.version) return; // an older value than one we wrote ourselves
      if (v) views.set(c, v);
      else views.delete(c);
      requestSync();
    });
    stopWatches.push(stopViews);
    log.info(`querynode ${me}: watching serving views (memory budget ${budgetBytes} bytes)`);
  })();

  return {
    ready,
    stats,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await ready.catch(() => undefined);
      for (const s of stopWatches) s();
      stopWatches = [];
      await served?.stop();
      for (const f of followers.values()) f.stop();
      followers.clear();
      const segs = [...slots.values()].map((s) => s.seg).filter((s): s is LoadedSegment<H> => s !== undefined);
      for (const s of slots.values()) s.retired = true;
      slots.clear();
      for (const s of segs) await freeHandles(s);
      if (!options.pool) await pool.close().catch(() => undefined);
      client.close();
    },
  };
};
