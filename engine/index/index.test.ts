import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rng } from "../testkit.ts";
import {
  buildIndex,
  buildIndexBytes,
  FlatIndex,
  IndexParamError,
  IvfIndex,
  loadIndex,
  loadIndexFile,
  resolveIndexType,
  type BuildParams,
  type IndexType,
  type Metric,
  type SearchParams,
  type SearchResult,
  type VectorIndex,
} from "./index.ts";
import { bruteForceLimit, buildThreads, HnswIndex, hnswBuildAddon } from "./hnsw.ts";
import hnswlib from "hnswlib-node";
import { indexFileRange } from "./format.ts";
import { BUILD_THREAD_NICE, IndexWorkerError, IndexWorkerPool } from "./pool.ts";

// ---------------------------------------------------------------- seeded clustered data

const N = 20_000;
const D = 32;
const CLUSTERS = 50;
const NQ = 100;
const K = 10;
/** Per-dimension noise around unit-Gaussian centers: clusters overlap, so the ANN floors are not trivially met. */
const SIGMA = 1.0;

const gaussian = (r: () => number) => (): number => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());

const clustered = (seed: number, n: number, dim: number, clusters: number): Float32Array => {
  const g = gaussian(rng(seed));
  const pickR = rng(seed + 1);
  const centers = Array.from({ length: clusters }, () => Array.from({ length: dim }, g));
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = centers[Math.floor(pickR() * clusters)]!;
    for (let j = 0; j < dim; j++) out[i * dim + j] = c[j]! + SIGMA * g();
  }
  return out;
};

const DATA = clustered(42, N, D, CLUSTERS);
// Queries come from the same mixture (same centers: same seed), drawn past the data rows.
const QUERIES: Float32Array[] = (() => {
  const all = clustered(42, N + NQ, D, CLUSTERS);
  return Array.from({ length: NQ }, (_, i) => all.slice((N + i) * D, (N + i + 1) * D));
})();

/** Independent exact distance in float64, written naively. */
const exactDistance = (metric: Metric, q: Float32Array, row: number): number => {
  let s = 0;
  let qq = 0;
  let bb = 0;
  for (let j = 0; j < D; j++) {
    const a = q[j]!;
    const b = DATA[row * D + j]!;
    if (metric === "L2") s += (a - b) * (a - b);
    else s += a * b;
    qq += a * a;
    bb += b * b;
  }
  return metric === "COSINE" ? s / Math.sqrt(qq * bb) : s;
};

/** Brute-force top-k rows per query (ties by row), over rows passing `allow`. */
const groundTruth = (metric: Metric, allow?: (row: number) => boolean): number[][] =>
  QUERIES.map((q) => {
    const better = (da: number, ra: number, db: number, rb: number) => (da !== db ? (metric === "L2" ? da < db : da > db) : ra < rb);
    const top: { row: number; d: number }[] = [];
    for (let row = 0; row < N; row++) {
      if (allow && !allow(row)) continue;
      const d = exactDistance(metric, q, row);
      if (top.length === K && !better(d, row, top[K - 1]!.d, top[K - 1]!.row)) continue;
      let i = top.length < K ? top.length : K - 1;
      top[i] = { row, d };
      while (i > 0 && better(d, row, top[i - 1]!.d, top[i - 1]!.row)) {
        top[i] = top[i - 1]!;
        top[i - 1] = { row, d };
        i--;
      }
    }
    return top.map((t) => t.row);
  });

const recall = (res: SearchResult[], gt: number[][]): number => {
  let hit = 0;
  let total = 0;
  res.forEach((r, qi) => {
    const want = new Set(gt[qi]!);
    total += want.size;
    for (const row of r.rows) if (want.has(row)) hit++;
  });
  return hit / total;
};

const maxDistanceError = (metric: Metric, res: SearchResult[]): number => {
  let worst = 0;
  res.forEach((r, qi) => r.rows.forEach((row, i) => (worst = Math.max(worst, Math.abs(r.distances[i]! - exactDistance(metric, QUERIES[qi]!, row))))));
  return worst;
};

const sameResults = (a: SearchResult[], b: SearchResult[]): void => {
  expect(a.length).toBe(b.length);
  a.forEach((r, i) => {
    expect(Array.from(r.rows)).toEqual(Array.from(b[i]!.rows));
    expect(Array.from(r.distances)).toEqual(Array.from(b[i]!.distances));
  });
};

const METRICS: Metric[] = ["L2", "IP", "COSINE"];
// HNSW builds on two threads whatever the machine: the floors below hold for the parallel build.
const CASES: { type: IndexType; build: BuildParams; search: SearchParams; floor: number; exactDistances: boolean }[] = [
  { type: "FLAT", build: {}, search: {}, floor: 1, exactDistances: true },
  { type: "HNSW", build: { M: 16, efConstruction: 200, threads: 2 }, search: { ef: 64 }, floor: 0.95, exactDistances: true },
  { type: "IVF_FLAT", build: { nlist: 64 }, search: { nprobe: 16 }, floor: 0.9, exactDistances: true },
  { type: "IVF_SQ8", build: { nlist: 64 }, search: { nprobe: 16 }, floor: 0.85, exactDistances: false },
];

const built = new Map<string, VectorIndex>();
const indexFor = (type: IndexType, metric: Metric): VectorIndex => {
  const key = `${type}/${metric}`;
  let idx = built.get(key);
  if (!idx) {
    idx = buildIndex(type, metric, DATA, D, CASES.find((c) => c.type === type)!.build);
    built.set(key, idx);
  }
  return idx;
};
const gtCache = new Map<Metric, number[][]>();
const gtFor = (metric: Metric): number[][] => {
  let gt = gtCache.get(metric);
  if (!gt) gtCache.set(metric, (gt = groundTruth(metric)));
  return gt;
};

// ---------------------------------------------------------------- accuracy

describe.each(METRICS)("%s", (metric) => {
  for (const c of CASES) {
    // Proves the index meets its recall@10 floor against brute-force ground truth, and (except SQ8) returns exact distances.
    it(`${c.type} recall@${K} >= ${c.floor}${c.exactDistances ? ", distances within 1e-3" : ""}`, () => {
      const idx = indexFor(c.type, metric);
      expect(idx.count).toBe(N);
      const res = idx.search(QUERIES, K, c.search);
      for (const r of res) expect(r.rows.length).toBe(K);
      const rc = recall(res, gtFor(metric));
      if (c.floor === 1) expect(rc).toBe(1);
      else expect(rc).toBeGreaterThanOrEqual(c.floor);
      if (c.exactDistances) expect(maxDistanceError(metric, res)).toBeLessThan(1e-3);
      // best first in the metric's order
      for (const r of res)
        for (let i = 1; i < r.distances.length; i++) expect(metric === "L2" ? r.distances[i]! >= r.distances[i - 1]! : r.distances[i]! <= r.distances[i - 1]!).toBe(true);
    });

    // Proves serialize -> loadIndex yields an index with the same metadata and identical search results.
    it(`${c.type} serialize/load round trip`, () => {
      const idx = indexFor(c.type, metric);
      const bytes = idx.serialize();
      const back = loadIndex(bytes);
      expect([back.type, back.metric, back.dim, back.count]).toEqual([c.type, metric, D, N]);
      expect(back.params).toEqual(idx.params);
      sameResults(back.search(QUERIES, K, c.search), idx.search(QUERIES, K, c.search));
      // an unaligned copy of the bytes loads too (typed views fall back to a copy)
      const shifted = new Uint8Array(bytes.length + 1).subarray(1);
      shifted.set(bytes);
      sameResults(loadIndex(shifted).search(QUERIES.slice(0, 5), K, c.search), idx.search(QUERIES.slice(0, 5), K, c.search));
    });

    // Proves the same bytes written to a file load through loadIndexFile (and HNSW's section alone straight into hnswlib) with
    // identical results, and that a truncated file is refused instead of loading a partial index.
    it(`${c.type} loads from a file`, () => {
      const idx = indexFor(c.type, metric);
      const bytes = idx.serialize();
      const dir = mkdtempSync(join(tmpdir(), "natsvec-index-"));
      try {
        const path = join(dir, "index.nvix");
        writeFileSync(path, bytes);
        const back = loadIndexFile(path);
        expect([back.type, back.metric, back.dim, back.count]).toEqual([c.type, metric, D, N]);
        sameResults(back.search(QUERIES, K, c.search), idx.search(QUERIES, K, c.search));
        // What a query node writes: the range indexFileRange picks from the head (HNSW: hnswlib's own file).
        const r = indexFileRange(bytes.subarray(0, 4096), bytes.length)!;
        expect(r.hnswHeader !== undefined).toBe(c.type === "HNSW");
        expect(indexFileRange(bytes.subarray(0, 10), bytes.length)).toBeUndefined();
        writeFileSync(path, bytes.subarray(r.from, r.to));
        sameResults(loadIndexFile(path, r.hnswHeader).search(QUERIES, K, c.search), idx.search(QUERIES, K, c.search));
        writeFileSync(path, bytes.subarray(0, bytes.length - 100));
        expect(() => loadIndexFile(path)).toThrow(/out of bounds|truncated/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

// ---------------------------------------------------------------- filters

describe("allow filter", () => {
  const pick = rng(99);
  const tenPct = new Uint8Array(N).map(() => (pick() < 0.1 ? 1 : 0));
  const halfPct = new Uint8Array(N).map(() => (pick() < 0.005 ? 1 : 0));

  for (const metric of METRICS) {
    // Proves HNSW's filtered graph search (10% of rows allowed) returns only allowed rows with recall >= 0.9 against filtered ground truth.
    it(`HNSW ${metric}, 10% allowed`, () => {
      const allow = (row: number) => tenPct[row] === 1;
      expect(tenPct.reduce((a, b) => a + b, 0)).toBeGreaterThan(bruteForceLimit(N)); // so the graph path runs
      const res = indexFor("HNSW", metric).search(QUERIES, K, { ef: 64 }, allow);
      for (const r of res) {
        expect(r.rows.length).toBe(K);
        for (const row of r.rows) expect(allow(row)).toBe(true);
      }
      expect(recall(res, groundTruth(metric, allow))).toBeGreaterThanOrEqual(0.9);
      expect(maxDistanceError(metric, res)).toBeLessThan(1e-3);
    });
  }

  // Proves a very selective filter (0.5%: below HNSW's brute-force threshold) gives exact results on FLAT and HNSW.
  it.each(["FLAT", "HNSW"] as const)("%s, 0.5%% allowed, COSINE: exact", (type) => {
    const allow = (row: number) => halfPct[row] === 1;
    expect(halfPct.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(bruteForceLimit(N));
    const res = indexFor(type, "COSINE").search(QUERIES, K, CASES.find((c) => c.type === type)!.search, allow);
    for (const r of res) for (const row of r.rows) expect(allow(row)).toBe(true);
    expect(recall(res, groundTruth("COSINE", allow))).toBe(1);
    expect(maxDistanceError("COSINE", res)).toBeLessThan(1e-3);
  });

  // Proves IVF keeps probing past nprobe lists until it has k allowed rows, so a selective filter (0.5%) still fills the top-k.
  it("IVF_FLAT, 0.5% allowed: full top-k of allowed rows", () => {
    const allow = (row: number) => halfPct[row] === 1;
    const res = indexFor("IVF_FLAT", "COSINE").search(QUERIES, K, { nprobe: 1 }, allow);
    for (const r of res) {
      expect(r.rows.length).toBe(K);
      for (const row of r.rows) expect(allow(row)).toBe(true);
    }
  });

  // Proves FLAT and IVF honour a 10% filter: only allowed rows, FLAT exact, IVF recall >= 0.9.
  it.each(["FLAT", "IVF_FLAT", "IVF_SQ8"] as const)("%s L2, 10% allowed", (type) => {
    const allow = (row: number) => tenPct[row] === 1;
    const res = indexFor(type, "L2").search(QUERIES, K, CASES.find((c) => c.type === type)!.search, allow);
    for (const r of res) for (const row of r.rows) expect(allow(row)).toBe(true);
    const rc = recall(res, groundTruth("L2", allow));
    expect(rc).toBeGreaterThanOrEqual(type === "FLAT" ? 1 : type === "IVF_FLAT" ? 0.9 : 0.85);
  });
});

// ---------------------------------------------------------------- edges and parameters

describe("edges", () => {
  // Proves AUTOINDEX resolves to HNSW with M=16/efConstruction=200, Milvus string params parse, and bad names/values are rejected.
  it("resolveIndexType", () => {
    expect(resolveIndexType({ indexType: "AUTOINDEX", params: {} })).toEqual({ type: "HNSW", params: { M: 16, efConstruction: 200 } });
    expect(resolveIndexType({ indexType: "hnsw", params: { M: "8", efConstruction: 64 } })).toEqual({ type: "HNSW", params: { M: 8, efConstruction: 64 } });
    expect(resolveIndexType({ indexType: "IVF_SQ8", params: { nlist: "256" } })).toEqual({ type: "IVF_SQ8", params: { nlist: 256 } });
    expect(resolveIndexType({ indexType: "FLAT", params: {} })).toEqual({ type: "FLAT", params: {} });
    expect(() => resolveIndexType({ indexType: "DISKANN", params: {} })).toThrow(IndexParamError);
    expect(() => resolveIndexType({ indexType: "IVF_FLAT", params: { nlist: "abc" } })).toThrow(/nlist/);
  });

  // Proves k larger than the row count, k = 0, empty indexes, tiny IVF (nlist capped to count/39) and dim mismatches behave.
  it("k, empty and tiny inputs", () => {
    const small = DATA.subarray(0, 50 * D);
    for (const type of ["FLAT", "HNSW", "IVF_FLAT", "IVF_SQ8"] as const) {
      const idx = buildIndex(type, "L2", small, D, { nlist: 64 });
      const [r] = idx.search([QUERIES[0]!], 100);
      expect(r!.rows.length).toBe(50);
      expect(new Set(r!.rows).size).toBe(50);
      expect(idx.search([QUERIES[0]!], 0)[0]!.rows.length).toBe(0);
      expect(() => idx.search([new Float32Array(D + 1)], 1)).toThrow(IndexParamError);
      const empty = loadIndex(buildIndex(type, "IP", new Float32Array(0), D).serialize());
      expect(empty.count).toBe(0);
      expect(empty.search([QUERIES[0]!], 5)[0]!.rows.length).toBe(0);
    }
    expect((buildIndex("IVF_FLAT", "L2", small, D, { nlist: 64 }) as IvfIndex).nlist).toBe(1);
    expect(() => buildIndex("IVF_FLAT", "L2", small, D + 1)).toThrow(IndexParamError);
    expect(() => loadIndex(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]))).toThrow(/magic/);
  });

  // Proves COSINE treats a zero vector as cosine 0 (never NaN), like natsvec's exact search.
  it("zero vectors under COSINE", () => {
    const v = new Float32Array(3 * D);
    v.set(QUERIES[0]!, D);
    v.set(QUERIES[1]!, 2 * D);
    for (const type of ["FLAT", "HNSW", "IVF_FLAT"] as const) {
      const r = buildIndex(type, "COSINE", v, D).search([QUERIES[0]!], 3)[0]!;
      expect(Array.from(r.rows)).toContain(0);
      expect(r.distances[Array.from(r.rows).indexOf(0)]).toBe(0);
      expect(r.distances.every((d) => Number.isFinite(d))).toBe(true);
    }
    expect(buildIndex("FLAT", "COSINE", v, D)).toBeInstanceOf(FlatIndex);
  });
});

// ---------------------------------------------------------------- multi-threaded HNSW builds

describe("HNSW build threads", () => {
  const ROWS = 5_000;
  const sub = DATA.subarray(0, ROWS * D);
  const P = { M: 16, efConstruction: 200 };

  // `npm install` builds native/hnsw_build.cc; without it builds fall back to one thread (so this must hold where CI runs).
  it("the build addon is built and loads", () => {
    if (process.platform !== "linux") return;
    expect("missing" in hnswBuildAddon ? hnswBuildAddon.missing : "loaded").toBe("loaded");
  });

  // Proves the addon writes hnswlib-node's exact format, distances and cosine normalization: on one thread its index is
  // byte-identical to hnswlib-node's own addPoint loop, and buildIndexBytes equals build + serialize.
  it.each(METRICS)("%s: one thread = hnswlib-node's addPoint build, byte for byte", (metric) => {
    const reference = HnswIndex.buildByAddPoint(metric, sub, D, P).serialize();
    const native = buildIndexBytes("HNSW", metric, sub, D, { ...P, threads: 1 });
    expect(Buffer.compare(native, reference)).toBe(0);
    expect(Buffer.compare(buildIndex("HNSW", metric, sub, D, { ...P, threads: 1 }).serialize(), reference)).toBe(0);
  });

  // Proves a parallel build's bytes (the build worker's path) load into hnswlib-node and meet the recall floor (build() reloads
  // its file through hnswlib-node too: the recall tests above cover that path).
  it.each(METRICS)("%s: a 4-thread build's bytes load and meet recall@10 >= 0.95", (metric) => {
    const back = loadIndex(buildIndexBytes("HNSW", metric, DATA, D, { ...P, threads: 4 }));
    expect(back.count).toBe(N);
    expect(recall(back.search(QUERIES, K, { ef: 64 }), gtFor(metric))).toBeGreaterThanOrEqual(0.95);
  });

  // Proves a 2-thread build really runs on two cores at once: the process's CPU time exceeds 1.3x the wall time (a one-thread
  // build stays at ~1.0x), and the addon reports two threads inserting concurrently. (Retried: other test files share the cores.)
  it("two threads use two cores", { retry: 3 }, () => {
    const vecs = clustered(11, 20_000, 64, 100);
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    buildIndexBytes("HNSW", "L2", vecs, 64, { ...P, threads: 2 });
    const cpu = process.cpuUsage(c0);
    const wallMs = performance.now() - t0;
    expect((cpu.user + cpu.system) / 1000 / wallMs).toBeGreaterThan(1.3);
    if (!("addon" in hnswBuildAddon)) return;
    const { addon } = hnswBuildAddon;
    const b = addon.create("l2", 64, 2_000, 16, 200, 100);
    try {
      expect(addon.add(b, vecs, 0, 2_000, 2)).toBe(2);
    } finally {
      addon.release(b);
    }
  });

  // Proves a natively built COSINE index stores unit vectors, as hnswlib-node does: each point read back is the input row
  // normalized, a point's nearest neighbour is itself at similarity 1, and the inserted values are not offered back.
  it("COSINE stores normalized vectors", () => {
    const bytes = buildIndexBytes("HNSW", "COSINE", sub, D, { ...P, threads: 2 });
    const r = indexFileRange(bytes.subarray(0, 4096), bytes.length)!;
    const dir = mkdtempSync(join(tmpdir(), "natsvec-index-"));
    try {
      const path = join(dir, "hnsw.bin");
      writeFileSync(path, bytes.subarray(r.from, r.to));
      const native = new hnswlib.HierarchicalNSW("cosine", D);
      native.readIndexSync(path);
      for (const row of [0, 1, 777, ROWS - 1]) {
        const v = sub.subarray(row * D, (row + 1) * D);
        const norm = Math.hypot(...v);
        const stored = native.getPoint(row);
        expect(Math.hypot(...stored)).toBeCloseTo(1, 5);
        stored.forEach((x, j) => expect(x).toBeCloseTo(v[j]! / norm, 6));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const idx = loadIndex(bytes);
    const self = idx.search([0, 1, 777].map((row) => sub.slice(row * D, (row + 1) * D)), 1, { ef: 64 });
    self.forEach((res, i) => {
      expect(res.rows[0]).toBe([0, 1, 777][i]);
      expect(res.distances[0]).toBeCloseTo(1, 5);
    });
    expect(idx.exactVectors).toBe(false);
    expect(() => idx.rawVectors!([0])).toThrow(IndexParamError);
  });

  // Proves the thread count: BuildParams.threads, else NATSVEC_INDEX_THREADS, else every core; bad values are refused.
  it("thread count: params, NATSVEC_INDEX_THREADS, default", () => {
    const saved = process.env.NATSVEC_INDEX_THREADS;
    try {
      delete process.env.NATSVEC_INDEX_THREADS;
      expect(buildThreads()).toBe(availableParallelism());
      process.env.NATSVEC_INDEX_THREADS = "3";
      expect(buildThreads()).toBe(3);
      expect(buildThreads({ threads: 5 })).toBe(5);
      process.env.NATSVEC_INDEX_THREADS = "many";
      expect(() => buildThreads()).toThrow(/NATSVEC_INDEX_THREADS must be a positive integer/);
      expect(() => buildIndex("HNSW", "L2", sub, D, { threads: 0 })).toThrow(IndexParamError);
    } finally {
      if (saved === undefined) delete process.env.NATSVEC_INDEX_THREADS;
      else process.env.NATSVEC_INDEX_THREADS = saved;
    }
  });
});

// ---------------------------------------------------------------- worker pool

describe("IndexWorkerPool", () => {
  // Long HNSW builds to watch, interrupt or crash: 50k x 64 on two threads (several seconds here), whatever the core count.
  let bigData: Float32Array | undefined;
  const big = (): Float32Array => (bigData ??= clustered(7, 50_000, 64, 100));
  const LONG_BUILD = { M: 16, efConstruction: 200, threads: 2 };
  let pool: IndexWorkerPool;
  beforeAll(() => {
    pool = new IndexWorkerPool(2);
  });
  afterAll(async () => {
    await pool.close();
  });

  // Proves a worker build is byte-identical to the in-process build, and searches (with and without a bitset) equal in-process results.
  // (HNSW on one thread: only then is a build reproducible.)
  it.each([
    ["HNSW", "L2"],
    ["IVF_SQ8", "COSINE"],
    ["FLAT", "IP"],
  ] as const)("%s %s through workers equals in-process", async (type, metric) => {
    const c = CASES.find((x) => x.type === type)!;
    const params = type === "HNSW" ? { ...c.build, threads: 1 } : c.build;
    const bytes = await pool.build(type, metric, DATA, D, params);
    const local = type === "HNSW" ? buildIndex(type, metric, DATA, D, params) : indexFor(type, metric);
    expect(Buffer.compare(bytes, local.serialize())).toBe(0); // (toEqual on megabytes of Uint8Array is very slow)
    const h = await pool.load(bytes);
    expect([h.type, h.metric, h.dim, h.count]).toEqual([type, metric, D, N]);
    sameResults(await pool.search(h, QUERIES, K, c.search), local.search(QUERIES, K, c.search));
    const bits = new Uint8Array(N);
    for (let i = 0; i < N; i += 7) bits[i] = 1;
    sameResults(await pool.search(h, QUERIES, K, c.search, bits), local.search(QUERIES, K, c.search, (r) => bits[r] === 1));
    await pool.unload(h);
    await expect(pool.search(h, QUERIES, K)).rejects.toThrow(/not loaded/);
  });

  // Proves the caller's event loop keeps ticking (max gap < 200 ms) while a worker builds a 50k x 64 HNSW index on two native threads.
  it("event loop stays responsive during a 50k x 64 HNSW build", async () => {
    const vecs = big(); // (generated before the clock starts)
    let last = performance.now();
    let maxGap = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      ticks++;
    }, 10);
    const t0 = performance.now();
    const bytes = await pool.build("HNSW", "L2", vecs, 64, LONG_BUILD);
    const elapsed = performance.now() - t0;
    clearInterval(timer);
    maxGap = Math.max(maxGap, performance.now() - last);
    expect(loadIndex(bytes).count).toBe(50_000);
    expect(elapsed).toBeGreaterThan(1000); // the build really was long enough to matter
    expect(ticks).toBeGreaterThan(elapsed / 10 / 4);
    expect(maxGap).toBeLessThan(200);
  });

  // Proves a build worker and the native threads of its build run at the process's nice + BUILD_THREAD_NICE
  // (behind everything else when cores are contended), while the calling thread keeps its own.
  it.runIf(process.platform === "linux")("build threads run at a lower priority", async () => {
    const niceOf = (stat: string) => Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
    const threadNices = () =>
      readdirSync("/proc/self/task").flatMap((t) => {
        try {
          return [niceOf(readFileSync(`/proc/self/task/${t}/stat`, "utf8"))];
        } catch {
          return []; // the thread ended meanwhile
        }
      });
    const base = niceOf(readFileSync("/proc/thread-self/stat", "utf8"));
    const lower = Math.min(19, base + BUILD_THREAD_NICE);
    const building = pool.build("HNSW", "L2", big().subarray(0, 15_000 * 64), 64, LONG_BUILD);
    let lowered = 0;
    for (let i = 0; i < 250 && lowered < 2; i++) {
      await new Promise((r) => setTimeout(r, 20));
      lowered = Math.max(lowered, threadNices().filter((n) => n === lower).length);
    }
    await building;
    expect(lowered).toBeGreaterThanOrEqual(2); // the build worker (building on its own thread too) and the build thread it started
    expect(niceOf(readFileSync("/proc/thread-self/stat", "utf8"))).toBe(base);
  });

  // Proves a worker dying mid-request rejects its pending work with a clear error, loses its handles, and is replaced by a working one.
  it("worker crash is reported and the worker replaced", async () => {
    const crashPool = new IndexWorkerPool(1);
    try {
      // a build in flight when its worker dies
      const building = crashPool.build("HNSW", "L2", big(), 64, LONG_BUILD);
      const buildOutcome = expect(building).rejects.toThrow(/build#0 exited unexpectedly .* while running build/);
      await new Promise((r) => setTimeout(r, 300));
      await crashPool._killWorker(0);
      await buildOutcome;
      await expect(building).rejects.toThrow(IndexWorkerError);
      // the build lane works again
      const flat = await crashPool.build("FLAT", "L2", DATA, D); // big enough that a 100-query search is mid-flight when killed
      const h = await crashPool.load(flat);
      const before = await crashPool.search(h, QUERIES.slice(0, 3), 5);
      // a search worker dying: pending search rejects, handle is lost, a replacement serves new loads
      const spawned = crashPool.spawned;
      const pending = expect(crashPool.search(h, QUERIES, K)).rejects.toThrow(/search#0 exited unexpectedly .* while running search/);
      await crashPool._killWorker(h);
      await pending;
      await expect(crashPool.search(h, QUERIES, K)).rejects.toThrow(/lost when its worker .* crashed; load it again/);
      await crashPool.unload(h); // fine on a lost handle
      expect(crashPool.spawned).toBe(spawned + 1); // replaced eagerly
      const h2 = await crashPool.load(flat);
      sameResults(await crashPool.search(h2, QUERIES.slice(0, 3), 5), before);
    } finally {
      await crashPool.close();
    }
    await expect(crashPool.build("FLAT", "L2", DATA.subarray(0, D), D)).rejects.toThrow(/closed/);
  });

  // Proves concurrent searches (batched per worker while one is in flight) answer exactly like one at a time,
  // per-search errors stay per search, and a crash rejects both the in-flight batch and the queued searches.
  it("concurrent searches batch per worker, same answers, crash rejects queued ones", async () => {
    const p = new IndexWorkerPool(1);
    try {
      const c = CASES.find((x) => x.type === "HNSW")!;
      const h = await p.load(await p.build("HNSW", "L2", DATA, D, c.build));
      const bits = new Uint8Array(N);
      for (let i = 0; i < N; i += 3) bits[i] = 1;
      const alone: Awaited<ReturnType<typeof p.search>>[] = [];
      for (let i = 0; i < 40; i++) alone.push(await p.search(h, [QUERIES[i % QUERIES.length]!], K, c.search, i % 2 ? bits : undefined));
      const flat = await p.load(await p.build("FLAT", "L2", DATA, D));
      await p.unload(flat); // a search of an unloaded handle in the middle of a batch fails alone
      const together = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          i === 20
            ? p.search(flat, [QUERIES[0]!], K).then(() => "no error", (e: Error) => e.message)
            : p.search(h, [QUERIES[i % QUERIES.length]!], K, c.search, i % 2 ? bits : undefined),
        ),
      );
      expect(together[20]).toMatch(/not loaded/);
      together.forEach((r, i) => {
        if (i !== 20) sameResults(r as never, alone[i]!);
      });
      // many searches queued behind an in-flight batch, then the worker dies
      const big = await p.load(await p.build("FLAT", "L2", DATA, D));
      const outcomes = Array.from({ length: 30 }, () => p.search(big, QUERIES, K).then(() => "ok", (e: Error) => e));
      await p._killWorker(big);
      const settled = await Promise.all(outcomes);
      // (a batch may finish before the worker reaches a checkpoint; everything else is rejected, nothing hangs)
      expect(settled.every((e) => e === "ok" || e instanceof IndexWorkerError)).toBe(true);
      expect(settled.filter((e) => e instanceof IndexWorkerError).length).toBeGreaterThan(0);
    } finally {
      await p.close();
    }
  });

  // Proves close() during a running HNSW build stops the worker at a checkpoint (between chunks of the parallel build, with no
  // native thread running: terminating it inside native code would abort the process), promptly, rejecting the build.
  it("close during a build is safe and prompt", async () => {
    const p = new IndexWorkerPool(1);
    // outcomes captured up front: the rejections happen inside close()
    const building = p.build("HNSW", "COSINE", big(), 64, LONG_BUILD).then(() => "built", (e: Error) => e);
    const h = await p.load(indexFor("FLAT", "L2").serialize());
    const searching = p.search(h, QUERIES, K).then((r) => r, (e: Error) => e);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now();
    await p.close();
    expect(performance.now() - t0).toBeLessThan(1000);
    const built = await building;
    expect(built).toBeInstanceOf(IndexWorkerError);
    expect((built as Error).message).toMatch(/closed/);
    const searched = await searching;
    if (searched instanceof Error) expect(searched.message).toMatch(/closed/);
    else expect(searched.length).toBe(NQ); // it may have finished first
  });

  // Proves the data-movement modes: subarray views, SharedArrayBuffer input, and { transfer: true } (which detaches the caller's buffer) all build the same index.
  it("build input: view, shared, transferred", async () => {
    const rows = 300;
    const expected = buildIndex("IVF_FLAT", "L2", DATA.subarray(0, rows * D), D, { nlist: 4 }).serialize();
    const shared = new Float32Array(new SharedArrayBuffer(rows * D * 4));
    shared.set(DATA.subarray(0, rows * D));
    const owned = DATA.slice(0, rows * D);
    const outs = await Promise.all([
      pool.build("IVF_FLAT", "L2", DATA.subarray(0, rows * D), D, { nlist: 4 }),
      pool.build("IVF_FLAT", "L2", shared, D, { nlist: 4 }),
      pool.build("IVF_FLAT", "L2", owned, D, { nlist: 4 }, { transfer: true }),
    ]);
    for (const b of outs) expect(Buffer.compare(b, expected)).toBe(0);
    expect(owned.length).toBe(0); // transferred away
    expect(DATA.length).toBe(N * D); // views are copied, never detached
  });

  // Proves errors thrown inside a worker come back as rejections of the same class without harming the worker.
  it("worker-side errors reject without crashing", async () => {
    const h = await pool.load(indexFor("FLAT", "L2").serialize());
    await expect(pool.build("IVF_FLAT", "L2", DATA.subarray(0, 100 * D), D, { nlist: -1 })).rejects.toThrow(IndexParamError);
    await expect(pool.load(new Uint8Array(32))).rejects.toThrow(/magic/);
    await expect(pool.search(h, [new Float32Array(D - 1)], 1)).rejects.toThrow(IndexParamError);
    // the handle's worker survived all of that
    expect((await pool.search(h, [QUERIES[0]!], 1))[0]!.rows.length).toBe(1);
    await pool.unload(h);
  });
});

describe("pool never detaches caller memory", () => {
  // A Node Buffer's slice() is a view: loading an index from a Buffer must copy, leaving the
  // Buffer (and anything sharing its memory, like a socket read buffer) usable.
  it("copies Buffers before transferring", async () => {
    const pool = new IndexWorkerPool(1);
    try {
      const vectors = new Float32Array(64 * 8).map((_, i) => Math.sin(i));
      const bytes = buildIndex("FLAT", "L2", vectors, 8, {}).serialize();
      const shared = Buffer.alloc(bytes.length + 16);
      shared.set(bytes, 8);
      const view = shared.subarray(8, 8 + bytes.length);
      const neighbour = shared.subarray(0, 8);
      const h = await pool.load(view);
      expect(view.byteLength).toBe(bytes.length);
      neighbour[0] = 7; // would throw on a detached buffer
      expect(shared.buffer.byteLength).toBeGreaterThan(0);
      const r = await pool.search(h, [vectors.subarray(0, 8)], 1, {});
      expect(r[0]!.rows[0]).toBe(0);
    } finally {
      await pool.close();
    }
  });
});

describe("stored vectors read back", () => {
  const rows = [0, 17, N - 1, 5, 17];
  const expected = (): Float32Array => {
    const out = new Float32Array(rows.length * D);
    rows.forEach((r, i) => out.set(DATA.subarray(r * D, (r + 1) * D), i * D));
    return out;
  };

  // Proves rawVectors returns the inserted float32 values exactly where the index keeps them, and refuses (never approximates) where it does not.
  it.each([
    ["FLAT", "L2", true],
    ["FLAT", "COSINE", true],
    ["HNSW", "L2", true],
    ["HNSW", "IP", true],
    ["HNSW", "COSINE", false],
    ["IVF_FLAT", "IP", true],
    ["IVF_FLAT", "COSINE", false],
    ["IVF_SQ8", "L2", false],
  ] as const)("%s %s: exact = %s", (type, metric, exact) => {
    const idx = indexFor(type, metric);
    expect(idx.exactVectors).toBe(exact);
    if (exact) {
      expect(idx.rawVectors!(rows)).toEqual(expected());
      expect(() => idx.rawVectors!([N])).toThrow(IndexParamError);
    } else expect(() => idx.rawVectors!(rows)).toThrow(IndexParamError);
  });

  // Proves the pool's loadFlat (raw vectors handed to a worker, no build round trip) searches like a built FLAT, and vectors() reads rows back exactly.
  it("pool: loadFlat and vectors", async () => {
    const pool = new IndexWorkerPool(1);
    try {
      const owned = DATA.slice();
      const h = await pool.loadFlat("COSINE", owned, D, { transfer: true });
      expect(owned.length).toBe(0); // handed over
      expect([h.type, h.metric, h.count, h.exactVectors]).toEqual(["FLAT", "COSINE", N, true]);
      sameResults(await pool.search(h, QUERIES.slice(0, 5), K), indexFor("FLAT", "COSINE").search(QUERIES.slice(0, 5), K));
      expect(await pool.vectors(h, Int32Array.from(rows))).toEqual(expected());
      const hnsw = await pool.load(indexFor("HNSW", "L2").serialize());
      expect(hnsw.exactVectors).toBe(true);
      expect(await pool.vectors(hnsw, rows)).toEqual(expected());
      const cos = await pool.load(indexFor("HNSW", "COSINE").serialize());
      expect(cos.exactVectors).toBe(false);
      await expect(pool.vectors(cos, rows)).rejects.toThrow(/does not keep the inserted vectors/);
      await expect(pool.vectors(h, [N])).rejects.toThrow(IndexParamError);
    } finally {
      await pool.close();
    }
  });
});
