/**
 * querycoord: decides which query node serves which sealed segment. One
 * active instance (the holder of the `querycoord` lease). It keeps an
 * in-memory copy of the load records, segment records, shard checkpoints,
 * collection records and serving views (snapshot, then KV watches), polls the
 * query nodes' heartbeats, and rewrites a collection's serving view (CAS, see
 * balance.ts for the rules) whenever any of them changes.
 *
 * Query nodes flip their own entries from `loading` to `serving` once a
 * segment is loaded and caught up on deletes (actors/querynode); querycoord
 * only assigns, moves and retires entries.
 */
import { InvalidParameter } from "../../schemas/errors.ts";
import type { CollectionRecord } from "../../schemas/meta.ts";
import { metaKeys, nodeKeys } from "../../schemas/names.ts";
import type { LoadRecord, SegmentRecord, ServingView, ShardCheckpoint } from "../../schemas/segment.ts";
import { Catalog } from "../../runtime/catalog.ts";
import { serveEndpoints, type ServedEndpoints } from "../../runtime/host.ts";
import { tryAcquireLease, type Lease } from "../../runtime/lease.ts";
import { log } from "../../runtime/log.ts";
import type { NatsHandles, NatsvecConfig } from "../../runtime/services.ts";
import type { Storage } from "../../runtime/storage.ts";
import { loadProgress, planView, rowsByNode, type PlanInput } from "./balance.ts";
import { QUERYCOORD_VERBS, type LoadStateReply, type LoadStateRequest } from "./protocol.ts";

export * from "./protocol.ts";
export type { LoadStateName } from "./balance.ts";

/** Lease key of the active querycoord (like rootcoord's). */
const LEASE_KEY = "querycoord";
/** Every collection is re-planned this often even without a change event (safety net). */
const SWEEP_MS = 5_000;

export interface QuerycoordHandle {
  /** Resolves after the first try for the lease: active, or standby retrying in the background. */
  readonly ready: Promise<void>;
  /** Whether this instance currently holds the lease. */
  active(): boolean;
  stop(): Promise<void>;
}

/** In-memory copy of the meta records querycoord plans from. */
class MetaCache {
  readonly loads = new Map<number, LoadRecord>();
  readonly collections = new Map<number, CollectionRecord>();
  readonly collectionKeyToId = new Map<string, number>();
  readonly segments = new Map<number, Map<number, SegmentRecord>>();
  readonly checkpoints = new Map<number, Map<number, number>>();
  readonly views = new Map<number, ServingView>();

  /** Apply one KV entry; returns the collection it concerns (undefined if none). */
  apply(key: string, value: unknown): number | undefined {
    const parts = key.split(".");
    const kind = parts[0];
    if (kind === "coll") {
      const rec = value as CollectionRecord | undefined;
      if (rec) {
        this.collectionKeyToId.set(key, rec.id);
        this.collections.set(rec.id, rec);
        return rec.id;
      }
      const id = this.collectionKeyToId.get(key);
      this.collectionKeyToId.delete(key);
      // A rename writes the new key before deleting the old one: the id lives on under it.
      if (id !== undefined && ![...this.collectionKeyToId.values()].includes(id)) this.collections.delete(id);
      return id;
    }
    const c = Number(parts[1]);
    if (!Number.isInteger(c)) return undefined;
    if (kind === "load") {
      if (value) this.loads.set(c, value as LoadRecord);
      else this.loads.delete(c);
    } else if (kind === "view") {
      if (value) this.views.set(c, value as ServingView);
      else this.views.delete(c);
    } else if (kind === "seg") {
      const s = Number(parts[2]);
      let m = this.segments.get(c);
      if (value) {
        if (!m) this.segments.set(c, (m = new Map()));
        m.set(s, value as SegmentRecord);
      } else m?.delete(s);
    } else if (kind === "ckpt") {
      const shard = Number(parts[2]);
      let m = this.checkpoints.get(c);
      if (value) {
        if (!m) this.checkpoints.set(c, (m = new Map()));
        m.set(shard, (value as ShardCheckpoint).seq);
      } else m?.delete(shard);
    } else return undefined;
    return c;
  }

  collectionIds(): number[] {
    return [...new Set([...this.loads.keys(), ...this.views.keys()])].sort((a, b) => a - b);
  }
}

const WATCHED = [metaKeys.collectionPrefix(), metaKeys.loadPrefix(), metaKeys.segmentPrefix(), metaKeys.checkpointPrefix(), metaKeys.viewPrefix()];

export const startQuerycoord = (h: NatsHandles, storage: Storage, config: NatsvecConfig): QuerycoordHandle => {
  const meta = storage.meta;
  const catalog = new Catalog(meta);
  let cache = new MetaCache();
  let liveNodes: string[] = [];
  let lease: Lease | undefined;
  let served: ServedEndpoints | undefined;
  let stopWatches: (() => void)[] = [];
  let timers: NodeJS.Timeout[] = [];
  let leading = false;
  let stopped = false;

  // ------------------------------------------------------------------ planning

  const inputFor = (c: number): PlanInput => {
    const coll = cache.collections.get(c);
    const vectorFields = new Set(coll?.schema.fields.filter((f) => f.dataType === "FloatVector").map((f) => f.name) ?? []);
    const otherLoad = new Map<string, number>();
    for (const [id, v] of cache.views) {
      if (id === c) continue;
      for (const [node, rows] of rowsByNode(v.segments)) otherLoad.set(node, (otherLoad.get(node) ?? 0) + rows);
    }
    return {
      collectionId: c,
      load: cache.loads.get(c),
      collectionExists: coll !== undefined,
      partitionIds: coll?.partitions.map((p) => p.partitionId as number),
      indexedFields: [...new Set(coll?.indexes.filter((i) => vectorFields.has(i.fieldName)).map((i) => i.fieldName) ?? [])],
      segments: cache.segments.get(c) ?? new Map(),
      checkpoints: cache.checkpoints.get(c) ?? new Map(),
      liveNodes,
      otherLoad,
    };
  };

  const reconcile = async (c: number) => {
    const written = await meta.mutate<ServingView>(metaKeys.view(c), (cur) => planView(cur, inputFor(c)));
    if (written) cache.views.set(c, written);
  };

  // Dirty collections are re-planned one at a time, in order of arrival.
  const dirty = new Set<number>();
  let pumping = false;
  const markDirty = (c: number | undefined) => {
    if (c === undefined || !leading) return;
    dirty.add(c);
    void pump();
  };
  const pump = async () => {
    if (pumping) return;
    pumping = true;
    try {
      while (dirty.size > 0 && leading) {
        const c = dirty.values().next().value as number;
        dirty.delete(c);
        try {
          await reconcile(c);
        } catch (e) {
          log.error(`querycoord: planning the serving view of collection ${c} failed (retried by the next sweep)`, e);
        }
      }
    } finally {
      pumping = false;
    }
  };
  const markAll = () => {
    for (const c of cache.collectionIds()) markDirty(c);
  };

  const pollNodes = async () => {
    const prefix = nodeKeys.node("querynode", "");
    // A Set: a key updated (heartbeat) while the listing runs can come back twice.
    const seen = new Set<string>();
    for await (const k of await storage.nodes.keys(`${prefix}*`)) seen.add(k.slice(prefix.length));
    const found = [...seen].sort();
    if (found.join(",") === liveNodes.join(",")) return;
    const gone = liveNodes.filter((n) => !found.includes(n));
    const joined = found.filter((n) => !liveNodes.includes(n));
    liveNodes = found;
    log.info(`querycoord: query nodes ${found.join(", ") || "(none)"}${gone.length ? `; gone: ${gone.join(", ")}` : ""}${joined.length ? `; joined: ${joined.join(", ")}` : ""}`);
    markAll();
  };

  // ------------------------------------------------------------------ endpoints

  const loadState = async (b: LoadStateRequest): Promise<LoadStateReply> => {
    const c = b?.collectionId;
    if (!Number.isInteger(c)) throw new InvalidParameter({ message: `collectionId must be an integer, got ${JSON.stringify(c)}` });
    // Load record, collection and view read fresh: a caller that just loaded must not see stale state.
    const [load, coll, view] = await Promise.all([
      meta.get<LoadRecord>(metaKeys.load(c)),
      catalog.collectionById(c),
      meta.get<ServingView>(metaKeys.view(c)),
    ]);
    const input: PlanInput = { ...inputFor(c), load: load?.value, collectionExists: coll !== undefined };
    return { ...loadProgress(view?.value, input) };
  };

  // ------------------------------------------------------------------ leadership

  const becomeLeader = async () => {
    // Snapshot first, so no view is planned from half the state (which would retire served segments).
    const fresh = new MetaCache();
    for (const prefix of WATCHED) {
      for (const key of await meta.keys(prefix)) {
        const r = await meta.get<unknown>(key);
        if (r) fresh.apply(key, r.value);
      }
    }
    cache = fresh;
    await pollNodes().catch((e) => log.warn(`querycoord: listing query nodes failed: ${(e as Error).message}`));
    leading = true;
    // Watches replay current values (harmless) and then every change.
    for (const prefix of WATCHED) stopWatches.push(await meta.watch<unknown>(prefix, (key, value) => markDirty(cache.apply(key, value))));
    const nodeTimer = setInterval(
      () => void pollNodes().catch((e) => log.warn(`querycoord: listing query nodes failed: ${(e as Error).message}`)),
      config.heartbeatMs,
    );
    const sweepTimer = setInterval(markAll, SWEEP_MS);
    nodeTimer.unref();
    sweepTimer.unref();
    timers = [nodeTimer, sweepTimer];
    served = serveEndpoints(
      h,
      [{ subject: h.names.role("querycoord", "any", QUERYCOORD_VERBS.loadState), queue: "querycoord", handle: async (b) => ({ data: await loadState(b as LoadStateRequest) }) }],
      "querycoord",
    );
    markAll();
    log.info(`querycoord ${config.nodeId}: active`);
  };

  const stepDown = async () => {
    leading = false;
    for (const t of timers) clearInterval(t);
    timers = [];
    for (const s of stopWatches) s();
    stopWatches = [];
    dirty.clear();
    const s = served;
    served = undefined;
    await s?.stop();
  };

  const tryLead = async (): Promise<boolean> => {
    lease = await tryAcquireLease(storage.leases, LEASE_KEY, config.nodeId, config.leaseTtlMs, () => {
      // Lost the lease: stop planning at once, then compete again as a standby.
      void stepDown().then(() => void campaign());
    });
    if (!lease) return false;
    if (stopped) {
      await lease.release();
      lease = undefined;
      return false;
    }
    try {
      await becomeLeader();
    } catch (e) {
      log.error(`querycoord ${config.nodeId}: taking over failed`, e);
      await stepDown();
      await lease.release();
      lease = undefined;
      return false;
    }
    return true;
  };

  const campaign = async () => {
    while (!stopped) {
      if (await tryLead().catch(() => false)) return;
      await new Promise((r) => setTimeout(r, Math.max(100, config.leaseTtlMs / 3)));
    }
  };

  const ready = (async () => {
    if (!(await tryLead().catch(() => false))) void campaign();
  })();

  return {
    ready,
    active: () => leading,
    async stop() {
      stopped = true;
      await ready;
      await stepDown();
      await lease?.release();
    },
  };
};
