/**
 * streamingnode: claims shards (a lease per shard in `natsvec-leases`),
 * recovers each from its WAL subject, then serves it on
 * `<root>.shard.<collectionId>.<shard>.<verb>` as the shard's single writer.
 * Watches collection records in the meta KV to learn of new, changed and
 * dropped collections; retries unclaimed shards so a dead owner's shards are
 * taken over once its lease expires.
 */
import { leaseKeys, metaKeys } from "../../schemas/names.ts";
import type { CollectionRecord } from "../../schemas/meta.ts";
import { serveEndpoints, type Endpoint, type ServedEndpoints } from "../../runtime/host.ts";
import { tryAcquireLease, type Lease } from "../../runtime/lease.ts";
import { log } from "../../runtime/log.ts";
import { RequestClient } from "../../runtime/client.ts";
import type { NatsHandles, NatsvecConfig } from "../../runtime/services.ts";
import type { Storage } from "../../runtime/storage.ts";
import { packMsgpack } from "../../runtime/codec.ts";
import { ROOTCOORD_VERBS, type AllocIdsReply, type TsoReply } from "../rootcoord/protocol.ts";
import type { ServingView, ShardCheckpoint } from "../../schemas/segment.ts";
import { ObjectStoreBlobs } from "../../runtime/blob.ts";
import { publishTask } from "../../runtime/tasks.ts";
import { Shard } from "./shard.ts";
import { loadFlushedKeys } from "./flushed.ts";
import {
  SHARD_VERBS,
  type GetRequest,
  type PositionRequest,
  type PrepareRequest,
  type QueryRequest,
  type SearchRequest,
  type WriteRequest,
} from "./protocol.ts";

export * from "./protocol.ts";

interface Owned {
  shard: Shard;
  lease: Lease;
  served?: ServedEndpoints;
  unwatch: (() => void)[];
}

export interface StreamingNodeHandle {
  /** Resolves once every shard known at start-up is claimed by someone and ours are recovered. */
  readonly ready: Promise<void>;
  /** Shards served by this node, as `collectionId/shard`. */
  owned(): string[];
  stop(): Promise<void>;
}

const HEADROOM_BYTES = 16 * 1024;

export const startStreamingNode = (h: NatsHandles, storage: Storage, config: NatsvecConfig): StreamingNodeHandle => {
  const client = new RequestClient(h.nc, config.requestTimeoutMs, config.localDelivery);
  const collections = new Map<number, CollectionRecord>(); // id -> record
  const keyToId = new Map<string, number>();
  const owned = new Map<string, Owned>(); // "id/shard"
  const claiming = new Set<string>();
  let stopped = false;

  const tso = async (): Promise<bigint> =>
    ((await client.call(h.names.role("rootcoord", "any", ROOTCOORD_VERBS.tso), {}, { timeoutMs: 10_000 })).data as TsoReply).ts;
  const allocSegmentId = async (): Promise<number> =>
    Number(((await client.call(h.names.role("rootcoord", "any", ROOTCOORD_VERBS.allocIds), { count: 1 }, { timeoutMs: 10_000 })).data as AllocIdsReply).start);
  const blobs = new ObjectStoreBlobs(storage.segments);
  const sealPolicy = { maxRows: config.segmentMaxRows, maxBytes: config.segmentMaxBytes, idleMs: config.segmentIdleMs };

  const release = async (key: string) => {
    const o = owned.get(key);
    if (!o) return;
    owned.delete(key);
    for (const u of o.unwatch) u();
    o.shard.stop();
    await o.served?.stop();
    await o.lease.release();
  };

  const endpointsFor = (shard: Shard, collectionId: number, s: number): Endpoint[] => {
    const ep = (verb: string, fn: (body: any) => Promise<unknown> | unknown): Endpoint => ({
      subject: h.names.shard(collectionId, s, verb),
      queue: "shard",
      handle: async (body) => ({ data: await fn(body) }),
    });
    return [
      ep(SHARD_VERBS.prepare, (b: PrepareRequest) => shard.prepare(b)),
      ep(SHARD_VERBS.abort, (b: PrepareRequest) => shard.abort(b)),
      ep(SHARD_VERBS.write, (b: WriteRequest) => shard.write(b.write)),
      ep(SHARD_VERBS.search, (b: SearchRequest) => shard.search(b)),
      ep(SHARD_VERBS.query, (b: QueryRequest) => shard.query(b)),
      ep(SHARD_VERBS.get, (b: GetRequest) => shard.get(b)),
      ep(SHARD_VERBS.stats, () => ({ ...shard.stats(), partitions: shard.partitionRowCounts() })),
      ep(SHARD_VERBS.position, (b: PositionRequest) => shard.position(b.guaranteeTs)),
      ep(SHARD_VERBS.flush, () => shard.flush()),
    ];
  };

  const claim = async (rec: CollectionRecord, s: number) => {
    const key = `${rec.id}/${s}`;
    if (owned.has(key) || claiming.has(key) || stopped) return;
    claiming.add(key);
    try {
      const lease = await tryAcquireLease(storage.leases, leaseKeys.shard(rec.id, s), config.nodeId, config.leaseTtlMs, () => {
        log.warn(`streamingnode ${config.nodeId}: lost shard ${key}`);
        void release(key);
      });
      if (!lease) return;
      const shard = new Shard(rec, s, {
        wal: storage.wal,
        walSubject: h.names.wal(rec.id, s),
        tso,
        allocSegmentId,
        publishFlush: async (task) => {
          await publishTask(h, task);
        },
        loadFlushed: () => loadFlushedKeys(storage.meta, blobs, rec, s),
        maxEntryBytes: h.maxPayload - HEADROOM_BYTES,
        consistencyWaitMs: config.consistencyWaitMs,
        sealPolicy,
        onFenced: () => void release(key),
      });
      const o: Owned = { shard, lease, unwatch: [] };
      owned.set(key, o);
      await shard.recover();
      o.unwatch.push(
        await storage.meta.watch<ShardCheckpoint>(metaKeys.checkpoint(rec.id, s), (_k, v) => v && shard.onCheckpoint(v.seq)),
        await storage.meta.watch<ServingView>(metaKeys.view(rec.id), (_k, v) => v && shard.onView(v)),
      );
      if (lease.lost || owned.get(key) !== o || stopped) return;
      const latest = collections.get(rec.id);
      if (!latest) {
        await release(key);
        return;
      }
      shard.updateRecord(latest);
      o.served = serveEndpoints(h, endpointsFor(shard, rec.id, s), `streamingnode shard ${key}`);
    } catch (e) {
      log.error(`streamingnode ${config.nodeId}: claiming shard ${key} failed`, e);
      await release(key).catch(() => undefined);
    } finally {
      claiming.delete(key);
    }
  };

  const claimAll = async () => {
    const jobs: Promise<void>[] = [];
    for (const rec of collections.values()) for (let s = 0; s < rec.shardsNum; s++) jobs.push(claim(rec, s));
    await Promise.all(jobs);
  };

  const onRecord = (key: string, rec: CollectionRecord | undefined) => {
    if (rec) {
      const prevId = keyToId.get(key);
      keyToId.set(key, rec.id);
      collections.set(rec.id, rec);
      if (prevId !== undefined && prevId !== rec.id) dropCollection(prevId);
      for (const [k, o] of owned) if (k.startsWith(`${rec.id}/`)) o.shard.updateRecord(rec);
      for (let s = 0; s < rec.shardsNum; s++) void claim(rec, s);
      return;
    }
    const id = keyToId.get(key);
    keyToId.delete(key);
    // A rename deletes the old key after writing the new one: the id lives on under another key.
    if (id !== undefined && ![...keyToId.values()].includes(id)) dropCollection(id);
  };

  const dropCollection = (id: number) => {
    collections.delete(id);
    for (const k of [...owned.keys()]) if (k.startsWith(`${id}/`)) void release(k);
  };

  // Time ticks: an idle shard announces its serviceable timestamp.
  const tickTimer = setInterval(async () => {
    if (owned.size === 0) return;
    let ts: bigint;
    try {
      ts = await tso();
    } catch {
      return;
    }
    for (const o of owned.values()) {
      const serviceable = o.shard.tick(ts);
      if (serviceable !== undefined)
        h.nc.publish(h.names.timeTick(o.shard.collectionId, o.shard.shard), packMsgpack({ ts: serviceable, node: config.nodeId }));
    }
  }, config.timeTickMs);
  tickTimer.unref();
  const claimTimer = setInterval(() => void claimAll(), Math.max(200, config.leaseTtlMs / 4));
  claimTimer.unref();

  let stopWatch: (() => void) | undefined;
  const ready = (async () => {
    // Initial state first, so `ready` means every existing collection was considered.
    for (const key of await storage.meta.keys(metaKeys.collectionPrefix())) {
      const r = await storage.meta.get<CollectionRecord>(key);
      if (r) {
        keyToId.set(key, r.value.id);
        collections.set(r.value.id, r.value);
      }
    }
    await claimAll();
    stopWatch = await storage.meta.watch<CollectionRecord>(metaKeys.collectionPrefix(), onRecord);
    log.info(`streamingnode ${config.nodeId}: serving ${owned.size} shards`);
  })();

  return {
    ready,
    owned: () => [...owned.entries()].filter(([, o]) => o.served).map(([k]) => k),
    async stop() {
      stopped = true;
      clearInterval(tickTimer);
      clearInterval(claimTimer);
      stopWatch?.();
      await Promise.all([...owned.keys()].map(release));
      await client.close();
    },
  };
};
