/**
 * Reads fan out to the shards' owners (growing and not-yet-handed-off sealed
 * data) and to the query nodes the serving view names (sealed data). The
 * shards are told which sealed segments the query nodes cover, so every row
 * is read exactly once; if a shard or query node says the view is outdated
 * (a handoff happened since), the read is redone with a fresh view.
 */
import { CollectionNotLoaded, PartitionNotLoaded, StaleView } from "../../schemas/errors.ts";
import type { CollectionRecord } from "../../schemas/meta.ts";
import type { SegmentRecord, ServingView } from "../../schemas/segment.ts";
import type { ProxyContext } from "./context.ts";
import { log } from "../../runtime/log.ts";
import { shardOf } from "../../engine/hash.ts";
import { SHARD_VERBS, type Pk, type QueryReply } from "../streamingnode/protocol.ts";

export interface ReadPlan {
  readonly viewVersion: number;
  /** Sealed segments read from query nodes (the shards skip them). */
  readonly servingSegments: number[];
  /** Query node -> its segments for this read. */
  readonly byNode: Map<string, number[]>;
}

export const planFromView = (view: ServingView | undefined, partitionIds: readonly number[] | undefined): ReadPlan => {
  const byNode = new Map<string, number[]>();
  const servingSegments: number[] = [];
  const parts = partitionIds ? new Set(partitionIds) : undefined;
  for (const [idText, seg] of Object.entries(view?.segments ?? {})) {
    if (seg.state !== "serving") continue;
    const id = Number(idText);
    servingSegments.push(id);
    // A serving compaction result covers its sources: nobody else may read them too.
    for (const src of seg.compactedFrom ?? []) servingSegments.push(src);
    if (parts && !parts.has(seg.partitionId)) continue;
    const l = byNode.get(seg.node) ?? [];
    l.push(id);
    byNode.set(seg.node, l);
  }
  return { viewVersion: view?.version ?? 0, servingSegments, byNode };
};

/** Refuse reads of released collections/partitions (Milvus codes 101 / 201). */
export const requireLoaded = async (ctx: ProxyContext, rec: CollectionRecord, partitionIds: readonly number[] | undefined) => {
  const load = await ctx.cache.load(rec.id);
  if (load && !load.loaded) throw new CollectionNotLoaded({ message: `collection '${rec.name}' is not loaded; call collections/load first` });
  if (load && load.partitionIds.length > 0) {
    const loaded = new Set(load.partitionIds);
    const want = partitionIds ?? rec.partitions.map((p) => p.partitionId);
    const missing = want.filter((p) => !loaded.has(p));
    if (partitionIds && missing.length > 0) {
      const names = rec.partitions.filter((p) => missing.includes(p.partitionId)).map((p) => p.name);
      throw new PartitionNotLoaded({ message: `partition${names.length > 1 ? "s" : ""} ${names.join(", ")} of '${rec.name}' not loaded` });
    }
    return partitionIds ?? [...loaded];
  }
  return partitionIds;
};

/**
 * Sealed segments a read did not cover: committed (flushed, not dropped) in the partitions read,
 * yet neither served by a query node in the plan nor held by its shard. A compaction result
 * is covered while all its sources are served. Empty = every row was read.
 */
export const uncovered = (
  committed: readonly SegmentRecord[],
  plan: ReadPlan,
  held: ReadonlySet<number>,
  partitionIds: readonly number[] | undefined,
): number[] => {
  const serving = new Set(plan.servingSegments);
  const parts = partitionIds ? new Set(partitionIds) : undefined;
  const out: number[] = [];
  for (const s of committed) {
    if (parts && !parts.has(s.partitionId)) continue;
    if (serving.has(s.segmentId) || held.has(s.segmentId)) continue;
    if (s.compactedFrom?.length && s.compactedFrom.every((id) => serving.has(id) || held.has(id))) continue;
    out.push(s.segmentId);
  }
  return out;
};

/**
 * Run `read` with a plan from the cached view; when a part answers that its view is outdated, or
 * some sealed segment was read from nowhere (its query node died, or it is still loading after a
 * release), redo it with a fresh view until the deadline.
 */
export const withReadPlan = async <T extends { held?: number[] }>(
  ctx: ProxyContext,
  rec: CollectionRecord,
  partitionIds: readonly number[] | undefined,
  deadlineMs: number,
  read: (plan: ReadPlan) => Promise<T[]>,
): Promise<T[]> => {
  let fresh = false;
  // Waiting for a query node to (re)load a segment is bounded like a consistency wait.
  const coverageDeadline = Math.min(deadlineMs, Date.now() + ctx.config.consistencyWaitMs);
  for (;;) {
    const plan = planFromView(await ctx.cache.view(rec.id, fresh), partitionIds);
    let missing: number[] = [];
    try {
      const replies = await read(plan);
      const held = new Set(replies.flatMap((r) => r.held ?? []));
      missing = uncovered(ctx.cache.committedSegments(rec.id), plan, held, partitionIds);
      if (missing.length === 0) return replies;
      log.debug(`proxy: read of '${rec.name}' missed segments ${missing.join(", ")} (view ${plan.viewVersion}); retrying`);
    } catch (e) {
      if (!(e instanceof StaleView) || Date.now() >= deadlineMs) throw e;
      log.debug(`proxy: read of '${rec.name}': ${e.message}; retrying`);
    }
    if (Date.now() >= coverageDeadline)
      throw new CollectionNotLoaded({
        message: `collection '${rec.name}' is loading: sealed segment${missing.length > 1 ? "s" : ""} ${missing.slice(0, 10).join(", ")} not served by any query node yet`,
      });
    fresh = true;
    await new Promise((r) => setTimeout(r, 50));
  }
};

export interface PageRead {
  filter?: string;
  exprParams?: Record<string, unknown>;
  outputFields: string[];
  k: number;
  countOnly?: boolean;
  pks?: Pk[];
  guaranteeTs?: bigint;
}

/** A query over growing data (shards) and sealed data (query nodes), each page sorted by key. */
export const readAll = (ctx: ProxyContext, rec: CollectionRecord, pidList: readonly number[] | undefined, deadlineMs: number, r: PageRead): Promise<QueryReply[]> =>
  withReadPlan(ctx, rec, pidList, deadlineMs, (plan) => {
    const pids = pidList ? [...pidList] : undefined;
    const common = { collectionId: rec.id, filter: r.filter, exprParams: r.exprParams, outputFields: r.outputFields, partitionIds: pids, guaranteeTs: r.guaranteeTs, k: r.k, countOnly: r.countOnly };
    const shardParts = r.pks
      ? [...groupByShard(rec, r.pks)].map(([s, list]) =>
          ctx.shard<QueryReply>(rec.id, s, SHARD_VERBS.get, { ...common, pks: list, servingSegments: plan.servingSegments, viewVersion: plan.viewVersion }, deadlineMs),
        )
      : Array.from({ length: rec.shardsNum }, (_, s) =>
          ctx.shard<QueryReply>(rec.id, s, SHARD_VERBS.query, { ...common, servingSegments: plan.servingSegments, viewVersion: plan.viewVersion }, deadlineMs),
        );
    return Promise.all([
      ...shardParts,
      ...[...plan.byNode].map(([node, segmentIds]) => ctx.querynode<QueryReply>(node, "query", { ...common, segmentIds, ...(r.pks ? { pks: r.pks } : {}) }, deadlineMs)),
    ]);
  });

export const groupByShard = (rec: CollectionRecord, pks: readonly Pk[]): Map<number, Pk[]> => {
  const m = new Map<number, Pk[]>();
  for (const pk of pks) {
    const s = shardOf(pk, rec.shardsNum);
    const l = m.get(s);
    if (l) l.push(pk);
    else m.set(s, [pk]);
  }
  return m;
};

