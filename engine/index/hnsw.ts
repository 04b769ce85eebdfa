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
import { tmpdir } from "node:os";
import { join } from "node:path";
import { threadId } from "node:worker_threads";
import hnswlib from "hnswlib-node";
import type { Metric } from "../search.ts";
import { decodeIndex, encodeIndex, type DecodedIndex, type IndexHeader } from "./format.ts";
import { checkpoint, emptyResult, normalized, TopK, type SearchResult } from "./kernels.ts";
import { checkBuildArgs, checkRows, checkSearchArgs, DEFAULT_EF, HNSW_DEFAULTS, IndexParamError, type BuildParams, type SearchParams, type VectorIndex } from "./types.ts";

const { HierarchicalNSW } = hnswlib;
type Native = InstanceType<typeof HierarchicalNSW>;

/** With an allow filter admitting at most this many rows, scan them exactly instead of walking the graph. */
export const bruteForceLimit = (count: number): number => Math.max(1024, Math.round(10 * Math.sqrt(count)));
const DEFAULT_SEED = 100;

const space = (m: Metric): "l2" | "ip" | "cosine" => (m === "L2" ? "l2" : m === "IP" ? "ip" : "cosine");

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

export class HnswIndex implements VectorIndex {
  readonly type = "HNSW" as const;

  private constructor(
    readonly metric: Metric,
    readonly dim: number,
    readonly count: number,
    readonly params: Readonly<Required<Pick<BuildParams, "M" | "efConstruction" | "seed">>>,
    private readonly native: Native,
    /** Size of hnswlib's own file, a close proxy for its heap footprint. */
    private nativeBytes: number,
  ) {}

  /** hnswlib keeps L2 and IP points as given; "cosine" stores them normalized, so the inserted values are gone. */
  get exactVectors(): boolean {
    return this.metric !== "COSINE";
  }

  static build(metric: Metric, vectors: Float32Array, dim: number, params: BuildParams = {}): HnswIndex {
    const count = checkBuildArgs(vectors, dim);
    const M = params.M ?? HNSW_DEFAULTS.M;
    const efConstruction = params.efConstruction ?? HNSW_DEFAULTS.efConstruction;
    const seed = params.seed ?? DEFAULT_SEED;
    if (!Number.isInteger(M) || M < 2) throw new IndexParamError(`HNSW M must be an integer >= 2, got ${M}`);
    if (!Number.isInteger(efConstruction) || efConstruction < 1) throw new IndexParamError(`HNSW efConstruction must be a positive integer, got ${efConstruction}`);
    const native = new HierarchicalNSW(space(metric), dim);
    native.initIndex(Math.max(1, count), M, efConstruction, seed);
    const buf: number[] = new Array<number>(dim).fill(0);
    for (let i = 0, off = 0; i < count; i++, off += dim) {
      checkpoint();
      for (let j = 0; j < dim; j++) buf[j] = vectors[off + j]!;
      native.addPoint(buf, i);
    }
    native.setEf(DEFAULT_EF);
    const idx = new HnswIndex(metric, dim, count, { M, efConstruction, seed }, native, 0);
    idx.nativeBytes = estimateNativeBytes(count, dim, M);
    return idx;
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
    return encodeIndex({ type: "HNSW", metric: this.metric, dim: this.dim, count: this.count, params: { ...this.params } }, [["hnsw", payload]]);
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
