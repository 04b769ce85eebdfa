/**
 * querynode: serves sealed segments. Watches the serving views (`view.>`),
 * loads the segments assigned to this node (blob reads, binlog decode in
 * slices, vector indexes into the worker pool, delta logs, then a catch-up on
 * the shard's WAL), flips each entry to `serving` in the view once it can
 * answer for it, and unloads what is no longer assigned. One WAL follower per
 * shard keeps deletes applied (follower.ts). Serves
 * `<root>.querynode.<nodeId>.{search,query,stats}`.
 */
import { ConsistencyTimeout, InvalidParameter, StaleView, Unexpected } from "../../schemas/errors.ts";
import { metaKeys } from "../../schemas/names.ts";
import type { SegmentIndexInfo, SegmentRecord, ServingView, ShardCheckpoint, ViewSegment } from "../../schemas/segment.ts";
import type { CollectionSchema, FieldSchema } from "../../schemas/collection.ts";
import { ChecksumMismatch, decodeDeltaLog, decodeFieldLog } from "../../engine/binlog.ts";
import type { Column } from "../../engine/columns.ts";
import { IndexWorkerPool, type IndexHandle } from "../../engine/index/pool.ts";
import type { SearchResult } from "../../engine/index/kernels.ts";
import type { BuildParams, IndexType } from "../../engine/index/types.ts";
import { indexFileRange, type IndexHeader } from "../../engine/index/format.ts";
import type { Metric } from "../../engine/search.ts";
import { ObjectStoreBlobs, type BlobStore } from "../../runtime/blob.ts";
import { Catalog } from "../../runtime/catalog.ts";
import { RequestClient } from "../../runtime/client.ts";
import { serveEndpoints, type Endpoint, type RequestContext, type ServedEndpoints } from "../../runtime/host.ts";
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { collectGarbage } from "../../runtime/gc.ts";
import { log } from "../../runtime/log.ts";
import type { NatsHandles, NatsvecConfig } from "../../runtime/services.ts";
import type { Storage } from "../../runtime/storage.ts";
import { SHARD_VERBS, type PositionReply, type PositionRequest } from "../streamingnode/protocol.ts";
import { ShardFollower } from "./follower.ts";
import { querySegments, searchSegments } from "./read.ts";
import { decodeSegmentSliced, LoadedSegment, vectorLogBytes, type LoadedIndex } from "./segment.ts";
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
  load(bytes: Uint8Array, opts?: { transfer?: boolean }): Promise<IndexHandle>;
  /** Load a serialized index from a file (the worker reads it; the file may go once this settles). */
  loadFile(path: string, sizeBytes: number, hnswHeader?: IndexHeader): Promise<IndexHandle>;
  /** Keep raw vectors in a worker as a FLAT index (no build round trip). */
  loadFlat(metric: Metric, vectors: Float32Array, dim: number, opts?: { transfer?: boolean }): Promise<IndexHandle>;
  /** The exact stored vectors of some rows (handles with `exactVectors` only). */
  vectors(handle: IndexHandle, rows: ArrayLike<number>): Promise<Float32Array>;
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

/**
 * At most this many segments load at once (each reads its objects, decodes
 * them and hands its indexes to the workers). Their reads queue for the
 * Object Store (OBJECT_READS) while the others decode and load, so the store
 * stays busy; the memory of objects read but not yet loaded stays bounded.
 */
const LOAD_CONCURRENCY = 4;
/**
 * At most this many Object Store reads at once (FIFO), whatever the number of
 * loads. Each read is an ordered push consumer on this node's one connection;
 * several large ones together outrun the client, the connection passes the
 * server's max pending (64 MiB: "Slow Consumer Detected"), the server drops
 * messages and the reads stall until the blob store's idle watchdog (30 s)
 * retries them. That was with nats.js hashing objects in JavaScript (~45 MB/s
 * a read); with Node's native hash and index objects going straight to a temp
 * file, two reads keep up with the connection (a 1M restart: 11.6 s with two,
 * 13.2 s with one, no slow consumer), and the loads still overlap: segments read
 * while others decode and hand their indexes to the workers.
 */
const OBJECT_READS = 2;
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
  /** A record with a newer build of a field that was being added: taken up when that finishes. */
  newerRecord?: SegmentRecord;
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
  const pool: QueryIndexPool = options.pool ?? new IndexWorkerPool(config.searchWorkers ?? Math.max(1, availableParallelism()));

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
    for (const s of slots.values()) if (s.state !== "failed") n += s.seg ? s.seg.memoryBytes() : s.bytes;
    return n;
  };

  // ------------------------------------------------------------------ loading

  /** Object reads in flight and waiting (FIFO), see OBJECT_READS. */
  let reading = 0;
  const readQueue: (() => void)[] = [];

  /** Run one object read under the OBJECT_READS limit (FIFO). */
  const readSlot = async <T>(read: () => Promise<T>): Promise<T> => {
    if (reading >= OBJECT_READS) await new Promise<void>((r) => readQueue.push(r));
    else reading++;
    try {
      return await read();
    } finally {
      const next = readQueue.shift();
      if (next) next(); // the slot passes on
      else reading--;
    }
  };

  const getBlob = (name: string): Promise<Uint8Array> =>
    readSlot(async () => {
      const b = await blobs.get(name);
      if (!b) throw new ChecksumMismatch(name, "object missing from the segments store");
      return b;
    });

  /**
   * Load an index object into the pool by way of a temp file: the object is
   * written to disk chunk by chunk and the worker reads it from there, so a
   * graph of hundreds of MB never sits whole in this thread's memory (nor in
   * the allocator's arenas afterwards).
   */
  const loadIndexObject = async (name: string): Promise<IndexHandle> => {
    const path = join(tmpdir(), `natsvec-index-${process.pid}-${randomUUID()}.nvix`);
    try {
      // An HNSW object's hnsw section alone goes to the file: hnswlib loads it without a copy.
      let hnswHeader: IndexHeader | undefined;
      const size = await readSlot(() =>
        blobs.getToFile(name, path, {
          range: (head, total) => {
            const r = indexFileRange(head, total);
            hnswHeader = r?.hnswHeader;
            return r;
          },
        }),
      );
      if (size === undefined) throw new ChecksumMismatch(name, "object missing from the segments store");
      return await pool.loadFile(path, size, hnswHeader);
    } finally {
      await rm(path, { force: true });
    }
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

  /**
   * Rough resident size of a segment before loading it: the decoded scalar
   * columns and per-row state, plus each vector field once: its index (whose
   * binlog is not loaded) or, unindexed, its raw vectors as a FLAT in the pool
   * (+ 8 bytes/row of COSINE norms).
   */
  const estimateBytes = (rec: SegmentRecord, schema: CollectionSchema): number => {
    let n = rec.sizeBytes + rec.rowCount * 16;
    for (const f of schema.fields) {
      if (f.dataType !== "FloatVector") continue;
      const idx = rec.indexes[f.name];
      n += idx ? idx.sizeBytes - vectorLogBytes(rec.rowCount, f.dim ?? 0) : rec.rowCount * 8;
    }
    return n;
  };

  /** A segment's loaded index of `field`, built as its record's `info` says. */
  const loadedIndex = (field: string, handle: H, info: SegmentIndexInfo): LoadedIndex<H> => ({
    handle,
    fieldName: field,
    indexType: handle.type,
    metric: handle.metric,
    sizeBytes: handle.memoryBytes,
    builtAtMs: info.builtAtMs,
  });

  const unloadQuietly = (handle: H) => pool.unload(handle).catch((e) => log.warn(`querynode ${me}: unloading an index failed: ${(e as Error).message}`));

  const freeHandles = async (seg: LoadedSegment<H>) => {
    const handles: (H | undefined)[] = [...[...seg.indexes.values()].map((i) => i.handle), ...seg.retiredIndexes.splice(0)];
    const flats = [...seg.flats.values(), ...seg.retiredFlats.splice(0)];
    seg.indexes.clear();
    seg.flats.clear();
    for (const f of flats) handles.push(await f.catch(() => undefined));
    for (const handle of handles) if (handle !== undefined) await unloadQuietly(handle);
  };

  /** Unload the FLATs and replaced indexes a segment no longer uses, once no read holds it. */
  const freeRetired = async (slot: Slot<H>) => {
    const seg = slot.seg;
    if (!seg || slot.readers > 0) return;
    for (const handle of seg.retiredIndexes.splice(0)) await unloadQuietly(handle);
    for (const f of seg.retiredFlats.splice(0)) {
      const handle = await f.catch(() => undefined);
      if (handle === undefined) continue;
      seg.extraBytes -= handle.memoryBytes;
      await unloadQuietly(handle);
    }
  };

  /** The field now has an index: its FLATs (raw vectors) go. */
  const retireFlats = (slot: Slot<H>, field: string) => {
    const seg = slot.seg!;
    for (const [key, p] of [...seg.flats]) {
      if (!key.startsWith(`${field}/`)) continue;
      seg.flats.delete(key);
      seg.retiredFlats.push(p);
    }
    void freeRetired(slot);
  };

  /** Metric of the FLAT an unindexed field's vectors go into at load: the field's index definition, else the proxy's default. */
  const defaultMetric = (indexes: readonly { fieldName: string; metricType: Metric }[], field: string): Metric =>
    indexes.find((i) => i.fieldName === field)?.metricType ?? "COSINE";

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

    const t0 = Date.now();
    // A vector field with an index is served by the index alone: its binlog is not read.
    const vectorFields = coll.schema.fields.filter((f) => f.dataType === "FloatVector");
    const indexed = vectorFields.filter((f) => rec.indexes[f.name] !== undefined);
    const skip = new Set(indexed.map((f) => f.fieldId));
    const fieldIds = Object.keys(rec.objects.fields)
      .map(Number)
      .filter((f) => !skip.has(f));
    // The segment's reads queue at once (stats, scalar logs): back to back, FIFO; index files follow, one at a time.
    const [statsBytes, logBytes] = await Promise.all([getBlob(rec.objects.stats), Promise.all(fieldIds.map((f) => getBlob(rec.objects.fields[f]!)))]);
    const logs = new Map<number, Uint8Array>(fieldIds.map((f, i) => [f, logBytes[i]!]));
    if (slot.retired) return;
    const decoded = await decodeSegmentSliced(coll.schema, rec, logs, statsBytes, skip);
    logs.clear();
    const tRead = Date.now();
    const seg = new LoadedSegment<H>(rec, coll.schema, decoded.batch, decoded.insertTs, decoded.stats);
    let latest = rec;
    try {
      const checkpoint = await checkpointOf(c, rec.shard);
      await applyDeltas(seg, rec, checkpoint);
      for (let i = 0; i < indexed.length && !slot.retired; i++) {
        const field = indexed[i]!.name;
        const info = rec.indexes[field]!;
        const handle = await loadIndexObject(info.object);
        seg.indexes.set(field, loadedIndex(field, handle, info));
        if (handle.count !== seg.rowCount)
          throw new ChecksumMismatch(info.object, `index covers ${handle.count} rows, segment ${id} has ${seg.rowCount}`);
      }
      // Unindexed vectors move into a FLAT in the pool; this thread keeps no copy.
      for (const f of vectorFields) {
        if (slot.retired || skip.has(f.fieldId)) continue;
        await flatHandle(seg, f.name, defaultMetric(coll.indexes, f.name));
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
    log.info(
      `querynode ${me}: loaded segment ${id} of collection ${c} (${seg.rowCount} rows, ${seg.indexes.size} indexes, ${slot.bytes} bytes; ` +
        `read+decode ${tRead - t0} ms, total ${Date.now() - t0} ms)`,
    );
    // An index built while we loaded (its record change came before we were ready).
    void addIndexes(slot, latest);
  };

  /**
   * A loaded segment's record gained an index (built after it was loaded), or one was rebuilt
   * (the definition was dropped and created again, e.g. with another metric): load it, then
   * serve with it in place of the FLATs or the old index.
   */
  const addIndexes = async (slot: Slot<H>, rec: SegmentRecord) => {
    const seg = slot.seg;
    if (!seg || slot.retired) return;
    for (const [field, info] of Object.entries(rec.indexes)) {
      const have = seg.indexes.get(field);
      if (have && have.builtAtMs === info.builtAtMs) continue;
      if (slot.indexing.has(field)) {
        slot.newerRecord = rec; // rebuilt while the previous build loads: load this one after it
        continue;
      }
      slot.indexing.add(field);
      try {
        const handle = await loadIndexObject(info.object);
        if (slot.retired || handle.count !== seg.rowCount) {
          await pool.unload(handle);
          if (!slot.retired) log.error(`querynode ${me}: index ${info.object} covers ${handle.count} rows, segment ${seg.segmentId} has ${seg.rowCount}; not used`);
          continue;
        }
        const old = seg.indexes.get(field);
        seg.indexes.set(field, loadedIndex(field, handle, info));
        if (old) seg.retiredIndexes.push(old.handle);
        retireFlats(slot, field);
        slot.bytes = seg.memoryBytes();
        log.info(`querynode ${me}: ${old ? "replaced the index of field" : "added the index of field"} '${field}' of segment ${seg.segmentId} (${handle.type})`);
      } catch (e) {
        log.error(`querynode ${me}: loading index ${info.object} of segment ${seg.segmentId} failed (the segment is searched exactly meanwhile)`, e);
      } finally {
        slot.indexing.delete(field);
      }
    }
    const next = slot.newerRecord;
    if (next && slot.indexing.size === 0) {
      slot.newerRecord = undefined;
      await addIndexes(slot, next);
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
          // The last load of a burst: its object reads (index files, binlogs) are garbage now; free them
          // at once rather than whenever V8 gets to it (hundreds of MB at 1M rows).
          if (activeLoads === 0) collectGarbage();
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
          if (s.readers === 0 && s.seg) void (s.retired ? freeHandles(s.seg) : freeRetired(s));
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

  const vectorField = (seg: LoadedSegment<H>, field: string): FieldSchema => {
    const f = seg.schema.fields.find((x) => x.name === field);
    if (!f || f.dataType !== "FloatVector") throw new InvalidParameter({ message: `field '${field}' is not a vector field of the collection` });
    return f;
  };

  /** Verified binlog reads of vector fields in flight, by object (concurrent requests share one; nothing is kept after). */
  const vectorLogReads = new Map<string, Promise<Float32Array>>();

  /** All vectors of a field, from its binlog (verified; a corrupt or missing object is reported as such, never served). */
  const readVectorLog = (seg: LoadedSegment<H>, f: FieldSchema): Promise<Float32Array> => {
    const what = seg.record.objects.fields[f.fieldId] ?? `insert log of fieldId ${f.fieldId}`;
    let p = vectorLogReads.get(what);
    if (!p) {
      p = (async () => {
        try {
          if (seg.record.objects.fields[f.fieldId] === undefined) throw new ChecksumMismatch(what, `segment ${seg.segmentId} has no insert log for fieldId ${f.fieldId}`);
          const col = decodeFieldLog(await getBlob(what), { field: f, what }) as Column;
          if (col.kind !== "vector" || col.data.length !== seg.rowCount * col.dim)
            throw new ChecksumMismatch(what, `${col.kind === "vector" ? col.data.length / col.dim : "no"} vectors, segment ${seg.segmentId} has ${seg.rowCount} rows`);
          return col.data;
        } catch (e) {
          if (!(e instanceof ChecksumMismatch)) throw e;
          throw new Unexpected({ message: `the vectors of field '${f.name}' of segment ${seg.segmentId} cannot be read: ${e.message}` });
        }
      })();
      vectorLogReads.set(what, p);
      const done = () => vectorLogReads.delete(what);
      p.then(done, done);
    }
    return p;
  };

  /** A FLAT of this field already in the pool (any metric): it holds the exact vectors. */
  const someFlat = async (seg: LoadedSegment<H>, field: string, except: string): Promise<H | undefined> => {
    for (const [key, p] of seg.flats) {
      if (key === except || !key.startsWith(`${field}/`)) continue;
      const h = await p.catch(() => undefined);
      if (h) return h;
    }
    return undefined;
  };

  /**
   * Vectors of `rows` exactly as inserted, without a copy held here: from the
   * field's index when it keeps them (FLAT; HNSW, IVF_FLAT under L2/IP), else
   * from a FLAT of the field, else (an index that stores unit vectors or
   * codes) from the field's binlog, read for this request only.
   */
  const fetchVectors = async (seg: LoadedSegment<H>, field: string, rows: Int32Array): Promise<Float32Array> => {
    const f = vectorField(seg, field);
    const dim = f.dim!;
    const held = seg.vectors(field);
    if (held) {
      const out = new Float32Array(rows.length * dim);
      rows.forEach((r, i) => out.set(held.data.subarray(r * dim, (r + 1) * dim), i * dim));
      return out;
    }
    const index = seg.indexes.get(field);
    if (index?.handle.exactVectors) return pool.vectors(index.handle, rows);
    const flat = await someFlat(seg, field, "");
    if (flat) return pool.vectors(flat, rows);
    const all = await readVectorLog(seg, f);
    const out = new Float32Array(rows.length * dim);
    rows.forEach((r, i) => out.set(all.subarray(r * dim, (r + 1) * dim), i * dim));
    return out;
  };

  /**
   * A FLAT index of the field's raw vectors for `metric` in the pool (fields
   * without an index), made once per metric. The vectors come from the
   * main-thread column while the segment loads (handed over, then dropped
   * here), afterwards from another FLAT of the field or the binlog.
   */
  const flatHandle = (seg: LoadedSegment<H>, field: string, metric: Metric): Promise<H> => {
    const key = `${field}/${metric}`;
    let p = seg.flats.get(key);
    if (!p) {
      p = (async () => {
        const f = vectorField(seg, field);
        const dim = f.dim!;
        const held = seg.vectors(field);
        let data: Float32Array;
        if (held) data = held.data;
        else {
          const other = await someFlat(seg, field, key);
          data = other ? await pool.vectors(other, Int32Array.from({ length: seg.rowCount }, (_, i) => i)) : (await readVectorLog(seg, f)).slice();
        }
        const loading = pool.loadFlat(metric, data, dim, { transfer: true });
        // Posted (transferred when it spans its buffer): this thread's copy goes now.
        if (held) seg.dropVectors(field);
        const handle = await loading;
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
    return withSegments(b, ctx, async (schema, segs) => ({ results: await searchSegments({ pool, flatHandle, vectors: fetchVectors }, schema, segs, b) }));
  };

  const query = async (raw: QnQueryRequest, ctx: RequestContext): Promise<QnQueryReply> => {
    const b = clean(raw);
    return withSegments(b, ctx, (schema, segs) => querySegments({ vectors: fetchVectors }, schema, segs, b));
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
      await client.close();
    },
  };
};
