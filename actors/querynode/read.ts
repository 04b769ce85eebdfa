/**
 * Reads over loaded sealed segments: vector search (the field's index or a
 * FLAT of its raw vectors, both in the worker pool) and scalar query, both
 * with filters, partitions and deletes applied. Long loops (filter
 * evaluation, pk-ordered scans) run in slices that yield to the event loop,
 * and vector work runs in worker threads, so a big read never stalls the
 * node's other requests. Vectors are not held on this thread: vector output
 * fields are fetched for just the returned rows (`SearchDeps.vectors`).
 */
import type { CollectionSchema } from "../../schemas/collection.ts";
import { InvalidParameter } from "../../schemas/errors.ts";
import { batchRowsToObjects } from "../../engine/rows.ts";
import { compareHits, mergeTopK, type Hit, type Metric } from "../../engine/search.ts";
import { compileOptionalFilter, FilterError, type CompiledFilter } from "../../engine/expr/index.ts";
import type { SearchResult } from "../../engine/index/kernels.ts";
import type { Pk, SearchHit } from "../streamingnode/protocol.ts";
import type { QnQueryReply, QnQueryRequest, QnSearchRequest } from "./protocol.ts";
import { yieldToLoop, type LoadedSegment } from "./segment.ts";

/** Rows evaluated between two yields to the event loop. */
const SLICE_ROWS = 32_768;

/** The slice of the index worker pool that reads need. */
export interface SearchPool<H> {
  search(
    handle: H,
    queries: Float32Array[],
    k: number,
    params: { ef?: number; nprobe?: number },
    allow?: Uint8Array,
  ): Promise<SearchResult[]>;
}

/** Vectors of some rows of a segment's vector field (rows.length * dim floats, in the order given), exactly as inserted. */
export type VectorFetch<H> = (seg: LoadedSegment<H>, field: string, rows: Int32Array) => Promise<Float32Array>;

export interface SearchDeps<H> {
  readonly pool: SearchPool<H>;
  /** A FLAT index of the segment's raw vectors in the pool (for fields without an index; per metric, cached). */
  flatHandle(seg: LoadedSegment<H>, field: string, metric: Metric): Promise<H>;
  /** Vector output values. */
  readonly vectors: VectorFetch<H>;
}

export const compileFor = (schema: CollectionSchema, filter: string | undefined, params: Record<string, unknown> | undefined) => {
  try {
    return compileOptionalFilter(filter, schema, params);
  } catch (e) {
    if (e instanceof FilterError) throw new InvalidParameter({ message: e.message });
    throw e;
  }
};

/**
 * Allowed rows of one segment: not deleted and passing the filter, as one
 * byte per row (1 = allowed), with their count.
 */
export const allowedRows = async (seg: LoadedSegment, filter: CompiledFilter | undefined): Promise<{ allow: Uint8Array; count: number }> => {
  const n = seg.rowCount;
  const allow = new Uint8Array(n);
  const deleted = seg.deleted;
  const pred = filter?.bind(seg.columnSource());
  let count = 0;
  for (let start = 0; start < n; start += SLICE_ROWS) {
    if (start > 0) await yieldToLoop();
    const end = Math.min(n, start + SLICE_ROWS);
    for (let row = start; row < end; row++) {
      if (deleted[row] !== 0 || (pred !== undefined && !pred(row))) continue;
      allow[row] = 1;
      count++;
    }
  }
  return { allow, count };
};

const numberParam = (params: Record<string, unknown> | undefined, name: string): number | undefined => {
  const v = params?.[name];
  const n = typeof v === "string" ? Number(v) : v;
  return typeof n === "number" && Number.isFinite(n) && n > 0 ? Math.floor(n) : undefined;
};

/**
 * Row objects for (segment, row) pairs, copying each segment's rows out once.
 * Vector fields have no column here: their values come from `vectors`, one
 * call per segment and field for just these rows.
 */
const rowsOut = async <H>(
  schema: CollectionSchema,
  refs: readonly { seg: LoadedSegment<H>; row: number }[],
  outputFields: readonly string[],
  vectors: VectorFetch<H>,
): Promise<Record<string, unknown>[]> => {
  const out = new Array<Record<string, unknown>>(refs.length);
  if (outputFields.length === 0) {
    for (let i = 0; i < refs.length; i++) out[i] = {};
    return out;
  }
  const vectorOutputs = schema.fields.filter((f) => f.dataType === "FloatVector" && outputFields.includes(f.name));
  const bySeg = new Map<LoadedSegment<H>, number[]>();
  refs.forEach((r, i) => {
    const l = bySeg.get(r.seg) ?? [];
    l.push(i);
    bySeg.set(r.seg, l);
  });
  await Promise.all(
    [...bySeg].map(async ([seg, idx]) => {
      const rows = Int32Array.from(idx, (i) => refs[i]!.row);
      const objs = batchRowsToObjects(schema, seg.batch, rows, outputFields);
      for (const f of vectorOutputs) {
        if (seg.batch.columns[f.name] !== undefined) continue; // still held here: copied above
        const dim = f.dim!;
        const data = await vectors(seg, f.name, rows);
        objs.forEach((o, j) => (o[f.name] = data.slice(j * dim, (j + 1) * dim)));
      }
      idx.forEach((i, j) => (out[i] = objs[j]!));
    }),
  );
  return out;
};

const checkSearch = (schema: CollectionSchema, req: QnSearchRequest) => {
  const f = schema.fields.find((x) => x.name === req.field);
  if (!f || f.dataType !== "FloatVector") throw new InvalidParameter({ message: `field '${req.field}' is not a vector field of the collection` });
  if (!Array.isArray(req.queries)) throw new InvalidParameter({ message: "queries must be an array of vectors" });
  for (const q of req.queries)
    if (!(q instanceof Float32Array) || q.length !== f.dim)
      throw new InvalidParameter({ message: `query vector has dim ${(q as { length?: number })?.length}, field '${req.field}' expects ${f.dim}` });
  if (!Number.isInteger(req.k) || req.k < 0) throw new InvalidParameter({ message: `k must be a non-negative integer, got ${req.k}` });
  if (req.metric !== "L2" && req.metric !== "IP" && req.metric !== "COSINE") throw new InvalidParameter({ message: `unknown metric ${String(req.metric)}` });
};

/** Top-k per query over the segments; the reply's hits are best first with pk tie-breaks. */
export const searchSegments = async <H>(
  deps: SearchDeps<H>,
  schema: CollectionSchema,
  segs: readonly LoadedSegment<H>[],
  req: QnSearchRequest,
): Promise<SearchHit[][]> => {
  checkSearch(schema, req);
  const filter = compileFor(schema, req.filter, req.exprParams);
  const parts = req.partitionIds ? new Set(req.partitionIds) : undefined;
  const searchParams = { ef: numberParam(req.params, "ef"), nprobe: numberParam(req.params, "nprobe") };
  const wanted = segs.filter((s) => !parts || parts.has(s.record.partitionId));
  const perSegment = await Promise.all(
    wanted.map(async (seg, tag): Promise<Hit[][]> => {
      // No filter: the cached complement of the deleted flags (or none at all), no per-row pass.
      const { allow, count } = filter === undefined ? { allow: seg.liveRowBits(), count: seg.liveRows } : await allowedRows(seg, filter);
      if (count === 0 || req.k === 0) return req.queries.map(() => []);
      // The proxy checked the metric against the field's current index definition. A loaded index
      // of another metric is stale (dropped, or replaced and not yet rebuilt here): search exactly.
      const loaded = seg.indexes.get(req.field);
      const index = loaded && loaded.metric === req.metric ? loaded : undefined;
      // The bitset pre-filters inside the worker; for very selective filters the
      // index scans the allowed rows exactly there (HNSW: bruteForceLimit).
      const bits = count === seg.rowCount ? undefined : allow;
      const results: SearchResult[] = index
        ? await deps.pool.search(index.handle, req.queries, req.k, searchParams, bits)
        : await deps.pool.search(await deps.flatHandle(seg, req.field, req.metric), req.queries, req.k, {}, bits);
      return results.map((r) => {
        const hits: Hit[] = new Array(r.rows.length);
        for (let i = 0; i < r.rows.length; i++) hits[i] = { pk: seg.pk(r.rows[i]!), distance: r.distances[i]!, segment: tag, row: r.rows[i]! };
        // Indexes break distance ties by row; the merge wants pk order.
        return hits.sort((a, b) => compareHits(req.metric, a, b));
      });
    }),
  );
  const merged = req.queries.map((_, qi) =>
    mergeTopK(
      perSegment.map((lists) => lists[qi]!),
      req.metric,
      req.k,
    ),
  );
  // All queries' output rows at once: one vector fetch per segment and field.
  const refs = merged.flatMap((hits) => hits.map((h) => ({ seg: wanted[h.segment]!, row: h.row })));
  const objs = await rowsOut(schema, refs, req.outputFields ?? [], deps.vectors);
  let at = 0;
  return merged.map((hits) => hits.map((h) => ({ pk: h.pk, distance: h.distance, fields: objs[at++]! })));
};

const cmpPk = (a: Pk, b: Pk) => (a < b ? -1 : a > b ? 1 : 0);

/** Rows matching the filter (and `pks`), not deleted, in pk order: the first k and the total count. */
export const querySegments = async <H>(
  deps: Pick<SearchDeps<H>, "vectors">,
  schema: CollectionSchema,
  segs: readonly LoadedSegment<H>[],
  req: QnQueryRequest,
): Promise<QnQueryReply> => {
  if (!Number.isInteger(req.k) || req.k < 0) throw new InvalidParameter({ message: `k must be a non-negative integer, got ${req.k}` });
  const filter = compileFor(schema, req.filter, req.exprParams);
  const parts = req.partitionIds ? new Set(req.partitionIds) : undefined;
  const k = req.countOnly ? 0 : req.k;
  let count = 0;
  const top: { seg: LoadedSegment<H>; row: number; pk: Pk }[] = [];
  for (const seg of segs) {
    if (parts && !parts.has(seg.record.partitionId)) continue;
    const pred = filter?.bind(seg.columnSource());
    if (req.pks) {
      for (const pk of new Set(req.pks)) {
        const row = seg.rowOf(pk);
        if (row < 0 || (pred && !pred(row))) continue;
        count++;
        top.push({ seg, row, pk });
      }
      continue;
    }
    // The stats hold the rows in pk order: the first k matches of each segment are its candidates.
    const order = seg.stats.rowOfSorted;
    const deleted = seg.deleted;
    let taken = 0;
    for (let start = 0; start < order.length; start += SLICE_ROWS) {
      if (start > 0) await yieldToLoop();
      const end = Math.min(order.length, start + SLICE_ROWS);
      for (let i = start; i < end; i++) {
        const row = order[i]!;
        if (deleted[row] !== 0 || (pred && !pred(row))) continue;
        count++;
        if (taken < k) {
          top.push({ seg, row, pk: seg.pk(row) });
          taken++;
        }
      }
    }
  }
  if (req.countOnly) return { rows: [], pks: [], count };
  top.sort((a, b) => cmpPk(a.pk, b.pk));
  const first = top.slice(0, k);
  return { rows: await rowsOut(schema, first, req.outputFields ?? [], deps.vectors), pks: first.map((t) => t.pk), count };
};
