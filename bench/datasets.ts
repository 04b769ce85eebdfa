/**
 * Benchmark datasets: seeded synthetic clustered Gaussians, loaders for the
 * TEXMEX formats (.fvecs / .ivecs / .bvecs) and IDX (MNIST / Fashion-MNIST,
 * optionally gzipped), and exact ground truth (top-k by brute force) cached on
 * disk under bench/data/ (gitignored) keyed by dataset + parameters.
 *
 * ann-benchmarks `.hdf5` files are read by bench/hdf5.ts (h5wasm).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export type Metric = "L2" | "IP" | "COSINE";

/** Vectors stored row-major in one Float32Array (row i = data[i*dim .. (i+1)*dim)). */
export interface VectorSet {
  readonly data: Float32Array;
  readonly n: number;
  readonly dim: number;
}

export interface Dataset {
  /** Stable name including every parameter that changes the data (cache key). */
  readonly name: string;
  readonly metric: Metric;
  readonly base: VectorSet;
  readonly queries: VectorSet;
  /** Human description for reports. */
  readonly description: string;
  /**
   * Exact neighbours shipped with the data (ann-benchmarks `neighbors`, a TEXMEX groundtruth .ivecs):
   * row-major, `k` per query, for the queries in order. Only set when the base set is complete (no --n
   * cut), since the ids refer to the whole file. groundTruth() uses it instead of scanning.
   */
  readonly truth?: { readonly ids: Int32Array; readonly k: number; readonly source: string };
}

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const DATA_DIR = join(BENCH_DIR, "data");

// ---------------------------------------------------------------- PRNG

/** mulberry32: tiny seeded PRNG, uniform in [0, 1). */
export const mulberry32 = (seed: number): (() => number) => {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

/** Standard normal samples (Box-Muller) from a uniform source. */
export const gaussian = (uniform: () => number): (() => number) => {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = uniform();
    const v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
};

// ---------------------------------------------------------------- synthetic

export interface SyntheticParams {
  n: number;
  dim: number;
  nq: number;
  /** Number of Gaussian clusters (default 100). */
  clusters?: number;
  /** Std-dev of points around their cluster centre, relative to the centres' spread (default 0.5). */
  spread?: number;
  seed?: number;
  metric?: Metric;
}

/**
 * Clustered Gaussian: `clusters` centres ~ N(0, 1)^dim, each point = a
 * uniformly chosen centre + N(0, spread^2)^dim. Queries come from the same
 * distribution with an independent stream (they are not base points).
 */
export const syntheticClustered = (p: SyntheticParams): Dataset => {
  const clusters = p.clusters ?? 100;
  const spread = p.spread ?? 0.5;
  const seed = p.seed ?? 42;
  const metric = p.metric ?? "L2";
  const { n, dim, nq } = p;
  const centreRng = gaussian(mulberry32(seed));
  const centres = new Float32Array(clusters * dim);
  for (let i = 0; i < centres.length; i++) centres[i] = centreRng();
  const draw = (count: number, s: number): Float32Array => {
    const u = mulberry32(s);
    const g = gaussian(u);
    const out = new Float32Array(count * dim);
    for (let i = 0; i < count; i++) {
      const c = Math.floor(u() * clusters) * dim;
      const o = i * dim;
      for (let j = 0; j < dim; j++) out[o + j] = centres[c + j]! + spread * g();
    }
    return out;
  };
  return {
    name: `synth-c${clusters}-s${spread}-seed${seed}-${n}x${dim}-q${nq}-${metric}`,
    metric,
    base: { data: draw(n, seed + 1), n, dim },
    queries: { data: draw(nq, seed + 2), n: nq, dim },
    description: `synthetic clustered Gaussian (${clusters} clusters, spread ${spread}, seed ${seed}), ${n} x ${dim}, ${nq} queries, ${metric}`,
  };
};

// ---------------------------------------------------------------- TEXMEX formats

/**
 * Reads `.fvecs` (float32), `.ivecs` (int32) or `.bvecs` (uint8) — each
 * vector is a little-endian int32 dimension followed by `dim` components.
 * `.bvecs` components are widened to float32.
 */
export const parseVecs = (buf: Uint8Array, kind: "fvecs" | "ivecs" | "bvecs", limit = Infinity): { data: Float32Array | Int32Array; n: number; dim: number } => {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.byteLength < 4) return { data: kind === "ivecs" ? new Int32Array(0) : new Float32Array(0), n: 0, dim: 0 };
  const dim = view.getInt32(0, true);
  if (dim <= 0 || dim > 1 << 20) throw new Error(`${kind}: bad dimension ${dim} in the first record`);
  const compBytes = kind === "bvecs" ? 1 : 4;
  const recBytes = 4 + dim * compBytes;
  if (buf.byteLength % recBytes !== 0) throw new Error(`${kind}: file size ${buf.byteLength} is not a multiple of the record size ${recBytes} (dim ${dim})`);
  const n = Math.min(buf.byteLength / recBytes, limit);
  const data = kind === "ivecs" ? new Int32Array(n * dim) : new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const off = i * recBytes;
    const d = view.getInt32(off, true);
    if (d !== dim) throw new Error(`${kind}: record ${i} has dimension ${d}, expected ${dim}`);
    const o = i * dim;
    for (let j = 0; j < dim; j++) {
      const p = off + 4 + j * compBytes;
      data[o + j] = kind === "fvecs" ? view.getFloat32(p, true) : kind === "ivecs" ? view.getInt32(p, true) : buf[p]!;
    }
  }
  return { data, n, dim };
};

const kindOf = (path: string): "fvecs" | "ivecs" | "bvecs" => {
  const m = /\.(fvecs|ivecs|bvecs)$/.exec(path);
  if (!m) throw new Error(`${path}: expected a .fvecs, .ivecs or .bvecs file`);
  return m[1] as "fvecs" | "ivecs" | "bvecs";
};

/** Load a .fvecs or .bvecs file (optionally only the first `limit` vectors). */
export const readFvecs = (path: string, limit?: number): VectorSet => {
  const kind = kindOf(path);
  if (kind === "ivecs") throw new Error(`${path}: use readIvecs for .ivecs`);
  const r = parseVecs(readFileSync(path), kind, limit);
  return { data: r.data as Float32Array, n: r.n, dim: r.dim };
};

/** Load a .ivecs file (e.g. ground-truth neighbour ids). */
export const readIvecs = (path: string, limit?: number): { data: Int32Array; n: number; dim: number } => {
  const r = parseVecs(readFileSync(path), "ivecs", limit);
  return { data: r.data as Int32Array, n: r.n, dim: r.dim };
};

/** Encode row-major vectors as .fvecs / .ivecs bytes. */
export const encodeVecs = (data: Float32Array | Int32Array, dim: number): Buffer => {
  const n = dim === 0 ? 0 : data.length / dim;
  if (!Number.isInteger(n)) throw new Error(`encodeVecs: ${data.length} values are not a multiple of dim ${dim}`);
  const buf = Buffer.alloc(n * (4 + 4 * dim));
  for (let i = 0; i < n; i++) {
    const off = i * (4 + 4 * dim);
    buf.writeInt32LE(dim, off);
    for (let j = 0; j < dim; j++) {
      if (data instanceof Float32Array) buf.writeFloatLE(data[i * dim + j]!, off + 4 + 4 * j);
      else buf.writeInt32LE(data[i * dim + j]!, off + 4 + 4 * j);
    }
  }
  return buf;
};

export const writeVecs = (path: string, data: Float32Array | Int32Array, dim: number): void => {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, encodeVecs(data, dim));
  renameSync(tmp, path);
};

/**
 * A TEXMEX-style dataset on disk: base vectors (.fvecs / .bvecs), queries (.fvecs / .bvecs) and
 * optionally the exact neighbours (.ivecs, e.g. SIFT's `sift_groundtruth.ivecs`). `n` / `nq` keep only
 * the first vectors; the ground truth file is then used only if the base set is complete.
 */
export const fvecsDataset = (p: { base: string; query: string; gt?: string; n?: number; nq?: number; metric?: Metric }): Dataset => {
  const metric = p.metric ?? "L2";
  const base = readFvecs(p.base, p.n);
  const queries = readFvecs(p.query, p.nq ?? 1000);
  if (queries.dim !== base.dim) throw new Error(`${p.query}: queries have dim ${queries.dim}, base vectors ${base.dim}`);
  const fileRows = statSync(p.base).size / (4 + base.dim * (kindOf(p.base) === "bvecs" ? 1 : 4));
  const full = base.n === fileRows;
  let truth: Dataset["truth"];
  if (p.gt && full) {
    const g = readIvecs(p.gt, queries.n);
    if (g.n < queries.n) throw new Error(`${p.gt}: ${g.n} ground-truth rows for ${queries.n} queries`);
    truth = { ids: g.data, k: g.dim, source: p.gt };
  }
  const tag = `${basename(p.base).replace(/\.[a-z]+$/, "")}-${statSync(p.base).size}`;
  return {
    name: `fvecs-${tag}-${base.n}x${base.dim}-q${queries.n}-${metric}`,
    metric,
    base,
    queries,
    ...(truth ? { truth } : {}),
    description: `${basename(p.base)} (${base.n} x ${base.dim} base${full ? "" : `, first ${base.n}`}), ${queries.n} queries from ${basename(p.query)}, ${metric}${truth ? `; ground truth from ${basename(p.gt!)}` : p.gt ? " (ground truth file not used: base set cut by --n, recomputed)" : ""}`,
  };
};

// ---------------------------------------------------------------- IDX (MNIST family)

/**
 * Parses an IDX file (gzipped or not). Images (type 0x08 ubyte, 3 dims) become
 * row-major float32 vectors of rows*cols components, values 0..255.
 */
export const parseIdx = (raw: Uint8Array): { data: Float32Array; n: number; dim: number } => {
  const buf = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) throw new Error("IDX: bad magic number");
  const type = buf[2]!;
  const ndims = buf[3]!;
  if (type !== 0x08) throw new Error(`IDX: only unsigned byte data (0x08) is supported, got 0x${type.toString(16)}`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const n = dims[0] ?? 0;
  const dim = dims.slice(1).reduce((a, b) => a * b, 1);
  const start = 4 + 4 * ndims;
  if (buf.length < start + n * dim) throw new Error(`IDX: truncated (${buf.length} bytes, need ${start + n * dim})`);
  const data = new Float32Array(n * dim);
  for (let i = 0; i < n * dim; i++) data[i] = buf[start + i]!;
  return { data, n, dim };
};

export const FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

export const fashionMnistAvailable = (dir = FASHION_MNIST_DIR): boolean =>
  existsSync(join(dir, "train-images-idx3-ubyte.gz")) && existsSync(join(dir, "t10k-images-idx3-ubyte.gz"));

export const FASHION_MNIST_HELP = [
  "Fashion-MNIST not found at /usr/share/datasets/fashion-mnist.",
  "Install it from Debian:  apt-get update && apt-get install -y dataset-fashion-mnist",
  "(files: train-images-idx3-ubyte.gz = 60k base vectors, t10k-images-idx3-ubyte.gz = 10k queries, 784 dims).",
].join("\n");

/** Fashion-MNIST: 60k train images as base, the 10k test images as queries (first `nq`), L2. */
export const fashionMnist = (nq = 10_000, dir = FASHION_MNIST_DIR): Dataset => {
  const train = parseIdx(readFileSync(join(dir, "train-images-idx3-ubyte.gz")));
  const test = parseIdx(readFileSync(join(dir, "t10k-images-idx3-ubyte.gz")));
  const q = Math.min(nq, test.n);
  return {
    name: `fashion-mnist-${train.n}x${train.dim}-q${q}-L2`,
    metric: "L2",
    base: { data: train.data, n: train.n, dim: train.dim },
    queries: { data: test.data.slice(0, q * test.dim), n: q, dim: test.dim },
    description: `Fashion-MNIST (Debian dataset-fashion-mnist): ${train.n} x ${train.dim} base, ${q} queries, L2`,
  };
};

// ---------------------------------------------------------------- exact search

/** Squared L2 / dot between base row `row` and query `q`. */
const l2sq = (a: Float32Array, ao: number, q: Float32Array, qo: number, dim: number): number => {
  // Four accumulators (same trick as the engine) so the baseline is not handicapped by a dependency chain.
  let s0 = 0,
    s1 = 0,
    s2 = 0,
    s3 = 0;
  let j = 0;
  for (; j + 3 < dim; j += 4) {
    const d0 = a[ao + j]! - q[qo + j]!;
    const d1 = a[ao + j + 1]! - q[qo + j + 1]!;
    const d2 = a[ao + j + 2]! - q[qo + j + 2]!;
    const d3 = a[ao + j + 3]! - q[qo + j + 3]!;
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  for (; j < dim; j++) {
    const d = a[ao + j]! - q[qo + j]!;
    s0 += d * d;
  }
  return s0 + s1 + s2 + s3;
};
const dotp = (a: Float32Array, ao: number, q: Float32Array, qo: number, dim: number): number => {
  let s = 0;
  for (let j = 0; j < dim; j++) s += a[ao + j]! * q[qo + j]!;
  return s;
};

/**
 * Single-threaded brute-force top-k of one query (the in-process scan
 * baseline): smaller key is better (L2 distance, negated IP/COSINE score),
 * ties by id ascending. Returns base row ids best first. `keep(row)` filters.
 */
export const scanTopK = (
  base: VectorSet,
  q: Float32Array,
  qOff: number,
  k: number,
  metric: Metric,
  keep?: (row: number) => boolean,
  baseInvNorms?: Float64Array,
): { ids: Int32Array; keys: Float64Array } => {
  const { data, n, dim } = base;
  const ids = new Int32Array(k).fill(-1);
  const keys = new Float64Array(k).fill(Infinity);
  let qInv = 1;
  if (metric === "COSINE") {
    const s = dotp(q, qOff, q, qOff, dim);
    qInv = s > 0 ? 1 / Math.sqrt(s) : 0;
  }
  let worst = Infinity;
  for (let row = 0; row < n; row++) {
    if (keep !== undefined && !keep(row)) continue;
    const off = row * dim;
    let key: number;
    if (metric === "L2") key = l2sq(data, off, q, qOff, dim);
    else if (metric === "IP") key = -dotp(data, off, q, qOff, dim);
    else {
      let inv: number;
      if (baseInvNorms) inv = baseInvNorms[row]!;
      else {
        const s = dotp(data, off, data, off, dim);
        inv = s > 0 ? 1 / Math.sqrt(s) : 0;
      }
      key = -dotp(data, off, q, qOff, dim) * inv * qInv;
    }
    if (key >= worst) continue; // ties: the earlier (smaller) id stays
    // insertion into the sorted top-k
    let i = k - 1;
    while (i > 0 && keys[i - 1]! > key) {
      keys[i] = keys[i - 1]!;
      ids[i] = ids[i - 1]!;
      i--;
    }
    keys[i] = key;
    ids[i] = row;
    worst = keys[k - 1]!;
  }
  return { ids, keys };
};

export interface GroundTruthOptions {
  k: number;
  /** Name of the filter (part of the cache key), with its predicate over base row ids. */
  filter?: { name: string; keep: (row: number) => boolean };
  /** Called with (done, total) for progress. */
  onProgress?: (done: number, total: number) => void;
  /** Cache directory (default bench/data). */
  cacheDir?: string;
}

/**
 * Exact top-k base ids of every query (row-major nq x k, -1 where fewer than k
 * rows qualify). Computed once and cached as .ivecs under bench/data/.
 */
export const groundTruth = (ds: Dataset, opts: GroundTruthOptions): { ids: Int32Array; cached: boolean; path: string } => {
  const { k } = opts;
  const dir = opts.cacheDir ?? DATA_DIR;
  // Neighbours shipped with the dataset (unfiltered only): the first k of each row.
  const t = ds.truth;
  if (!opts.filter && t && t.k >= k && t.ids.length >= ds.queries.n * t.k) {
    const ids = new Int32Array(ds.queries.n * k);
    for (let q = 0; q < ds.queries.n; q++) ids.set(t.ids.subarray(q * t.k, q * t.k + k), q * k);
    opts.onProgress?.(ds.queries.n, ds.queries.n);
    return { ids, cached: true, path: t.source };
  }
  const path = join(dir, `gt-${ds.name}-k${k}${opts.filter ? `-f_${opts.filter.name.replace(/[^A-Za-z0-9_]+/g, "_")}` : ""}.ivecs`);
  if (existsSync(path)) {
    const r = readIvecs(path);
    if (r.n === ds.queries.n && r.dim === k) return { ids: r.data, cached: true, path };
  }
  const { queries, metric } = ds;
  const ids = new Int32Array(queries.n * k);
  let invNorms: Float64Array | undefined;
  if (metric === "COSINE") {
    invNorms = new Float64Array(ds.base.n);
    for (let r = 0; r < ds.base.n; r++) {
      const s = dotp(ds.base.data, r * ds.base.dim, ds.base.data, r * ds.base.dim, ds.base.dim);
      invNorms[r] = s > 0 ? 1 / Math.sqrt(s) : 0;
    }
  }
  for (let qi = 0; qi < queries.n; qi++) {
    const r = scanTopK(ds.base, queries.data, qi * queries.dim, k, metric, opts.filter?.keep, invNorms);
    ids.set(r.ids, qi * k);
    opts.onProgress?.(qi + 1, queries.n);
  }
  writeVecs(path, ids, k);
  return { ids, cached: false, path };
};

/** recall@k: |found ∩ truth| / |truth| averaged over queries (truth entries of -1 are ignored). */
export const recallAtK = (found: readonly (readonly number[])[], truth: Int32Array, k: number): number => {
  let sum = 0;
  let counted = 0;
  found.forEach((f, qi) => {
    const t = new Set<number>();
    for (let j = 0; j < k; j++) {
      const id = truth[qi * k + j]!;
      if (id >= 0) t.add(id);
    }
    if (t.size === 0) return;
    let hit = 0;
    for (const id of f.slice(0, k)) if (t.has(id)) hit++;
    sum += hit / t.size;
    counted++;
  });
  return counted === 0 ? 1 : sum / counted;
};

/** Row `i` of a vector set as a fresh Float32Array. */
export const row = (v: VectorSet, i: number): Float32Array => v.data.slice(i * v.dim, (i + 1) * v.dim);

/** Rows [start, end) of `ds` as an application builds them: id, its vector (a copy) and bucket = id % 100. */
export const rowsOf = (ds: Dataset, start: number, end: number) => {
  const { dim, data } = ds.base;
  const rows = new Array<{ id: number; vector: Float32Array; bucket: number }>(end - start);
  for (let i = start; i < end; i++) rows[i - start] = { id: i, vector: data.slice(i * dim, (i + 1) * dim), bucket: i % 100 };
  return rows;
};
