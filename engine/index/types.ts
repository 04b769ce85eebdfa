/**
 * Vector index contracts shared by FLAT, HNSW and IVF_* and by the worker
 * pool. An index is immutable once built: it covers rows 0..count-1 of a
 * sealed segment's vector column; deletes and scalar filters are applied at
 * search time through `allow`.
 *
 * Distances follow natsvec conventions (engine/search.ts): L2 = squared
 * Euclidean, ascending; IP = dot product, descending; COSINE = cosine
 * similarity, descending.
 */
import type { IndexDefinition } from "../../schemas/collection.ts";
import type { Metric } from "../search.ts";
import type { SearchResult } from "./kernels.ts";

export type { Metric } from "../search.ts";
export type { SearchResult } from "./kernels.ts";

export const IndexTypes = ["FLAT", "HNSW", "IVF_FLAT", "IVF_SQ8"] as const;
export type IndexType = (typeof IndexTypes)[number];

export interface BuildParams {
  /** HNSW: max out-degree per layer (layer 0 gets 2M). Default 16. */
  M?: number;
  /** HNSW: candidate list size while inserting. Default 200. */
  efConstruction?: number;
  /** IVF_*: number of inverted lists. Default 128, capped to max(1, floor(count / 39)). */
  nlist?: number;
  /** Random seed (HNSW level draws, IVF k-means). Default 100 / 1234. */
  seed?: number;
  /**
   * HNSW: threads the build inserts with. Not recorded in the index. Default: the
   * NATSVEC_INDEX_THREADS environment variable, else os.availableParallelism(). With 1 the
   * build is reproducible (same bytes for the same input); with more it is not (same recall).
   */
  threads?: number;
}

export interface SearchParams {
  /** HNSW: candidate list size; raised to k when smaller. Default 64. */
  ef?: number;
  /** IVF_*: lists probed per query (more are probed while fewer than k rows were found). Default 8. */
  nprobe?: number;
}

export interface VectorIndex {
  readonly type: IndexType;
  readonly metric: Metric;
  readonly dim: number;
  readonly count: number;
  /** Build parameters in effect (after defaults and caps). */
  readonly params: Readonly<BuildParams>;
  /**
   * Top-k rows (row numbers 0..count-1) per query, best first, distances in
   * natsvec conventions; fewer than k when fewer rows qualify. `allow(row)`
   * is a pre-filter (deleted rows are excluded through it too): a row for
   * which it returns false is never returned.
   */
  search(queries: readonly Float32Array[], k: number, params?: SearchParams, allow?: (row: number) => boolean): SearchResult[];
  /** Self-describing bytes (type, metric, dim, count, params + payload); see format.ts. */
  serialize(): Uint8Array;
  /** Approximate resident size in bytes (payload plus per-index overheads). */
  memoryBytes(): number;
  /**
   * True when `rawVectors()` returns exactly the float32 values the index was
   * built from: FLAT always; HNSW and IVF_FLAT under L2 and IP. Not under
   * COSINE (HNSW and IVF store unit vectors) nor for IVF_SQ8 (codes).
   */
  readonly exactVectors?: boolean;
  /**
   * The stored vectors of `rows` (rows.length * dim floats, in the order
   * given). Throws IndexParamError when `exactVectors` is false or a row is
   * out of range.
   */
  rawVectors?(rows: ArrayLike<number>): Float32Array;
}

/** Check rows for `rawVectors()`: integers in [0, count). */
export const checkRows = (rows: ArrayLike<number>, count: number): void => {
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (!Number.isInteger(r) || r < 0 || r >= count) throw new IndexParamError(`row ${r} out of range [0, ${count})`);
  }
};

/** Invalid index type, build parameter, or argument. Crosses the worker boundary by name. */
export class IndexParamError extends Error {
  override readonly name = "IndexParamError";
}

/** HNSW defaults (also what AUTOINDEX resolves to). */
export const HNSW_DEFAULTS = { M: 16, efConstruction: 200 } as const;
export const DEFAULT_EF = 64;
export const DEFAULT_NLIST = 128;
export const DEFAULT_NPROBE = 8;

const intParam = (params: Readonly<Record<string, string | number | boolean>>, name: string, min: number, max: number): number | undefined => {
  const raw = params[name];
  if (raw === undefined) return undefined;
  const v = typeof raw === "string" ? Number(raw.trim()) : raw;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
    throw new IndexParamError(`index param '${name}' must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`);
  return v;
};

/**
 * Map a stored IndexDefinition onto an engine index type and build params.
 * AUTOINDEX resolves to HNSW {M:16, efConstruction:200}; names are matched
 * case-insensitively; Milvus-style string params ("M": "16") are accepted.
 */
export const resolveIndexType = (def: Pick<IndexDefinition, "indexType" | "params">): { type: IndexType; params: BuildParams } => {
  const name = def.indexType.trim().toUpperCase();
  const p = def.params;
  const type: IndexType | undefined = name === "AUTOINDEX" ? "HNSW" : (IndexTypes as readonly string[]).includes(name) ? (name as IndexType) : undefined;
  if (type === undefined) throw new IndexParamError(`unsupported index type '${def.indexType}' (supported: AUTOINDEX, ${IndexTypes.join(", ")})`);
  const params: BuildParams = {};
  if (type === "HNSW") {
    params.M = intParam(p, "M", 2, 2048) ?? HNSW_DEFAULTS.M;
    params.efConstruction = intParam(p, "efConstruction", 1, 1 << 20) ?? HNSW_DEFAULTS.efConstruction;
  } else if (type === "IVF_FLAT" || type === "IVF_SQ8") {
    params.nlist = intParam(p, "nlist", 1, 65536) ?? DEFAULT_NLIST;
  }
  const seed = intParam(p, "seed", 0, 0xffffffff);
  if (seed !== undefined) params.seed = seed;
  return { type, params };
};

/** Validate the common build arguments; returns the vector count. */
export const checkBuildArgs = (vectors: Float32Array, dim: number): number => {
  if (!Number.isInteger(dim) || dim < 1) throw new IndexParamError(`dim must be a positive integer, got ${dim}`);
  if (vectors.length % dim !== 0) throw new IndexParamError(`vector data length ${vectors.length} is not a multiple of dim ${dim}`);
  return vectors.length / dim;
};

/** Validate queries and k; returns k clamped to [0, count]. */
export const checkSearchArgs = (queries: readonly Float32Array[], k: number, dim: number, count: number): number => {
  for (const q of queries) if (q.length !== dim) throw new IndexParamError(`query vector has dim ${q.length}, index expects ${dim}`);
  if (!Number.isFinite(k) || k < 0) throw new IndexParamError(`k must be a non-negative number, got ${k}`);
  return Math.min(Math.floor(k), count);
};
