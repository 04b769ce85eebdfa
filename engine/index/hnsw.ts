/**
 * HNSW on hnswlib (hnswlib-node 3.0.0's copy; native, synchronous). Labels are row numbers.
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
 * as hnswlib's file. Threads: BuildParams.threads, else the
 * NATSVEC_INDEX_THREADS environment variable, else os.availableParallelism().
 * With one thread the index is byte-identical to an addPoint loop in
 * hnswlib-node (which is also the fallback when the addon is missing); with
 * more, insertion order and level draws vary from build to build (recall does
 * not). Measured on 100k x 128 clustered, M=16, efC=200, 2 cores: addPoint
 * loop 32.7 s, addon on 1 thread 32.0 s, on 2 threads 15.5 s (1.95 cores
 * busy), recall@10 0.994 for all three. A build checks for stop requests
 * between chunks of rows (~50 ms each).
 *
 * Loading (loadPayloadFile, and so build, decode and the query node's files)
 * goes to the same addon's read-only index (native/hnsw_search.cc): hnswlib's
 * file read as hnswlib's loadIndex reads it, and checked, but without the
 * mutex per element and the label hash map hnswlib keeps for inserts, which a
 * loaded index never does; labels map to points through a flat table. Its
 * searches are hnswlib's searchKnn code with ef per call, so they return
 * exactly hnswlib-node's rows and distances for the same file, query, k, ef
 * and filter; a byte-per-row filter (what the worker pool ships) is read
 * natively instead of calling a JavaScript predicate per visited node. A
 * corrupt or truncated file throws an Error naming the fault. Measured on
 * 128-dim clustered data, M=16, efC=200 (RSS added by loading; single-thread
 * QPS at k=10, both loaders alternating in one process, 2 shared cores):
 *   100k: hnswlib-node +74-76 MiB, read-only +64 MiB (file 63 MiB);
 *         QPS ef 64: 3714-4436 vs 4197-4437, ef 256: 2490-2633 vs 2572-2821
 *   1M:   hnswlib-node +720-722 MiB, read-only +641-643 MiB (file 630 MiB),
 *         load 1.1-1.7 s vs 0.6-0.9 s;
 *         QPS ef 64: 1660-1948 vs 1724-2068, ef 256: 692-714 vs 724-769
 * (~83 bytes less per element, same answers, same speed within noise; a
 * filtered search at 0.1-10% allowed takes 20-37% less time with the byte
 * filter than with hnswlib-node's predicate).
 * Without the addon (or with loader "hnswlib-node") hnswlib-node loads it as before.
 * Threads: each loaded index lives in one pool worker (pool.ts), which serves
 * one request at a time, so searches never overlap on an index; the read-only
 * index would not mind (ef is an argument, nothing is written after opening),
 * hnswlib-node's would (ef is its member, set before each search).
 *
 * Both read and write hnswlib's file by path only, so (de)serialization goes
 * through a temp file. With an `allow` filter, hnswlib's own filtered search
 * is used (it walks through disallowed nodes and only admits allowed ones, so
 * its cost grows like ef / selectivity); when at most bruteForceLimit(count)
 * rows are allowed, the index instead scans them exactly (reading the stored
 * vectors back), which is faster for selective filters and exact. Measured
 * with hnswlib-node's predicate filter on 100k x 128 (M=16, ef=64, 50 queries): filtered graph
 * search 48 / 9.2 / 5.3 / 1.4 / 0.5 ms per query at 0.1 / 1 / 2 / 5 / 10 %
 * allowed, the scan 0.4 / 0.4 / 0.8 / 2.0 / 3.6 ms: the crossover near 3%,
 * ~3000 rows (with the read-only index's byte filter the graph search takes
 * 36 / 7.0 / 2.8 / 0.9 / 0.4 ms: still near 3%). Graph cost is roughly independent of count while the scan's is
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

/** natsvec's HNSW addon: multi-threaded builds (native/hnsw_build.cc) and read-only loaded indexes (native/hnsw_search.cc); labels are row numbers. */
interface HnswBuildAddon {
  create(space: "l2" | "ip" | "cosine", dim: number, maxElements: number, M: number, efConstruction: number, seed: number): object;
  /** Insert rows from..to-1 on `threads` threads; returns the most threads seen inserting at once. */
  add(builder: object, vectors: Float32Array, from: number, to: number, threads: number): number;
  /** Write hnswlib's file; returns its size. */
  save(builder: object, path: string): number;
  /** Free the graph now. */
  release(builder: object): void;
  /** Absent from an addon built before native/hnsw_search.cc existed (then hnswlib-node loads indexes). */
  readOnly?: ReadOnlyHnswAddon;
}

/** hnswlib's file loaded for searching only: without the per-element locks and the label hash map hnswlib keeps for inserts. */
interface ReadOnlyHnswAddon {
  /** Read and check hnswlib's file; throws on an unreadable, truncated or corrupt one. */
  open(space: "l2" | "ip" | "cosine", dim: number, path: string): object;
  /** hnswlib's searchKnn at this ef: nearest first, hnswlib's distances; with `allow`, only labels l with allow[l] !== 0. */
  search(index: object, query: Float32Array, k: number, ef: number, allow: Uint8Array | null): { labels: Int32Array; distances: Float32Array };
  getPoint(index: object, label: number): Float32Array;
  /** The points of `labels`, back to back. */
  getPoints(index: object, labels: Int32Array): Float32Array;
  count(index: object): number;
  /** Bytes allocated for the index. */
  memoryBytes(index: object): number;
  /** Write hnswlib's file again (the bytes opened); returns its size. */
  save(index: object, path: string): number;
  /** Free the graph now (later calls on the index throw). */
  release(index: object): void;
}

/** Where `npm install` builds native/hnsw_build.cc and hnsw_search.cc: beside the heap addon, whose path runtime/gc.ts resolves from the sources and the dist/ bundle alike. */
export const HNSW_BUILD_ADDON_PATH = join(dirname(HEAP_ADDON_PATH), "natsvec_hnsw.node");

/** The addon, or why it is not available (then builds insert one point at a time through hnswlib-node, and hnswlib-node loads indexes). */
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

/**
 * A search filter: a predicate on rows, or one byte per row (nonzero = allowed; rows past the end are
 * not allowed), what the worker pool ships (pool.ts allowBitset) and the addon reads natively.
 */
export type AllowFilter = ((row: number) => boolean) | Uint8Array;

/** Allowed rows among 0..count-1, stopping once there are more than `limit`. */
const allowedRows = (allow: AllowFilter, count: number, limit: number): number[] => {
  const allowed: number[] = [];
  if (typeof allow === "function") {
    for (let row = 0; row < count && allowed.length <= limit; row++) if (allow(row)) allowed.push(row);
  } else {
    for (let row = 0, end = Math.min(count, allow.length); row < end && allowed.length <= limit; row++) if (allow[row] !== 0) allowed.push(row);
  }
  return allowed;
};

/** A loaded graph, hnswlib-node's or the addon's read-only one. Labels are rows; distances are hnswlib's (smaller is nearer). */
interface Graph {
  /** The k nearest of each query at this ef, nearest first. */
  knn(queries: readonly Float32Array[], k: number, ef: number, allow: AllowFilter | undefined): { labels: ArrayLike<number>; distances: ArrayLike<number> }[];
  /** The stored points of `rows`, back to back. */
  points(rows: Int32Array): Float32Array;
  /** Write hnswlib's file. */
  write(path: string): void;
  memoryBytes(): number;
  /** Free native memory now (a later call on the graph throws); a no-op where only garbage collection can. */
  release(): void;
}

/** hnswlib-node's HierarchicalNSW: the fallback without the addon, and the graph a single-threaded addPoint build makes. */
class NodeGraph implements Graph {
  constructor(
    private readonly native: Native,
    private readonly dim: number,
    private readonly count: number,
    /** Size of hnswlib's own file, a close proxy for its element storage. */
    private fileBytes: number,
  ) {}

  knn(queries: readonly Float32Array[], k: number, ef: number, allow: AllowFilter | undefined): { labels: number[]; distances: number[] }[] {
    const { native, dim } = this;
    native.setEf(ef);
    const filter = allow === undefined || typeof allow === "function" ? allow : (row: number): boolean => row < allow.length && allow[row] !== 0;
    const buf: number[] = new Array<number>(dim).fill(0);
    return queries.map((q) => {
      checkpoint();
      for (let j = 0; j < dim; j++) buf[j] = q[j]!;
      const r = native.searchKnn(buf, k, filter);
      return { labels: r.neighbors, distances: r.distances };
    });
  }

  points(rows: Int32Array): Float32Array {
    const out = new Float32Array(rows.length * this.dim);
    for (let i = 0; i < rows.length; i++) out.set(this.native.getPoint(rows[i]!), i * this.dim);
    return out;
  }

  write(path: string): void {
    this.native.writeIndexSync(path);
    this.fileBytes = statSync(path).size;
  }

  memoryBytes(): number {
    // hnswlib's element storage (its file's size) plus, measured as the RSS of loaded copies
    // (hnswlib-node 3.0.0, 20k and 100k x 128): ~96 bytes per element (a mutex per element, the
    // label hash map, level and link-list pointers, the visited list) and ~2.6 MB per index
    // (65536 label-operation mutexes of 40 bytes).
    return this.fileBytes + this.count * 96 + 65536 * 40;
  }

  release(): void {
    // hnswlib-node frees its index only when the object is collected.
  }
}

/** The addon's read-only index (native/hnsw_search.cc): hnswlib's search code, ~80 bytes per element less than hnswlib-node. */
class ReadOnlyGraph implements Graph {
  constructor(
    private readonly addon: ReadOnlyHnswAddon,
    private readonly index: object,
    private readonly count: number,
  ) {}

  knn(queries: readonly Float32Array[], k: number, ef: number, allow: AllowFilter | undefined): { labels: Int32Array; distances: Float32Array }[] {
    const { addon, index, count } = this;
    // A predicate is asked once per row here, instead of once per visited node from inside the search.
    let bytes: Uint8Array | null = null;
    if (typeof allow === "function") {
      bytes = new Uint8Array(count);
      for (let row = 0; row < count; row++) if (allow(row)) bytes[row] = 1;
    } else if (allow !== undefined) bytes = allow;
    return queries.map((q) => {
      checkpoint();
      return addon.search(index, q, k, ef, bytes);
    });
  }

  points(rows: Int32Array): Float32Array {
    return this.addon.getPoints(this.index, rows);
  }

  write(path: string): void {
    this.addon.save(this.index, path);
  }

  memoryBytes(): number {
    return this.addon.memoryBytes(this.index);
  }

  release(): void {
    this.addon.release(this.index);
  }
}

/** How loadPayloadFile reads hnswlib's file: the addon's read-only index when it is built ("auto"), or hnswlib-node. */
export type HnswLoader = "auto" | "hnswlib-node";

/** The read-only loader, when the addon is built. */
const readOnlyAddon = (): ReadOnlyHnswAddon | undefined => ("addon" in hnswBuildAddon ? hnswBuildAddon.addon.readOnly : undefined);

/** Rows per getPoints call while scanning or reading vectors back: checkpoint() runs between chunks. */
const POINT_CHUNK = 1024;

export class HnswIndex implements VectorIndex {
  readonly type = "HNSW" as const;

  private constructor(
    readonly metric: Metric,
    readonly dim: number,
    readonly count: number,
    readonly params: HnswParams,
    private readonly graph: Graph,
  ) {}

  /** hnswlib keeps L2 and IP points as given; "cosine" stores them normalized, so the inserted values are gone. */
  get exactVectors(): boolean {
    return this.metric !== "COSINE";
  }

  /** True when the graph is the addon's read-only index rather than hnswlib-node's. */
  get readOnly(): boolean {
    return this.graph instanceof ReadOnlyGraph;
  }

  /** Build over rows 0..count-1 of `vectors` (row-major, `dim` floats each); see buildThreads for the thread count. */
  static build(metric: Metric, vectors: Float32Array, dim: number, params: BuildParams = {}): HnswIndex {
    return buildThen(metric, vectors, dim, params, (header, path) => HnswIndex.loadPayloadFile(header, path), (idx) => idx);
  }

  /**
   * The bytes of `build(...).serialize()` without loading the graph for search: hnswlib's file
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
    return new HnswIndex(metric, dim, count, p, new NodeGraph(native, dim, count, estimateNativeBytes(count, dim, p.M)));
  }

  static decode(d: DecodedIndex): HnswIndex {
    const payload = d.bytes("hnsw");
    return withTempFile((path) => {
      writeFileSync(path, payload);
      return HnswIndex.loadPayloadFile(d.header, path);
    });
  }

  /**
   * Load hnswlib's own file (an index object's hnsw section, alone in the file at `path`) under `header`:
   * into the addon's read-only index when the addon is built, else (or with loader "hnswlib-node") into
   * hnswlib-node. The file is not kept open.
   */
  static loadPayloadFile(header: IndexHeader, path: string, loader: HnswLoader = "auto"): HnswIndex {
    const { metric, dim, count, params } = header;
    const readOnly = loader === "auto" ? readOnlyAddon() : undefined;
    let graph: Graph;
    let loaded: number;
    if (readOnly !== undefined) {
      const index = readOnly.open(space(metric), dim, path);
      loaded = readOnly.count(index);
      graph = new ReadOnlyGraph(readOnly, index, loaded);
    } else {
      const native = new HierarchicalNSW(space(metric), dim);
      native.readIndexSync(path);
      loaded = native.getCurrentCount();
      graph = new NodeGraph(native, dim, loaded, statSync(path).size);
    }
    if (loaded !== count) {
      graph.release();
      throw new IndexParamError(`HNSW index file ${path} holds ${loaded} points, its header says ${count}`);
    }
    const p = { M: params.M ?? HNSW_DEFAULTS.M, efConstruction: params.efConstruction ?? HNSW_DEFAULTS.efConstruction, seed: params.seed ?? DEFAULT_SEED };
    return new HnswIndex(metric, dim, count, p, graph);
  }

  static load(bytes: Uint8Array): HnswIndex {
    return HnswIndex.decode(decodeIndex(bytes));
  }

  /** `allow` may also be one byte per row (nonzero = allowed), which the read-only index reads natively. */
  search(queries: readonly Float32Array[], k: number, params: SearchParams = {}, allow?: AllowFilter): SearchResult[] {
    const { dim, count, metric } = this;
    const kk = checkSearchArgs(queries, k, dim, count);
    if (kk === 0) return queries.map(emptyResult);
    if (allow !== undefined) {
      const limit = bruteForceLimit(count);
      const allowed = allowedRows(allow, count, limit);
      if (allowed.length <= limit) return this.scan(queries, kk, allowed);
    }
    const ef = params.ef ?? DEFAULT_EF;
    if (!Number.isFinite(ef) || ef < 1) throw new IndexParamError(`HNSW ef must be a positive integer, got ${params.ef}`);
    return this.graph.knn(queries, kk, Math.max(Math.floor(ef), kk), allow).map((r) => {
      const n = r.labels.length;
      const rows = new Int32Array(n);
      const distances = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        rows[i] = r.labels[i]!;
        const d = r.distances[i]!;
        distances[i] = metric === "L2" ? d : 1 - d;
      }
      return { rows, distances };
    });
  }

  /** Exact scan of the given rows over the stored vectors (unit vectors for COSINE). */
  private scan(queries: readonly Float32Array[], k: number, rows: readonly number[]): SearchResult[] {
    const { dim, metric } = this;
    const qs = metric === "COSINE" ? queries.map(normalized) : queries;
    const heaps = qs.map(() => new TopK(k));
    for (const { rows: chunk, points } of this.pointChunks(rows)) {
      for (let i = 0; i < chunk.length; i++) {
        const row = chunk[i]!;
        const off = i * dim;
        for (let qi = 0; qi < qs.length; qi++) {
          const q = qs[qi]!;
          let s = 0;
          if (metric === "L2") {
            for (let j = 0; j < dim; j++) {
              const d = q[j]! - points[off + j]!;
              s += d * d;
            }
          } else {
            for (let j = 0; j < dim; j++) s -= q[j]! * points[off + j]!;
          }
          heaps[qi]!.push(s, row);
        }
      }
    }
    return heaps.map((h) => h.drain(metric !== "L2"));
  }

  /** The stored points of `rows` (labels are rows), read back from the graph: exact for L2 and IP only. */
  rawVectors(rows: ArrayLike<number>): Float32Array {
    if (!this.exactVectors) throw new IndexParamError(`an HNSW ${this.metric} index stores normalized vectors, not the inserted values`);
    const { dim } = this;
    checkRows(rows, this.count);
    const out = new Float32Array(rows.length * dim);
    for (const { from, points } of this.pointChunks(rows)) out.set(points, from * dim);
    return out;
  }

  /** The stored points of `rows` in chunks of POINT_CHUNK rows, checking for stop requests between chunks. */
  private *pointChunks(rows: ArrayLike<number>): Generator<{ from: number; rows: Int32Array; points: Float32Array }> {
    for (let from = 0; from < rows.length; from += POINT_CHUNK) {
      checkpoint();
      const chunk = Int32Array.from({ length: Math.min(POINT_CHUNK, rows.length - from) }, (_, i) => rows[from + i]!);
      yield { from, rows: chunk, points: this.graph.points(chunk) };
    }
  }

  serialize(): Uint8Array {
    const payload = withTempFile((path) => {
      this.graph.write(path);
      return readFileSync(path);
    });
    // (the header as buildHeader makes it: buildBytes writes the same bytes)
    return encodeIndex({ type: "HNSW", metric: this.metric, dim: this.dim, count: this.count, params: { M: this.params.M, efConstruction: this.params.efConstruction, seed: this.params.seed } }, [["hnsw", payload]]);
  }

  /** Resident bytes: what the read-only index allocated, or hnswlib-node's file size plus its measured per-element overheads. */
  memoryBytes(): number {
    return this.graph.memoryBytes();
  }

  /** Free the graph's native memory now instead of at garbage collection (read-only indexes; later searches throw). */
  release(): void {
    this.graph.release();
  }
}

/** hnswlib layout: per element dim floats + (2M links + count) + label at layer 0; ~1/ln(M) of elements have upper-layer lists of M links. */
const estimateNativeBytes = (count: number, dim: number, M: number): number => {
  const layer0 = count * (dim * 4 + (2 * M + 1) * 4 + 8);
  const upper = (count / Math.log(M)) * ((M + 1) * 4) + count * 8;
  return Math.round(layer0 + upper);
};
