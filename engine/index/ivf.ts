/**
 * IVF_FLAT and IVF_SQ8: k-means coarse quantizer + inverted lists.
 *
 * Training: k-means++ seeding (seeded PRNG) and up to KMEANS_ITERS Lloyd
 * iterations on a sample of at most min(count, 256 * nlist, 50 000) vectors
 * (faiss's 256 points per centroid rule). nlist is capped to
 * max(1, floor(count / 39)) (faiss warns below 39 training points per
 * centroid).
 *
 * Metrics: L2 trains and assigns by L2; COSINE normalizes the data and
 * queries and runs spherical k-means (unit centroids, so inner-product and L2
 * assignment coincide); IP trains and assigns by inner product like faiss's
 * IndexIVF with METRIC_INNER_PRODUCT (see ASSIGN_IP_BY_L2 for the
 * alternative). Queries probe the `nprobe` lists whose centroids score best
 * under the index metric, and keep probing further lists while fewer than k
 * allowed rows have been found, so restrictive filters still fill the top-k.
 *
 * Storage: per list a contiguous run of row ids (Int32Array) and of vectors
 * (Float32Array for IVF_FLAT, one uint8 code per dimension for IVF_SQ8) in
 * one shared array, delimited by `offsets` (nlist + 1 entries).
 *
 * SQ8: per-dimension min/max scalar quantization, x ~ min + code * scale with
 * scale = (max - min) / 255. Distances are asymmetric (float query against
 * decoded codes), computed without materializing the decoded vector; for
 * COSINE the score is divided by the decoded vector's norm (stored per row).
 */
import type { Metric } from "../search.ts";
import { decodeIndex, encodeIndex, type DecodedIndex } from "./format.ts";
import { checkpoint, dot, emptyResult, l2sq, negatesScore, normalized, normalizeRows, prng, TopK, type SearchResult } from "./kernels.ts";
import { checkBuildArgs, checkRows, checkSearchArgs, DEFAULT_NLIST, DEFAULT_NPROBE, IndexParamError, type BuildParams, type SearchParams, type VectorIndex } from "./types.ts";

export const KMEANS_ITERS = 15;
export const MAX_TRAIN = 50_000;
export const MIN_POINTS_PER_CENTROID = 39;
export const MAX_POINTS_PER_CENTROID = 256;
const DEFAULT_SEED = 1234;
/** IP only: false = assign by inner product (faiss), true = train and assign by L2. */
export const ASSIGN_IP_BY_L2 = false;

type IvfType = "IVF_FLAT" | "IVF_SQ8";

interface Sq8 {
  vmin: Float32Array;
  vscale: Float32Array;
  codes: Uint8Array;
  /** COSINE only: 1/|decoded row|, in list order. */
  dqInv?: Float32Array;
}

/** How training and assignment compare a vector with a centroid. */
type AssignMode = "l2" | "ip";

const assignMode = (metric: Metric): AssignMode => (metric === "IP" && !ASSIGN_IP_BY_L2 ? "ip" : "l2");

/** Index of the best centroid for data[off..off+dim). cNormSq is needed for "l2". */
const nearest = (mode: AssignMode, data: Float32Array, off: number, cents: Float32Array, cNormSq: Float64Array, nlist: number, dim: number): number => {
  let best = 0;
  let bestKey = Infinity;
  for (let c = 0, coff = 0; c < nlist; c++, coff += dim) {
    // l2: |x|^2 is constant per point, so rank by |c|^2 - 2 x.c
    const key = mode === "l2" ? cNormSq[c]! - 2 * dot(data, off, cents, coff, dim) : -dot(data, off, cents, coff, dim);
    if (key < bestKey) {
      bestKey = key;
      best = c;
    }
  }
  return best;
};

const centroidNorms = (cents: Float32Array, nlist: number, dim: number): Float64Array => {
  const out = new Float64Array(nlist);
  for (let c = 0; c < nlist; c++) out[c] = dot(cents, c * dim, cents, c * dim, dim);
  return out;
};

const normalizeInPlace = (v: Float32Array, off: number, dim: number): void => {
  let s = 0;
  for (let j = 0; j < dim; j++) s += v[off + j]! * v[off + j]!;
  if (s === 0) return;
  const inv = 1 / Math.sqrt(s);
  for (let j = 0; j < dim; j++) v[off + j] = v[off + j]! * inv;
};

/**
 * k-means on `n` rows of `train`: k-means++ seeding by squared L2, then Lloyd
 * iterations with `mode` assignment. `spherical` renormalizes centroids after
 * every update (COSINE). Empty clusters are re-seeded by splitting the
 * largest cluster (as faiss does).
 */
export const kmeans = (train: Float32Array, n: number, dim: number, k: number, mode: AssignMode, spherical: boolean, seed: number, iters = KMEANS_ITERS): Float32Array => {
  const rand = prng(seed);
  const cents = new Float32Array(k * dim);
  // k-means++ seeding
  const minD = new Float64Array(n).fill(Infinity);
  let pick = Math.floor(rand() * n);
  for (let c = 0; c < k; c++) {
    cents.set(train.subarray(pick * dim, pick * dim + dim), c * dim);
    if (c === k - 1) break;
    let total = 0;
    checkpoint();
    for (let i = 0; i < n; i++) {
      const d = l2sq(train, i * dim, cents, c * dim, dim);
      if (d < minD[i]!) minD[i] = d;
      total += minD[i]!;
    }
    if (total === 0) {
      pick = Math.floor(rand() * n); // all points coincide with centroids: any point will do
      continue;
    }
    let r = rand() * total;
    pick = n - 1;
    for (let i = 0; i < n; i++) {
      r -= minD[i]!;
      if (r <= 0) {
        pick = i;
        break;
      }
    }
  }
  if (spherical) for (let c = 0; c < k; c++) normalizeInPlace(cents, c * dim, dim);

  const assign = new Int32Array(n).fill(-1);
  const sums = new Float64Array(k * dim);
  const sizes = new Int32Array(k);
  for (let it = 0; it < iters; it++) {
    const cNormSq = centroidNorms(cents, k, dim);
    let changed = 0;
    sums.fill(0);
    sizes.fill(0);
    for (let i = 0, off = 0; i < n; i++, off += dim) {
      if ((i & 4095) === 0) checkpoint();
      const c = nearest(mode, train, off, cents, cNormSq, k, dim);
      if (c !== assign[i]) {
        changed++;
        assign[i] = c;
      }
      sizes[c] = sizes[c]! + 1;
      const soff = c * dim;
      for (let j = 0; j < dim; j++) sums[soff + j] = sums[soff + j]! + train[off + j]!;
    }
    for (let c = 0; c < k; c++) {
      const sz = sizes[c]!;
      if (sz === 0) continue;
      for (let j = 0; j < dim; j++) cents[c * dim + j] = sums[c * dim + j]! / sz;
    }
    // Split the largest cluster into every empty one.
    for (let c = 0; c < k; c++) {
      if (sizes[c] !== 0) continue;
      let big = 0;
      for (let b = 1; b < k; b++) if (sizes[b]! > sizes[big]!) big = b;
      const EPS = 1 / 1024;
      for (let j = 0; j < dim; j++) {
        const v = cents[big * dim + j]!;
        const sign = j % 2 === 0 ? 1 : -1;
        cents[c * dim + j] = v * (1 + sign * EPS);
        cents[big * dim + j] = v * (1 - sign * EPS);
      }
      sizes[c] = sizes[big]! >> 1;
      sizes[big] = sizes[big]! - sizes[c]!;
    }
    if (spherical) for (let c = 0; c < k; c++) normalizeInPlace(cents, c * dim, dim);
    if (it > 0 && changed <= n / 1000) break;
  }
  return cents;
};

/** Seeded sample of `m` distinct rows of `data` (all rows, in order, when m >= count). */
const sampleRows = (data: Float32Array, count: number, dim: number, m: number, seed: number): Float32Array => {
  if (m >= count) return data;
  const rand = prng(seed ^ 0x9e3779b9);
  const idx = new Int32Array(count);
  for (let i = 0; i < count; i++) idx[i] = i;
  const out = new Float32Array(m * dim);
  for (let i = 0; i < m; i++) {
    const j = i + Math.floor(rand() * (count - i));
    const t = idx[i]!;
    idx[i] = idx[j]!;
    idx[j] = t;
    out.set(data.subarray(idx[i]! * dim, idx[i]! * dim + dim), i * dim);
  }
  return out;
};

export class IvfIndex implements VectorIndex {
  private constructor(
    readonly type: IvfType,
    readonly metric: Metric,
    readonly dim: number,
    readonly count: number,
    readonly params: Readonly<Required<Pick<BuildParams, "nlist" | "seed">>>,
    private readonly centroids: Float32Array,
    private readonly offsets: Int32Array,
    private readonly ids: Int32Array,
    private readonly vectors: Float32Array | undefined,
    private readonly sq8: Sq8 | undefined,
  ) {}

  /** Stored position of each row (inverse of `ids`), built on the first `rawVectors()` call. */
  private positions: Int32Array | undefined;

  /** IVF_FLAT keeps L2 and IP vectors as given; COSINE stores unit vectors, SQ8 codes. */
  get exactVectors(): boolean {
    return this.type === "IVF_FLAT" && this.metric !== "COSINE";
  }

  /** The stored vectors of `rows`: exact for IVF_FLAT under L2 and IP only. */
  rawVectors(rows: ArrayLike<number>): Float32Array {
    if (!this.exactVectors || this.vectors === undefined)
      throw new IndexParamError(`an ${this.type} ${this.metric} index does not store the inserted vectors`);
    const { dim, count, ids } = this;
    checkRows(rows, count);
    let pos = this.positions;
    if (pos === undefined) {
      pos = new Int32Array(count);
      for (let p = 0; p < count; p++) pos[ids[p]!] = p;
      this.positions = pos;
    }
    const data = this.vectors;
    const out = new Float32Array(rows.length * dim);
    for (let i = 0; i < rows.length; i++) {
      const p = pos[rows[i]!]!;
      out.set(data.subarray(p * dim, p * dim + dim), i * dim);
    }
    return out;
  }

  get nlist(): number {
    return this.params.nlist;
  }

  /** Rows per list (for diagnostics and tests). */
  listSizes(): Int32Array {
    const out = new Int32Array(this.nlist);
    for (let i = 0; i < this.nlist; i++) out[i] = this.offsets[i + 1]! - this.offsets[i]!;
    return out;
  }

  static build(type: IvfType, metric: Metric, vectors: Float32Array, dim: number, params: BuildParams = {}): IvfIndex {
    const count = checkBuildArgs(vectors, dim);
    const requested = params.nlist ?? DEFAULT_NLIST;
    if (!Number.isInteger(requested) || requested < 1) throw new IndexParamError(`IVF nlist must be a positive integer, got ${requested}`);
    const seed = params.seed ?? DEFAULT_SEED;
    const nlist = count === 0 ? 0 : Math.min(requested, Math.max(1, Math.floor(count / MIN_POINTS_PER_CENTROID)));
    const data = metric === "COSINE" ? normalizeRows(vectors, count, dim) : vectors;
    const mode = assignMode(metric);

    const nTrain = Math.min(count, MAX_TRAIN, nlist * MAX_POINTS_PER_CENTROID);
    const train = sampleRows(data, count, dim, nTrain, seed);
    const centroids = nlist === 0 ? new Float32Array(0) : kmeans(train, nTrain, dim, nlist, mode, metric === "COSINE", seed);

    // Assign every row, then lay the lists out contiguously.
    const cNormSq = centroidNorms(centroids, nlist, dim);
    const listOf = new Int32Array(count);
    const offsets = new Int32Array(nlist + 1);
    for (let i = 0; i < count; i++) {
      if ((i & 4095) === 0) checkpoint();
      const c = nearest(mode, data, i * dim, centroids, cNormSq, nlist, dim);
      listOf[i] = c;
      offsets[c + 1] = offsets[c + 1]! + 1;
    }
    for (let c = 0; c < nlist; c++) offsets[c + 1] = offsets[c + 1]! + offsets[c]!;
    const fill = offsets.slice(0, Math.max(1, nlist));
    const ids = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      const c = listOf[i]!;
      ids[fill[c]!] = i;
      fill[c] = fill[c]! + 1;
    }

    const p = { nlist, seed };
    if (type === "IVF_FLAT") {
      const stored = new Float32Array(count * dim);
      for (let p2 = 0; p2 < count; p2++) stored.set(data.subarray(ids[p2]! * dim, ids[p2]! * dim + dim), p2 * dim);
      return new IvfIndex(type, metric, dim, count, p, centroids, offsets, ids, stored, undefined);
    }
    return new IvfIndex(type, metric, dim, count, p, centroids, offsets, ids, undefined, quantize(metric, data, ids, count, dim));
  }

  static decode(d: DecodedIndex): IvfIndex {
    const { type, metric, dim, count, params } = d.header;
    if (type !== "IVF_FLAT" && type !== "IVF_SQ8") throw new IndexParamError(`not an IVF index: ${type}`);
    const p = { nlist: params.nlist ?? 0, seed: params.seed ?? DEFAULT_SEED };
    const centroids = d.f32("centroids");
    const offsets = d.i32("offsets");
    const ids = d.i32("ids");
    if (offsets.length !== p.nlist + 1 || ids.length !== count || centroids.length !== p.nlist * dim) throw new IndexParamError("corrupt IVF index: section sizes disagree with the header");
    if (type === "IVF_FLAT") return new IvfIndex(type, metric, dim, count, p, centroids, offsets, ids, d.f32("vectors"), undefined);
    const sq8: Sq8 = { vmin: d.f32("vmin"), vscale: d.f32("vscale"), codes: d.bytes("codes") };
    if (d.has("dqinv")) sq8.dqInv = d.f32("dqinv");
    return new IvfIndex(type, metric, dim, count, p, centroids, offsets, ids, undefined, sq8);
  }

  static load(bytes: Uint8Array): IvfIndex {
    return IvfIndex.decode(decodeIndex(bytes));
  }

  search(queries: readonly Float32Array[], k: number, params: SearchParams = {}, allow?: (row: number) => boolean): SearchResult[] {
    const { dim, count, metric, nlist, centroids, offsets, ids } = this;
    const kk = checkSearchArgs(queries, k, dim, count);
    if (kk === 0 || nlist === 0) return queries.map(emptyResult);
    const np = params.nprobe ?? DEFAULT_NPROBE;
    if (!Number.isFinite(np) || np < 1) throw new IndexParamError(`IVF nprobe must be a positive integer, got ${params.nprobe}`);
    const nprobe = Math.min(nlist, Math.floor(np));
    const isL2 = metric === "L2";
    const heap = new TopK(kk);
    const ckey = new Float64Array(nlist);
    const order = new Int32Array(nlist);
    const scanner = this.sq8 ? this.sq8Scanner(this.sq8) : undefined;

    return queries.map((q0) => {
      checkpoint();
      const q = metric === "COSINE" ? normalized(q0) : q0;
      for (let c = 0; c < nlist; c++) {
        ckey[c] = isL2 ? l2sq(q, 0, centroids, c * dim, dim) : -dot(q, 0, centroids, c * dim, dim);
        order[c] = c;
      }
      order.sort((a, b) => ckey[a]! - ckey[b]! || a - b);
      const scan = scanner?.(q);
      for (let oi = 0; oi < nlist; oi++) {
        if (oi >= nprobe && heap.full) break;
        const li = order[oi]!;
        const end = offsets[li + 1]!;
        for (let p = offsets[li]!; p < end; p++) {
          const row = ids[p]!;
          if (allow !== undefined && !allow(row)) continue;
          const key = scan !== undefined ? scan(p) : isL2 ? l2sq(q, 0, this.vectors!, p * dim, dim) : -dot(q, 0, this.vectors!, p * dim, dim);
          if (key > heap.worst) continue;
          heap.push(key, row);
        }
      }
      return heap.drain(negatesScore(metric));
    });
  }

  /** Per query: precompute the query's affine terms, return key(p) for stored position p. */
  private sq8Scanner(sq: Sq8): (q: Float32Array) => (p: number) => number {
    const { dim, metric } = this;
    const { vmin, vscale, codes, dqInv } = sq;
    return (q) => {
      if (metric === "L2") {
        // |q - (min + c*s)|^2 = sum ((q - min) - c*s)^2
        const qm = new Float64Array(dim);
        const s = Float64Array.from(vscale);
        for (let j = 0; j < dim; j++) qm[j] = q[j]! - vmin[j]!;
        return (p) => {
          const off = p * dim;
          let acc = 0;
          for (let j = 0; j < dim; j++) {
            const d = qm[j]! - codes[off + j]! * s[j]!;
            acc += d * d;
          }
          return acc;
        };
      }
      // q.(min + c*s) = q.min + sum (q*s) c
      const qs = new Float64Array(dim);
      let base = 0;
      for (let j = 0; j < dim; j++) {
        qs[j] = q[j]! * vscale[j]!;
        base += q[j]! * vmin[j]!;
      }
      return (p) => {
        const off = p * dim;
        let acc = base;
        for (let j = 0; j < dim; j++) acc += qs[j]! * codes[off + j]!;
        return dqInv !== undefined ? -acc * dqInv[p]! : -acc;
      };
    };
  }

  serialize(): Uint8Array {
    const sections: [string, ArrayBufferView][] = [
      ["centroids", this.centroids],
      ["offsets", this.offsets],
      ["ids", this.ids],
    ];
    if (this.vectors) sections.push(["vectors", this.vectors]);
    if (this.sq8) {
      sections.push(["vmin", this.sq8.vmin], ["vscale", this.sq8.vscale], ["codes", this.sq8.codes]);
      if (this.sq8.dqInv) sections.push(["dqinv", this.sq8.dqInv]);
    }
    return encodeIndex({ type: this.type, metric: this.metric, dim: this.dim, count: this.count, params: { ...this.params } }, sections);
  }

  memoryBytes(): number {
    const sq = this.sq8;
    return (
      this.centroids.byteLength +
      this.offsets.byteLength +
      this.ids.byteLength +
      (this.vectors?.byteLength ?? 0) +
      (this.positions?.byteLength ?? 0) +
      (sq ? sq.vmin.byteLength + sq.vscale.byteLength + sq.codes.byteLength + (sq.dqInv?.byteLength ?? 0) : 0)
    );
  }
}

/** Per-dimension min/max SQ8 codes of `data` rows in list order (`ids`). */
const quantize = (metric: Metric, data: Float32Array, ids: Int32Array, count: number, dim: number): Sq8 => {
  const vmin = new Float32Array(dim).fill(Infinity);
  const vmax = new Float32Array(dim).fill(-Infinity);
  for (let i = 0, off = 0; i < count; i++, off += dim)
    for (let j = 0; j < dim; j++) {
      const v = data[off + j]!;
      if (v < vmin[j]!) vmin[j] = v;
      if (v > vmax[j]!) vmax[j] = v;
    }
  const vscale = new Float32Array(dim);
  for (let j = 0; j < dim; j++) {
    if (count === 0) vmin[j] = 0;
    vscale[j] = count === 0 ? 0 : (vmax[j]! - vmin[j]!) / 255;
  }
  const codes = new Uint8Array(count * dim);
  const dqInv = metric === "COSINE" ? new Float32Array(count) : undefined;
  for (let p = 0; p < count; p++) {
    const src = ids[p]! * dim;
    const dst = p * dim;
    let nsq = 0;
    for (let j = 0; j < dim; j++) {
      const s = vscale[j]!;
      const c = s > 0 ? Math.min(255, Math.max(0, Math.round((data[src + j]! - vmin[j]!) / s))) : 0;
      codes[dst + j] = c;
      const dq = vmin[j]! + c * s;
      nsq += dq * dq;
    }
    if (dqInv) dqInv[p] = nsq > 0 ? 1 / Math.sqrt(nsq) : 0;
  }
  return { vmin, vscale, codes, ...(dqInv ? { dqInv } : {}) };
};
