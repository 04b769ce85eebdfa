/**
 * indexes/* endpoints and load state. Index definitions live on the
 * collection record (rootcoord); builds are per segment (datacoord schedules,
 * indexnodes build), so describe reports progress from segment records.
 */
import * as Api from "../../schemas/api.ts";
import { DEFAULT_DATABASE, type IndexDefinition } from "../../schemas/collection.ts";
import { checkName, parseMetric } from "../../schemas/collectionCreate.ts";
import { IndexNotFound, InvalidParameter, MissingParameter } from "../../schemas/errors.ts";
import type { CollectionRecord } from "../../schemas/meta.ts";
import { metaKeys } from "../../schemas/names.ts";
import { indexBuiltAs, type SegmentRecord, type ShardCheckpoint } from "../../schemas/segment.ts";
import { decodeRequest } from "../../runtime/validate.ts";
import type { ProxyContext } from "./context.ts";
import type { Handler } from "./ddl.ts";

const INDEX_TYPES = ["AUTOINDEX", "FLAT", "HNSW", "IVF_FLAT", "IVF_SQ8"];

/** Flushed segments the checkpoints cover, not dropped. */
const committedSegments = async (ctx: ProxyContext, rec: CollectionRecord): Promise<SegmentRecord[]> => {
  const meta = ctx.cache.catalog.meta;
  const ckpts = new Map<number, number>();
  for (let s = 0; s < rec.shardsNum; s++) ckpts.set(s, (await meta.get<ShardCheckpoint>(metaKeys.checkpoint(rec.id, s)))?.value.seq ?? 0);
  const out: SegmentRecord[] = [];
  for (const k of await meta.keys(metaKeys.segmentsOf(rec.id))) {
    const r = (await meta.get<SegmentRecord>(k))?.value;
    if (r && r.state !== "Dropped" && r.walTo <= (ckpts.get(r.shard) ?? 0)) out.push(r);
  }
  return out;
};

/**
 * Rows indexed and total over committed segments, each row counted once: a compaction result
 * holds its sources' rows, and from the moment it is committed those rows' index is the
 * result's (its sources stay, served, until it is indexed and loaded in their place).
 */
export const indexProgress = (segments: readonly SegmentRecord[], def: IndexDefinition) => {
  const replaced = new Set(segments.flatMap((r) => r.compactedFrom ?? []));
  let indexedRows = 0;
  let totalRows = 0;
  for (const s of segments) {
    if (replaced.has(s.segmentId)) continue;
    totalRows += s.rowCount;
    if (indexBuiltAs(s.indexes[def.fieldName], def)) indexedRows += s.rowCount;
  }
  return { indexedRows, totalRows, pendingRows: totalRows - indexedRows };
};

export const loadState = async (ctx: ProxyContext, rec: CollectionRecord, fresh = false) => {
  const load = await ctx.cache.load(rec.id, fresh);
  if (load && !load.loaded) return { loadState: "LoadStateNotLoad", loadProgress: 0 };
  try {
    const r = await ctx.client.call(ctx.h.names.role("querycoord", "any", "loadState"), { collectionId: rec.id }, { timeoutMs: 5_000, retry: false });
    const d = r.data as { state: string; progress: number };
    return { loadState: d.state, loadProgress: d.progress };
  } catch {
    // No querycoord running: everything is served by the shards' owners.
    return { loadState: "LoadStateLoaded", loadProgress: 100 };
  }
};

const describeIndex = async (ctx: ProxyContext, rec: CollectionRecord, indexName: string) => {
  const def = rec.indexes.find((i) => i.indexName === indexName);
  if (!def) throw new IndexNotFound({ message: `index '${indexName}' not found in collection '${rec.name}'` });
  const { indexedRows, totalRows, pendingRows } = indexProgress(await committedSegments(ctx, rec), def);
  return {
    indexName: def.indexName,
    fieldName: def.fieldName,
    indexType: def.indexType,
    metricType: def.metricType,
    params: def.params,
    indexedRows,
    totalRows,
    pendingRows,
    indexState: pendingRows === 0 ? "Finished" : "InProgress",
  };
};

const db = (b: { dbName?: string }) => b.dbName ?? DEFAULT_DATABASE;

export const indexHandlers: Record<string, Handler> = {
  "indexes.create": async (body, ctx) => {
    const b = decodeRequest(Api.CreateIndexRequest, body);
    const rec = await ctx.cache.resolve(b.dbName, b.collectionName);
    if (b.indexParams.length === 0) throw new MissingParameter({ message: "missing required parameter 'indexParams'" });
    for (const p of b.indexParams) {
      const f = rec.schema.fields.find((x) => x.name === p.fieldName);
      if (!f) throw new InvalidParameter({ message: `indexParams: field '${p.fieldName}' does not exist in collection '${rec.name}'` });
      if (f.dataType !== "FloatVector") throw new InvalidParameter({ message: `indexParams: field '${p.fieldName}' is not a vector field` });
      const indexType = (p.indexType ?? "AUTOINDEX").toUpperCase();
      if (!INDEX_TYPES.includes(indexType)) throw new InvalidParameter({ message: `unknown index type '${p.indexType}' (supported: ${INDEX_TYPES.join(", ")})` });
      const indexName = checkName("index", p.indexName ?? p.fieldName);
      const index = { indexName, fieldName: p.fieldName, indexType, metricType: parseMetric(p.metricType, `indexParams for '${p.fieldName}'`), params: { ...(p.params ?? {}) } };
      await ctx.rootcoord("createIndex", { db: db(b), name: rec.name, index });
    }
    return { data: {} };
  },
  "indexes.describe": async (body, ctx) => {
    const b = decodeRequest(Api.IndexRequest, body);
    const rec = await ctx.cache.resolve(b.dbName, b.collectionName, true);
    return { data: [await describeIndex(ctx, rec, b.indexName)] };
  },
  "indexes.list": async (body, ctx) => {
    const b = decodeRequest(Api.CollectionOnly, body);
    const rec = await ctx.cache.resolve(b.dbName, b.collectionName, true);
    return { data: rec.indexes.map((i) => i.indexName) };
  },
  "indexes.drop": async (body, ctx) => {
    const b = decodeRequest(Api.IndexRequest, body);
    const rec = await ctx.cache.resolve(b.dbName, b.collectionName);
    await ctx.rootcoord("dropIndex", { db: db(b), name: rec.name, indexName: b.indexName });
    return { data: {} };
  },
};
