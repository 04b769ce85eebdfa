/**
 * FLAT: exact scan over the raw vectors (kept as one contiguous Float32Array).
 * Rows are visited once per batch of queries, so `allow` runs once per row.
 */
import type { Metric } from "../search.ts";
import { decodeIndex, encodeIndex, type DecodedIndex } from "./format.ts";
import { checkpoint, dot, emptyResult, inverseNorm, l2sq, negatesScore, normalized, TopK, type SearchResult } from "./kernels.ts";
import { checkBuildArgs, checkRows, checkSearchArgs, type BuildParams, type SearchParams, type VectorIndex } from "./types.ts";

export class FlatIndex implements VectorIndex {
  readonly type = "FLAT" as const;
  readonly params: Readonly<BuildParams> = {};
  readonly exactVectors = true;
  /** COSINE only: 1/|row| per row. */
  private readonly invNorms: Float64Array | undefined;

  private constructor(
    readonly metric: Metric,
    readonly dim: number,
    readonly count: number,
    private readonly data: Float32Array,
  ) {
    if (metric === "COSINE") {
      const inv = new Float64Array(count);
      for (let i = 0; i < count; i++) inv[i] = inverseNorm(data, i * dim, dim);
      this.invNorms = inv;
    }
  }

  /** Keeps a private copy of `vectors`. */
  static build(metric: Metric, vectors: Float32Array, dim: number): FlatIndex {
    const count = checkBuildArgs(vectors, dim);
    return new FlatIndex(metric, dim, count, vectors.slice());
  }

  /** Wraps `vectors` as is (no copy): the caller hands it over and must not mutate it afterwards. */
  static adopt(metric: Metric, vectors: Float32Array, dim: number): FlatIndex {
    const count = checkBuildArgs(vectors, dim);
    return new FlatIndex(metric, dim, count, vectors);
  }

  static decode(d: DecodedIndex): FlatIndex {
    const { metric, dim, count } = d.header;
    return new FlatIndex(metric, dim, count, d.f32("vectors"));
  }

  static load(bytes: Uint8Array): FlatIndex {
    return FlatIndex.decode(decodeIndex(bytes));
  }

  search(queries: readonly Float32Array[], k: number, _params: SearchParams = {}, allow?: (row: number) => boolean): SearchResult[] {
    const { dim, count, data, metric } = this;
    const kk = checkSearchArgs(queries, k, dim, count);
    const nq = queries.length;
    if (kk === 0) return queries.map(emptyResult);
    const isL2 = metric === "L2";
    const inv = this.invNorms;
    const qs = metric === "COSINE" ? queries.map(normalized) : queries;
    const heaps = qs.map(() => new TopK(kk));
    for (let row = 0, off = 0; row < count; row++, off += dim) {
      if ((row & 4095) === 0) checkpoint();
      if (allow !== undefined && !allow(row)) continue;
      for (let qi = 0; qi < nq; qi++) {
        const h = heaps[qi]!;
        const key = isL2 ? l2sq(qs[qi]!, 0, data, off, dim) : inv !== undefined ? -dot(qs[qi]!, 0, data, off, dim) * inv[row]! : -dot(qs[qi]!, 0, data, off, dim);
        if (key > h.worst) continue;
        h.push(key, row);
      }
    }
    return heaps.map((h) => h.drain(negatesScore(metric)));
  }

  rawVectors(rows: ArrayLike<number>): Float32Array {
    const { dim, data } = this;
    checkRows(rows, this.count);
    const out = new Float32Array(rows.length * dim);
    for (let i = 0; i < rows.length; i++) out.set(data.subarray(rows[i]! * dim, rows[i]! * dim + dim), i * dim);
    return out;
  }

  serialize(): Uint8Array {
    return encodeIndex({ type: "FLAT", metric: this.metric, dim: this.dim, count: this.count, params: {} }, [["vectors", this.data]]);
  }

  memoryBytes(): number {
    return this.data.byteLength + (this.invNorms?.byteLength ?? 0);
  }
}
