/**
 * HNSW via hnswlib-node (native, synchronous). Labels are row numbers.
 *
 * hnswlib's distances (verified against hnswlib-node 3.0.0, float32 math):
 *   "l2"     -> squared L2 (ascending)          = natsvec L2 as is
 *   "ip"     -> 1 - dot (ascending)             -> natsvec IP     = 1 - d
 *   "cosine" -> 1 - dot of unit vectors          -> natsvec COSINE = 1 - d
 * The "cosine" space normalizes points on insert and queries on search (the
 * stored points are unit vectors; zero vectors stay zero, so their cosine is
 * 0, as in natsvec's exact search). Results come back best first.
 *
 * Builds run on several threads in natsvec's own addon (native/hnsw_build.cc,
 * built by `npm install` next to the heap addon): hnswlib's addPoint over the
 * rows in parallel, compiled against hnswlib-node's copy of hnswlib, written
 * as hnswlib's file and loaded by hnswlib-node like any stored index. Threads:
 * BuildParams.threads, else the NATSVEC_INDEX_THREADS environment variable,
 * else os.availableParallelism(). With one thread the index is byte-identical
 * to an addPoint loop in hnswlib-node (which is also the fallback when the
 * addon is missing); with more, insertion order and level draws vary from
 * build to build (recall does not). Measured on 100k x 128 clustered, M=16,
 * efC=200, 2 cores: addPoint loop 32.7 s, addon on 1 thread 32.0 s, on 2
 * threads 15.5 s (1.95 cores busy), recall@10 0.994 for all three. A build
 * checks for stop requests between chunks of rows (~50 ms each).
 *
 * Persistence is file-path only in hnswlib-node, so (de)serialization goes
 * through a temp file. With an `allow` filter, hnswlib's own filtered search
 * is used (it walks through disallowed nodes and only admits allowed ones, so
 * its cost grows like ef / selectivity); when at most bruteForceLimit(count)
 * rows are allowed, the index instead scans them exactly (reading the stored
 * vectors back with getPoint), which is faster for selective filters and
 * exact. Measured on 100k x 128 (M=16, ef=64, 50 queries): filtered graph
 * search 48 / 9.2 / 5.3 / 1.4 / 0.5 ms per query at 0.1 / 1 / 2 / 5 / 10 %
 * allowed, the scan 0.4 / 0.4 / 0.8 / 2.0 / 3.6 ms: the crossover near 3%,
 * ~3000 rows. Graph cost is roughly independent of count while the scan's is
 * proportional to selectivity * count, so the crossover row count grows like
 * sqrt(count).
 */
import { randomUUID } from "node:crypto";
import { readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { threadId } from "node:worker_threads";
import hnswlib from "hnswlib-node";
import { HEAP_ADDON_PATH } from "../../runtime/gc.ts";
import type { Metric } from "../search.ts";
import { decodeIndex, encodeIndex, type DecodedIndex, type IndexHeader } from "./format.ts";
import { checkpoint, emptyResult, normalized, TopK, type SearchResult } from "./kernels.ts";
import { checkBuildArgs, checkRows, checkSearchArgs, DEFAULT_EF, HNSW_DEFAULTS, IndexParamError, type BuildParams, type SearchParams, type VectorIndex } from "./types.ts";

const { HierarchicalNSW } = hnswlib;
type Native = InstanceType<typeof HierarchicalNSW>;

/** With an allow filter admitting at most this many rows, scan them exactly instead of walking the graph. */
export const bruteForceLimit = (count: number): number => Math.max(1024, Math.round(10 * Math.sqrt(count)));
const DEFAULT_SEED = 100;

/** The build parameters an HNSW index records (threads change only how fast it is built). */
type HnswParams = Readonly<Required<Pick<BuildParams, "M" | "efConstruction" | "seed">>>;

const space = (m: Metric): "l2" | "ip" | "cosine" => (m === "L2" ? "l2" : m === "IP" ? "ip" : "cosine");

/** natsvec's HNSW build addon (native/hnsw_build.cc; labels are row numbers). */
interface HnswBuildAddon {
  create(space: "l2" | "ip" | "cosine", dim: number, maxElements: number, M: number, efConstruction: number, seed: number): object;
  /** Insert rows from..to-1 on `threads` threads; returns the most threads seen inserting at once. */
  add(builder: object, vectors: Float32Array, from: number, to: number, threads: number): number;
  /** Write hnswlib's file; returns its size. */
  save(builder: object, path: string): number;
  /** Free the graph now. */
  release(builder: object): void;
}

/** Where `npm install` builds native/hnsw_build.cc: beside the heap addon, whose path runtime/gc.ts resolves from the sources and the dist/ bundle alike. */
export const HNSW_BUILD_ADDON_PATH = join(dirname(HEAP_ADDON_PATH), "natsvec_hnsw.node");

/** The addon, or why it is not available (then builds insert one point at a time through hnswlib-node). */
export const hnswBuildAddon: { addon: HnswBuildAddon } | { missing: string } = (() => {
  try {
    return { addon: createRequire(import.meta.url)(HNSW_BUILD_ADDON_PATH) as HnswBuildAddon };
  } catch (e) {
    return { missing: e instanceof Error ? e.message : String(e) };
  }
})();

/**
 * Threads an HNSW build inserts with: `params.threads`, else the NATSVEC_INDEX_THREADS environment
 * variable (a positive integer; e.g. to leave cores to searches on a node that also serves queries),
 * else os.availableParallelism().
 */
export const buildThreads = (params: BuildParams = {}): number => {
  if (params.threads !== undefined) {
    if (!Number.isInteger(params.threads) || params.threads < 1) throw new IndexParamError(`HNSW build threads must be a positive integer, got ${params.threads}`);
    return params.threads;
  }
  const env = process.env.NATSVEC_INDEX_THREADS?.trim();
  if (env === undefined || env === "") return availableParallelism();
  const t = Number(env);
  if (!Number.isInteger(t) || t < 1) throw new IndexParamError(`NATSVEC_INDEX_THREADS must be a positive integer, got ${JSON.stringify(env)}`);
  return t;
};

/** Rows per chunk are sized so that one chunk takes about this long: the build honours stop requests (checkpoint) between chunks. */
const CHUNK_MS = 50;

/**
 * Build hnswlib's file for rows 0..count-1 at `path` with the addon, in chunks of rows inserted in
 * parallel; checkpoint() runs between chunks, when no native thread is running.
 */
const buildFile = (addon: HnswBuildAddon, header: IndexHeader, vectors: Float32Array, threads: number, path: string): void => {
  const { metric, dim, count } = header;
  const { M, efConstruction, seed } = header.params as HnswParams;
  const builder = addon.create(space(metric), dim, Math.max(1, count), M, efConstruction, seed);
  try {
    let rows = 16 * threads;
    for (let from = 0; from < count; ) {
      checkpoint();
      const to = Math.min(count, from + rows);
      const t0 = performance.now();
      addon.add(builder, vectors, from, to, threads);
      // inserts get slower as the graph grows: re-aim each chunk at CHUNK_MS, growing at most 2x at a time
      const ms = performance.now() - t0;
      rows = Math.max(4 * threads, Math.min(2 * (to - from), Math.round(((to - from) * CHUNK_MS) / Math.max(ms, 1e-3))));
      from = to;
    }
    checkpoint();
    addon.save(builder, path);
  } finally {
    addon.release(builder);
  }
};

/** Checked build arguments as the index header that serialize() writes. */
const buildHeader = (metric: Metric, vectors: Float32Array, dim: number, params: BuildParams): IndexHeader => {
  const count = checkBuildArgs(vectors, dim);
  const M = params.M ?? HNSW_DEFAULTS.M;
  const efConstruction = params.efConstruction ?? HNSW_DEFAULTS.efConstruction;
  const seed = params.seed ?? DEFAULT_SEED;
  if (!Number.isInteger(M) || M < 2) throw new IndexParamError(`HNSW M must be an integer >= 2, got ${M}`);
  if (!Number.isInteger(efConstruction) || efConstruction < 1) throw new IndexParamError(`HNSW efConstruction must be a positive integer, got ${efConstruction}`);
  return { type: "HNSW", metric, dim, count, params: { M, efConstruction, seed } };
};

let tmpCounter = 0;
const withTempFile = <T>(fn: (path: string) => T): T => {
  const path = join(tmpdir(), `natsvec-hnsw-${process.pid}-${threadId}-${tmpCounter++}-${randomUUID()}.bin`);
  try {
    return fn(path);
  } finally {
    try {
      unlinkSync(path);
    } catch {
      // never created
    }
  }
};

/**
 * Build with the addon into hnswlib's file and pass it to `use` (the file is deleted afterwards), or,
 * when the addon is missing, build through hnswlib-node's addPoint and pass the index to `fallback`.
 */
const buildThen = <T>(
  metric: Metric,
  vectors: Float32Array,
  dim: number,
  params: BuildParams,
  use: (header: IndexHeader, path: string) => T,
  fallback: (idx: HnswIndex) => T,
): T => {
  const header = buildHeader(metric, vectors, dim, params);
  const threads = buildThreads(params);
  if (!("addon" in hnswBuildAddon)) return fallback(HnswIndex.buildByAddPoint(metric, vectors, dim, params));
  const { addon } = hnswBuildAddon;
  return withTempFile((path) => {
    buildFile(addon, header, vectors, threads, path);
    return use(header, path);
  });
};

export class HnswIndex implements VectorIndex {
  readonly type = "HNSW" as const;

  private constructor(
    readonly metric: Metric,
    readonly dim: number,
    readonly count: number,
    readonly params: HnswParams,
    private readonly native: Native,
    /** Size of hnswlib's own file, a close proxy for its heap footprint. */
    private nativeBytes: number,
  ) {}

  /** hnswlib keeps L2 and IP points as given; "cosine" stores them normalized, so the inserted values are gone. */
  get exactVectors(): boolean {
    return this.metric !== "COSINE";
  }

  /** Build over rows 0..count-1 of `vectors` (row-major, `dim` floats each); see buildThreads for the thread count. */
  static build(metric: Metric, vectors: Float32Array, dim: number, params: BuildParams = {}): HnswIndex {
    return buildThen(metric, vectors, dim, params, (header, path) => HnswIndex.loadPayloadFile(header, path), (idx) => idx);
  }

  /**
   * The bytes of `build(...).serialize()` without loading the graph into hnswlib-node: hnswlib's file
   * as the addon wrote it, in the index container (what a build worker sends back).
   */
  static buildBytes(metric: Metric, vectors: Float32Array, dim: number, params: BuildParams = {}): Uint8Array {
    return buildThen(metric, vectors, dim, params, (header, path) => encodeIndex(header, [["hnsw", readFileSync(path)]]), (idx) => idx.serialize());
  }

  /** The single-threaded build: hnswlib-node's addPoint row by row (used when the addon is missing; a one-thread addon build equals it byte for byte). */
  static buildByAddPoint(metric: Metric, vectors: Float32Array, dim: number, params: BuildParams = {}): HnswIndex {
    const header = buildHeader(metric, vectors, dim, params);
    const { count } = header;
    const p = header.params as HnswParams;
    const native = new HierarchicalNSW(space(metric), dim);
    native.initIndex(Math.max(1, count), p.M, p.efConstruction, p.seed);
    const buf: number[] = new Array<number>(dim).fill(0);
    for (let i = 0, off = 0; i < count; i++, off += dim) {
      checkpoint();
      for (let j = 0; j < dim; j++) buf[j] = vectors[off + j]!;
      native.addPoint(buf, i);
    }
    native.setEf(DEFAULT_EF);
    return new HnswIndex(metric, dim, count, p, native, estimateNativeBytes(count, dim, p.M));
  }

  static decode(d: DecodedIndex): HnswIndex {
    const payload = d.bytes("hnsw");
    return withTempFile((path) => {
      writeFileSync(path, payload);
      return HnswIndex.loadPayloadFile(d.header, path);
    });
  }

  /** Load hnswlib's own file (an index object's hnsw section, alone in the file at `path`) under `header`. */
  static loadPayloadFile(header: IndexHeader, path: string): HnswIndex {
    const { metric, dim, count, params } = header;
    const native = new HierarchicalNSW(space(metric), dim);
    native.readIndexSync(path);
    native.setEf(DEFAULT_EF);
    const p = { M: params.M ?? HNSW_DEFAULTS.M, efConstruction: params.efConstruction ?? HNSW_DEFAULTS.efConstruction, seed: params.seed ?? DEFAULT_SEED };
    return new HnswIndex(metric, dim, count, p, native, statSync(path).size);
  }

  static load(bytes: Uint8Array): HnswIndex {
    return HnswIndex.decode(decodeIndex(bytes));
  }

  search(queries: readonly Float32Array[], k: number, params: SearchParams = {}, allow?: (row: number) => boolean): SearchResult[] {
    const { dim, count, native, metric } = this;
    const kk = checkSearchArgs(queries, k, dim, count);
    if (kk === 0) return queries.map(emptyResult);
    if (allow !== undefined) {
      const limit = bruteForceLimit(count);
      const allowed: number[] = [];
      for (let row = 0; row < count && allowed.length <= limit; row++) if (allow(row)) allowed.push(row);
      if (allowed.length <= limit) return this.scan(queries, kk, allowed);
    }
    const ef = params.ef ?? DEFAULT_EF;
    if (!Number.isFinite(ef) || ef < 1) throw new IndexParamError(`HNSW ef must be a positive integer, got ${params.ef}`);
    native.setEf(Math.max(Math.floor(ef), kk));
    const buf: number[] = new Array<number>(dim).fill(0);
    return queries.map((q) => {
      checkpoint();
      for (let j = 0; j < dim; j++) buf[j] = q[j]!;
      const r = native.searchKnn(buf, kk, allow);
      const n = r.neighbors.length;
      const rows = new Int32Array(n);
      const distances = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        rows[i] = r.neighbors[i]!;
        const d = r.distances[i]!;
        distances[i] = metric === "L2" ? d : 1 - d;
      }
      return { rows, distances };
    });
  }

  /** Exact scan of the given rows over the stored vectors (unit vectors for COSINE). */
  private scan(queries: readonly Float32Array[], k: number, rows: readonly number[]): SearchResult[] {
    const { dim, metric, native } = this;
    const qs = metric === "COSINE" ? queries.map(normalized) : queries;
    const heaps = qs.map(() => new TopK(k));
    for (let i = 0; i < rows.length; i++) {
      if ((i & 1023) === 0) checkpoint();
      const row = rows[i]!;
      const v = native.getPoint(row);
      for (let qi = 0; qi < qs.length; qi++) {
        const q = qs[qi]!;
        let s = 0;
        if (metric === "L2") {
          for (let j = 0; j < dim; j++) {
            const d = q[j]! - v[j]!;
            s += d * d;
          }
        } else {
          for (let j = 0; j < dim; j++) s -= q[j]! * v[j]!;
        }
        heaps[qi]!.push(s, row);
      }
    }
    return heaps.map((h) => h.drain(metric !== "L2"));
  }

  /** The stored points of `rows` (labels are rows), read back with getPoint: exact for L2 and IP only. */
  rawVectors(rows: ArrayLike<number>): Float32Array {
    if (!this.exactVectors) throw new IndexParamError(`an HNSW ${this.metric} index stores normalized vectors, not the inserted values`);
    const { dim, native } = this;
    checkRows(rows, this.count);
    const out = new Float32Array(rows.length * dim);
    for (let i = 0; i < rows.length; i++) {
      if ((i & 1023) === 0) checkpoint();
      out.set(native.getPoint(rows[i]!), i * dim);
    }
    return out;
  }

  serialize(): Uint8Array {
    const payload = withTempFile((path) => {
      this.native.writeIndexSync(path);
      return readFileSync(path);
    });
    this.nativeBytes = payload.length;
    // (the header as buildHeader makes it: buildBytes writes the same bytes)
    return encodeIndex({ type: "HNSW", metric: this.metric, dim: this.dim, count: this.count, params: { M: this.params.M, efConstruction: this.params.efConstruction, seed: this.params.seed } }, [["hnsw", payload]]);
  }

  memoryBytes(): number {
    // hnswlib's element storage (its file's size) plus, measured as the RSS of loaded copies
    // (hnswlib-node 3.0.0, 20k and 100k x 128): ~96 bytes per element (a mutex per element, the
    // label hash map, level and link-list pointers, the visited list) and ~2.6 MB per index
    // (65536 label-operation mutexes of 40 bytes).
    return this.nativeBytes + this.count * 96 + 65536 * 40;
  }
}

/** hnswlib layout: per element dim floats + (2M links + count) + label at layer 0; ~1/ln(M) of elements have upper-layer lists of M links. */
const estimateNativeBytes = (count: number, dim: number, M: number): number => {
  const layer0 = count * (dim * 4 + (2 * M + 1) * 4 + 8);
  const upper = (count / Math.log(M)) * ((M + 1) * 4) + count * 8;
  return Math.round(layer0 + upper);
};
