/**
 * Public DML and read endpoints (`entities/*`). The whole request is
 * validated here before any shard sees it; rows are routed to shards by
 * hash(pk); reads fan out to every shard and are merged.
 */
import { randomBytes } from "node:crypto";
import * as Api from "../../schemas/api.ts";
import { MAX_TOPK, fieldByName, primaryField, vectorFields, type CollectionSchema, type MetricType } from "../../schemas/collection.ts";
import { parseMetric } from "../../schemas/collectionCreate.ts";
import { InvalidParameter, MissingParameter, PrimaryKeyConflict } from "../../schemas/errors.ts";
import type { CollectionRecord } from "../../schemas/meta.ts";
import { encodeBatch, takeRows, type RowBatch } from "../../engine/columns.ts";
import { columnsToBatch, pkValues, resolveOutputFields, rowsToBatch } from "../../engine/rows.ts";
import { duplicateKeys, keyColumnOfBatch } from "../../engine/pkmap.ts";
import { shardOf } from "../../engine/hash.ts";
import { compileOptionalFilter, FilterError } from "../../engine/expr/index.ts";
import { decodeRequest } from "../../runtime/validate.ts";
import type { ReplyBody } from "../../runtime/host.ts";
import {
  SHARD_VERBS,
  type Pk,
  type QueryReply,
  type SearchHit,
  type SearchReply,
  type WriteOp,
  type WriteReply,
} from "../streamingnode/protocol.ts";
import type { AllocIdsReply } from "../rootcoord/protocol.ts";
import { partitionId, partitionIds, toPk, type ProxyContext } from "./context.ts";
import { bestPerGroup, fuse, mergeQueryPages, mergeSearchHits, parseRanker } from "./reduce.ts";
import { groupByShard, readAll, requireLoaded, withReadPlan } from "./fanout.ts";
import { notSupportedYet, type Handler } from "./ddl.ts";

const DEFAULT_SEARCH_LIMIT = 100;
const DEFAULT_QUERY_LIMIT_NO_FILTER = 100;
const COUNT_STAR = "count(*)";

const checkFilter = (schema: CollectionSchema, filter: string | undefined, params: Record<string, unknown> | undefined) => {
  try {
    compileOptionalFilter(filter, schema, params);
  } catch (e) {
    if (e instanceof FilterError) throw new InvalidParameter({ message: e.message });
    throw e;
  }
};

const checkPage = (limit: number, offset: number) => {
  if (limit < 1 || limit > MAX_TOPK) throw new InvalidParameter({ message: `limit must be in [1, ${MAX_TOPK}], got ${limit}` });
  if (offset < 0) throw new InvalidParameter({ message: `offset must be >= 0, got ${offset}` });
  if (limit + offset > MAX_TOPK) throw new InvalidParameter({ message: `limit + offset must be <= ${MAX_TOPK}, got ${limit + offset}` });
};

/** Split a batch by owning shard; returns [shard, sub-batch] pairs. */
const splitByShard = (rec: CollectionRecord, batch: RowBatch, pks: readonly Pk[]): [number, RowBatch][] => {
  if (rec.shardsNum === 1) return [[0, batch]];
  const rows = new Map<number, number[]>();
  pks.forEach((pk, i) => {
    const s = shardOf(pk, rec.shardsNum);
    const l = rows.get(s) ?? [];
    l.push(i);
    rows.set(s, l);
  });
  return [...rows.entries()].map(([s, r]) => [s, takeRows(batch, r)]);
};

const fmtPks = (pks: readonly Pk[]) =>
  pks
    .slice(0, 20)
    .map((p) => (typeof p === "string" ? JSON.stringify(p) : p.toString()))
    .join(", ") + (pks.length > 20 ? ` and ${pks.length - 20} more` : "");

interface PreparedSearch {
  field: string;
  metric: MetricType;
  queries: Float32Array[];
  params: Record<string, number>;
  fields: string[];
  filter?: string;
  exprParams?: Record<string, unknown>;
}

/** Validate one (sub-)search against the schema: vector field, vectors, metric, params, filter, outputs. */
const prepareSearch = async (
  _ctx: ProxyContext,
  rec: CollectionRecord,
  b: { data: readonly unknown[]; annsField?: string; filter?: string; exprParams?: Record<string, unknown>; searchParams?: { metricType?: string; params?: Record<string, unknown> } },
  outputFields: readonly string[] | undefined,
  where = "",
): Promise<PreparedSearch> => {
  const field = vectorField(rec.schema, b.annsField);
  if (b.data.length === 0) throw new InvalidParameter({ message: `${where}data must hold at least one query vector` });
  if (b.data.length > 1024) throw new InvalidParameter({ message: `${where}data: at most 1024 query vectors per search, got ${b.data.length}` });
  const queries = b.data.map((v, i) => toQueryVector(v, field.dim!, i));
  const index = rec.indexes.find((i) => i.fieldName === field.name);
  const requested = b.searchParams?.metricType;
  let metric: MetricType = parseMetric(requested, `${where}searchParams.metricType`, index?.metricType ?? "COSINE");
  if (index && requested !== undefined && metric !== index.metricType)
    throw new InvalidParameter({ message: `${where}searchParams.metricType ${metric} does not match the index metric ${index.metricType} of field '${field.name}'` });
  metric = index?.metricType ?? metric;
  const params = checkSearchParams(b.searchParams?.params);
  const { fields } = outputPlan(rec.schema, outputFields?.filter((f) => f !== "distance"), false);
  checkFilter(rec.schema, b.filter, b.exprParams);
  return { field: field.name, metric, queries, params, fields, filter: b.filter, exprParams: b.exprParams };
};

/** One search over growing and sealed data; per query, hits best first, each key once. */
const runSearch = async (
  ctx: ProxyContext,
  rec: CollectionRecord,
  sub: PreparedSearch,
  pids: readonly number[] | undefined,
  guaranteeTs: bigint | undefined,
  k: number,
  deadlineMs: number,
): Promise<SearchHit[][]> => {
  const common = {
    collectionId: rec.id,
    field: sub.field,
    metric: sub.metric,
    queries: sub.queries,
    k,
    filter: sub.filter,
    exprParams: sub.exprParams,
    outputFields: sub.fields,
    partitionIds: pids ? [...pids] : undefined,
    guaranteeTs,
  };
  const replies = await withReadPlan(ctx, rec, pids, deadlineMs, (plan) =>
    Promise.all([
      ...Array.from({ length: rec.shardsNum }, (_, s) =>
        ctx.shard<SearchReply>(rec.id, s, SHARD_VERBS.search, { ...common, servingSegments: plan.servingSegments, viewVersion: plan.viewVersion }, deadlineMs),
      ),
      ...[...plan.byNode].map(([node, segmentIds]) => ctx.querynode<SearchReply>(node, "search", { ...common, segmentIds, params: sub.params }, deadlineMs)),
    ]),
  );
  return sub.queries.map((_, q) => mergeSearchHits(replies.map((r) => r.results[q]!), sub.metric, 0, k));
};

const groupingFieldOf = (schema: CollectionSchema, name: string): string => {
  const f = fieldByName(schema, name);
  if (!f) throw new InvalidParameter({ message: `groupingField '${name}' does not exist in the collection schema` });
  if (!["Bool", "Int8", "Int16", "Int32", "Int64", "VarChar"].includes(f.dataType))
    throw new InvalidParameter({ message: `groupingField '${name}' must be Bool, Int8..Int64 or VarChar, not ${f.dataType}` });
  return name;
};

/** Index search parameters: ef (HNSW) and nprobe (IVF), positive integers. */
const checkSearchParams = (params: Record<string, unknown> | undefined): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(params ?? {})) {
    if (k !== "ef" && k !== "nprobe") continue; // Milvus ignores parameters an index does not use
    const n = typeof v === "string" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 32768)
      throw new InvalidParameter({ message: `searchParams.params.${k} must be an integer in [1, 32768], got ${JSON.stringify(v)}` });
    out[k] = n;
  }
  return out;
};

const write = async (ctx: ProxyContext, body: unknown, mode: "insert" | "upsert", deadlineMs: number) => {
  const b = decodeRequest(Api.InsertRequest, body);
  // `data: Unknown` lets a missing key through the schema; it is a missing parameter, not bad data.
  if (b.data === undefined && b.columns === undefined) throw new MissingParameter({ message: "missing required parameter 'data' (the rows to write)" });
  if (b.data !== undefined && b.columns !== undefined) throw new InvalidParameter({ message: "give either data (rows) or columns, not both" });
  const rec = await ctx.cache.resolve(b.dbName, b.collectionName);
  const pid = partitionId(rec, b.partitionName);
  const pkField = primaryField(rec.schema);
  const autoIds = mode === "insert" && pkField.autoId;
  // AutoID keys are allocated once the whole batch is valid (placeholders until then).
  const rowsOpts = { mode, allocateIds: (n: number) => new Array<bigint>(n).fill(0n) };
  const batch = b.columns !== undefined ? columnsToBatch(rec.schema, b.columns, rowsOpts) : rowsToBatch(rec.schema, b.data, rowsOpts);
  if (autoIds) {
    const { start } = await ctx.rootcoord<AllocIdsReply>("allocIds", { count: batch.rowCount });
    const keys = (batch.columns[pkField.name] as { data: BigInt64Array }).data;
    for (let i = 0; i < batch.rowCount; i++) keys[i] = start + BigInt(i);
  }
  const pks = pkValues(rec.schema, batch);
  const dups = duplicateKeys(keyColumnOfBatch(batch, pkField.name));
  if (dups.length > 0)
    throw new PrimaryKeyConflict({ message: `primary key${dups.length > 1 ? "s" : ""} ${fmtPks(dups)} appear more than once in the batch; nothing was written` });
  const parts = splitByShard(rec, batch, pks);
  // An insert spanning shards reserves its keys on every shard first, so a conflict anywhere writes nothing.
  // Shards are prepared one at a time in shard order (lock ordering): of racing inserts of the same keys, the
  // first to reserve the lowest shard wins, and the others fail fast and release what they reserved.
  let txnId: string | undefined;
  if (mode === "insert" && !autoIds && parts.length > 1) {
    const id = randomBytes(8).toString("hex");
    txnId = id;
    const ordered = [...parts].sort((a, b) => a[0] - b[0]);
    const prepared: [number, Pk[]][] = [];
    try {
      for (const [s, sub] of ordered) {
        const subPks = pkValues(rec.schema, sub);
        await ctx.shard(rec.id, s, SHARD_VERBS.prepare, { collectionId: rec.id, txnId: id, pks: subPks }, deadlineMs);
        prepared.push([s, subPks]);
      }
    } catch (e) {
      await Promise.all(
        prepared.map(([s, subPks]) => ctx.shard(rec.id, s, SHARD_VERBS.abort, { collectionId: rec.id, txnId: id, pks: subPks }, deadlineMs).catch(() => undefined)),
      );
      throw e;
    }
  }
  const replies = await Promise.all(
    parts.map(([s, sub]) => {
      const op: WriteOp =
        mode === "insert" ? { op: "insert", partitionId: pid, batch: encodeBatch(sub), ...(txnId ? { txnId } : {}) } : { op: "upsert", partitionId: pid, batch: encodeBatch(sub) };
      return ctx.shard<WriteReply>(rec.id, s, SHARD_VERBS.write, { collectionId: rec.id, write: op }, deadlineMs);
    }),
  );
  const commitTs = replies.reduce((m, r) => (r.commitTs > m ? r.commitTs : m), 0n);
  return { pks, commitTs };
};

const vectorField = (schema: CollectionSchema, annsField: string | undefined) => {
  const vecs = vectorFields(schema);
  if (annsField === undefined) {
    if (vecs.length !== 1) throw new MissingParameter({ message: `annsField is required: the collection has ${vecs.length} vector fields (${vecs.map((v) => v.name).join(", ")})` });
    return vecs[0]!;
  }
  const f = fieldByName(schema, annsField);
  if (!f) throw new InvalidParameter({ message: `annsField '${annsField}' does not exist in the collection schema` });
  if (f.dataType !== "FloatVector") throw new InvalidParameter({ message: `annsField '${annsField}' is not a vector field` });
  return f;
};

const toQueryVector = (v: unknown, dim: number, i: number): Float32Array => {
  let out: Float32Array;
  if (v instanceof Float32Array) out = v;
  else if (v instanceof Uint8Array && !Array.isArray(v)) {
    if (v.length !== dim * 4) throw new InvalidParameter({ message: `data[${i}]: binary vector has ${v.length} bytes, expected ${dim * 4} (dim ${dim} float32)` });
    out = new Float32Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.length));
  } else if (Array.isArray(v)) {
    out = new Float32Array(v.length);
    for (let j = 0; j < v.length; j++) {
      const x = v[j];
      if (typeof x !== "number") throw new InvalidParameter({ message: `data[${i}][${j}] must be a number, got ${typeof x}` });
      out[j] = x;
    }
  } else throw new InvalidParameter({ message: `data[${i}] must be a vector (array of numbers)` });
  if (out.length !== dim) throw new InvalidParameter({ message: `data[${i}]: vector dimension ${out.length} does not match the field's dim ${dim}` });
  for (let j = 0; j < out.length; j++)
    if (!Number.isFinite(out[j]!)) throw new InvalidParameter({ message: `data[${i}][${j}] is not a finite number` });
  return out;
};

/** Output fields as the shards need them (without count(*)), and whether this is a count. */
const outputPlan = (schema: CollectionSchema, requested: readonly string[] | undefined, defaultAll: boolean) => {
  const wantsCount = requested?.includes(COUNT_STAR) ?? false;
  if (wantsCount && requested!.length > 1) throw new InvalidParameter({ message: `${COUNT_STAR} cannot be combined with other output fields` });
  if (wantsCount) return { countOnly: true, fields: [] as string[] };
  const fields = resolveOutputFields(schema, requested && requested.length > 0 ? requested : defaultAll ? ["*"] : []);
  const pk = primaryField(schema).name;
  return { countOnly: false, fields: fields.includes(pk) ? fields : [pk, ...fields] };
};

export const entityHandlers: Record<string, Handler> = {
  "entities.insert": async (body, ctx, deadlineMs) => {
    const { pks, commitTs } = await write(ctx, body, "insert", deadlineMs);
    return { data: { insertCount: pks.length, insertIds: pks, commitTs } };
  },
  "entities.upsert": async (body, ctx, deadlineMs) => {
    const { pks, commitTs } = await write(ctx, body, "upsert", deadlineMs);
    return { data: { upsertCount: pks.length, upsertIds: pks, commitTs } };
  },
  "entities.delete": async (body, ctx, deadlineMs) => {
    const b = decodeRequest(Api.DeleteRequest, body);
    const rec = await ctx.cache.resolve(b.dbName, b.collectionName);
    const pids = b.partitionName ? [partitionId(rec, b.partitionName)] : undefined;
    const hasFilter = b.filter !== undefined && b.filter.trim() !== "";
    if (!hasFilter && !b.ids) throw new MissingParameter({ message: "delete needs a filter (e.g. \"id in [1, 2]\") or ids" });
    if (hasFilter && b.ids) throw new InvalidParameter({ message: "give either filter or ids, not both" });
    let pks: Pk[];
    if (hasFilter) {
      checkFilter(rec.schema, b.filter, b.exprParams);
      // Like Milvus: the filter is resolved to keys (a Strong read over growing and sealed data), then deleted by key.
      const guaranteeTs = await ctx.guaranteeTs(rec, "Strong", undefined);
      const pages = await readAll(ctx, rec, pids, deadlineMs, { filter: b.filter, exprParams: b.exprParams, outputFields: [], k: Number.MAX_SAFE_INTEGER, guaranteeTs });
      pks = pages.flatMap((p) => p.pks);
    } else {
      pks = b.ids!.map((v, i) => toPk(rec.schema, v, `ids[${i}]`));
    }
    const byShard = new Map<number, Pk[]>();
    for (const pk of pks) {
      const s = shardOf(pk, rec.shardsNum);
      byShard.set(s, [...(byShard.get(s) ?? []), pk]);
    }
    const replies = await Promise.all(
      [...byShard].map(([s, list]) =>
        ctx.shard<WriteReply>(rec.id, s, SHARD_VERBS.write, { collectionId: rec.id, write: { op: "delete", pks: list, ...(pids ? { partitionIds: pids } : {}) } }, deadlineMs),
      ),
    );
    const commitTs = replies.reduce((m, r) => (r.commitTs > m ? r.commitTs : m), 0n);
    return { data: { deleteCount: replies.reduce((n, r) => n + r.count, 0), commitTs } };
  },
  "entities.get": async (body, ctx, deadlineMs) => {
    const b = decodeRequest(Api.GetRequest, body);
    const rec = await ctx.cache.resolve(b.dbName, b.collectionName);
    const ids = Array.isArray(b.id) ? b.id : [b.id];
    if (ids.length > MAX_TOPK) throw new InvalidParameter({ message: `at most ${MAX_TOPK} ids per get` });
    const pks = ids.map((v, i) => toPk(rec.schema, v, `id[${i}]`));
    const { fields } = outputPlan(rec.schema, b.outputFields, true);
    const pids = await requireLoaded(ctx, rec, partitionIds(rec, b.partitionNames));
    const guaranteeTs = await ctx.guaranteeTs(rec, b.consistencyLevel, b.guaranteeTs);
    const pages = await readAll(ctx, rec, pids, deadlineMs, { pks, outputFields: fields, k: pks.length, guaranteeTs });
    // Rows in the order the ids were asked for.
    const byPk = new Map<Pk, Record<string, unknown>>();
    for (const r of pages) r.pks.forEach((pk, i) => byPk.set(pk, r.rows[i]!));
    return { data: pks.map((pk) => byPk.get(pk)).filter((r) => r !== undefined) };
  },
  "entities.query": async (body, ctx, deadlineMs) => {
    const b = decodeRequest(Api.QueryRequest, body);
    const rec = await ctx.cache.resolve(b.dbName, b.collectionName);
    const hasFilter = b.filter !== undefined && b.filter.trim() !== "";
    const offset = b.offset ?? 0;
    const limit = b.limit ?? (hasFilter ? MAX_TOPK - offset : DEFAULT_QUERY_LIMIT_NO_FILTER);
    const { countOnly, fields } = outputPlan(rec.schema, b.outputFields, false);
    if (!countOnly) checkPage(limit, offset);
    checkFilter(rec.schema, b.filter, b.exprParams);
    const pids = await requireLoaded(ctx, rec, partitionIds(rec, b.partitionNames));
    const guaranteeTs = await ctx.guaranteeTs(rec, b.consistencyLevel, b.guaranteeTs);
    const pages = await readAll(ctx, rec, pids, deadlineMs, { filter: b.filter, exprParams: b.exprParams, outputFields: fields, k: offset + limit, countOnly, guaranteeTs });
    if (countOnly) return { data: [{ [COUNT_STAR]: pages.reduce((n, r) => n + r.count, 0) }] };
    return { data: mergeQueryPages(pages, offset, limit).map((x) => x.row) };
  },
  "entities.search": async (body, ctx, deadlineMs) => {
    const b = decodeRequest(Api.SearchRequest, body);
    const rec = await ctx.cache.resolve(b.dbName, b.collectionName);
    const limit = b.limit ?? DEFAULT_SEARCH_LIMIT;
    const offset = b.offset ?? 0;
    checkPage(limit, offset);
    const groupField = b.groupingField === undefined ? undefined : groupingFieldOf(rec.schema, b.groupingField);
    const sub = await prepareSearch(ctx, rec, b, b.outputFields);
    const pids = await requireLoaded(ctx, rec, partitionIds(rec, b.partitionNames));
    const guaranteeTs = await ctx.guaranteeTs(rec, b.consistencyLevel, b.guaranteeTs);
    const pkName = primaryField(rec.schema).name;
    const data: Record<string, unknown>[] = [];
    const topks: number[] = [];
    if (!groupField) {
      const lists = await runSearch(ctx, rec, sub, pids, guaranteeTs, offset + limit, deadlineMs);
      for (const list of lists) {
        const hits = list.slice(offset, offset + limit);
        topks.push(hits.length);
        for (const h of hits) data.push({ ...h.fields, [pkName]: h.pk, distance: h.distance });
      }
      return { data, topks };
    }
    // Grouping: the best hit of each distinct group value; widen the candidate set until enough groups appear.
    const want = offset + limit;
    const withGroup = { ...sub, fields: sub.fields.includes(groupField) ? sub.fields : [...sub.fields, groupField] };
    let k = Math.min(MAX_TOPK, want * 4);
    for (;;) {
      const lists = await runSearch(ctx, rec, withGroup, pids, guaranteeTs, k, deadlineMs);
      const grouped = lists.map((list) => bestPerGroup(list, groupField));
      const enough = grouped.every((g, q) => g.length >= want || lists[q]!.length < k);
      if (enough || k >= MAX_TOPK) {
        for (const g of grouped) {
          const hits = g.slice(offset, offset + limit);
          topks.push(hits.length);
          for (const h of hits) {
            const fields = sub.fields.includes(groupField) ? h.fields : Object.fromEntries(Object.entries(h.fields).filter(([key]) => key !== groupField));
            data.push({ ...fields, [pkName]: h.pk, distance: h.distance, [groupField]: h.fields[groupField] });
          }
        }
        return { data, topks };
      }
      k = Math.min(MAX_TOPK, k * 4);
    }
  },
  "entities.hybrid_search": async (body, ctx, deadlineMs) => {
    const b = decodeRequest(Api.HybridSearchRequest, body);
    const rec = await ctx.cache.resolve(b.dbName, b.collectionName);
    const limit = b.limit ?? DEFAULT_SEARCH_LIMIT;
    const offset = b.offset ?? 0;
    checkPage(limit, offset);
    if (b.search.length === 0) throw new InvalidParameter({ message: "search must hold at least one sub-search" });
    if (b.search.length > 16) throw new InvalidParameter({ message: `at most 16 sub-searches, got ${b.search.length}` });
    const ranker = parseRanker(b.rerank, b.search.length);
    const subs = await Promise.all(
      b.search.map((s, i) =>
        prepareSearch(ctx, rec, { ...s, searchParams: s.searchParams ?? (s.params ? { params: (s.params.params ?? s.params) as Record<string, unknown> } : undefined) }, b.outputFields, `search[${i}].`),
      ),
    );
    const nq = subs[0]!.queries.length;
    subs.forEach((sub, i) => {
      if (sub.queries.length !== nq) throw new InvalidParameter({ message: `search[${i}] has ${sub.queries.length} query vectors, search[0] has ${nq}: all sub-searches need the same number` });
    });
    const pids = await requireLoaded(ctx, rec, partitionIds(rec, b.partitionNames));
    const guaranteeTs = await ctx.guaranteeTs(rec, b.consistencyLevel, b.guaranteeTs);
    const perSub = await Promise.all(
      subs.map((sub, i) => runSearch(ctx, rec, sub, pids, guaranteeTs, Math.min(MAX_TOPK, b.search[i]!.limit ?? offset + limit), deadlineMs)),
    );
    const pkName = primaryField(rec.schema).name;
    const data: Record<string, unknown>[] = [];
    const topks: number[] = [];
    for (let q = 0; q < nq; q++) {
      const fused = fuse(
        perSub.map((lists, i) => ({ hits: lists[q]!, metric: subs[i]!.metric })),
        ranker,
      ).slice(offset, offset + limit);
      topks.push(fused.length);
      for (const h of fused) data.push({ ...h.fields, [pkName]: h.pk, distance: h.score });
    }
    return { data, topks };
  },
};

