/**
 * In-process baselines on the same vectors: a brute-force scan (the floor
 * natsvec's exact search is compared with), hnswlib-node (the same library,
 * parameters and data as natsvec's HNSW index, in-process: natsvec's build
 * time and search QPS are given as ratios to it), and optional peers loaded on demand —
 * usearch (HNSW, native) and PGlite + pgvector (HNSW in WASM Postgres).
 */
import { join } from "node:path";
import hnswlib from "hnswlib-node";
import { recallAtK, scanTopK, type Dataset, type Metric, type VectorSet } from "./datasets.ts";
import { latencyStats, Progress, type LatencyStats } from "./harness.ts";

export interface SweepPoint {
  param: string;
  stats: LatencyStats;
  recall: number;
}

export interface AnnResult {
  system: string;
  /** Index parameters for the report (default: the HNSW M / efConstruction). */
  params?: string;
  buildMs: number;
  buildNote: string;
  points: SweepPoint[];
}

const qvec = (qs: VectorSet, i: number) => qs.data.subarray(i * qs.dim, (i + 1) * qs.dim);

/** Brute-force scan of `nq` queries, one at a time, single thread. */
export const runScan = (ds: Dataset, nq: number, k: number, gt: Int32Array, keep?: (row: number) => boolean, label = "scan"): SweepPoint => {
  const lat: number[] = [];
  const found: number[][] = [];
  const p = new Progress(label, nq);
  const t0 = performance.now();
  for (let i = 0; i < nq; i++) {
    const s = performance.now();
    const r = scanTopK(ds.base, ds.queries.data, i * ds.queries.dim, k, ds.metric, keep);
    lat.push(performance.now() - s);
    found.push([...r.ids].filter((x) => x >= 0));
    p.update(i + 1);
  }
  const wall = performance.now() - t0;
  p.done();
  return { param: label, stats: latencyStats(lat, wall), recall: recallAtK(found, gt, k) };
};

/**
 * Estimated bytes of an HNSW graph's links (neighbour ids only; the vectors are
 * counted separately): layer 0 holds up to 2M neighbour ids of 4 bytes per
 * node; a node reaches level >= 1 with probability 1/M (hnswlib's level
 * multiplier 1/ln M), so levels >= 1 hold N/(M-1) nodes in expectation, M ids
 * each. hnswlib's per-node link-count words, labels and its visited lists are
 * left out (a few % more).
 */
export const hnswGraphBytes = (n: number, M: number): number => n * 2 * M * 4 + (n / (M - 1)) * M * 4;
export const HNSW_GRAPH_FORMULA = "graph = N x 2M x 4 B (layer 0 links) + N/(M-1) x M x 4 B (upper layers, expected)";

const hnswSpace = (m: Metric) => (m === "L2" ? "l2" : m === "IP" ? "ip" : "cosine");

/** hnswlib-node: build (single thread, addPoint per vector), then an ef sweep with single-query searches. */
export const runHnswlib = (ds: Dataset, k: number, gt: Int32Array, opts: { M: number; efConstruction: number; efs: number[] }): AnnResult => {
  const { n, dim, data } = ds.base;
  const idx = new hnswlib.HierarchicalNSW(hnswSpace(ds.metric), dim);
  idx.initIndex(n, opts.M, opts.efConstruction, 100);
  const p = new Progress(`hnswlib build M=${opts.M} efC=${opts.efConstruction}`, n);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    idx.addPoint(Array.from(data.subarray(i * dim, (i + 1) * dim)), i);
    p.update(i + 1);
  }
  const buildMs = performance.now() - t0;
  p.done();
  const qs = ds.queries;
  const queries = Array.from({ length: qs.n }, (_, i) => Array.from(qvec(qs, i)));
  const points: SweepPoint[] = [];
  for (const ef of opts.efs) {
    idx.setEf(Math.max(ef, k));
    for (let i = 0; i < Math.min(20, queries.length); i++) idx.searchKnn(queries[i]!, k); // warm-up
    const lat: number[] = [];
    const found: number[][] = [];
    const t1 = performance.now();
    for (const q of queries) {
      const s = performance.now();
      const r = idx.searchKnn(q, k);
      lat.push(performance.now() - s);
      // hnswlib returns farthest first for some versions: order does not matter for recall.
      found.push(r.neighbors);
    }
    points.push({ param: `ef=${ef}`, stats: latencyStats(lat, performance.now() - t1), recall: recallAtK(found, gt, k) });
  }
  return { system: "hnswlib-node", buildMs, buildNote: "single thread, one addPoint per vector", points };
};

/** usearch (optional peer): HNSW built with `threads` threads, searched one query at a time on one thread. */
export const runUsearch = async (
  ds: Dataset,
  k: number,
  gt: Int32Array,
  opts: { M: number; efConstruction: number; efs: number[]; threads: number; tmp: string },
): Promise<AnnResult | { skip: string }> => {
  let mod: typeof import("usearch");
  try {
    mod = await import("usearch");
  } catch (e) {
    return { skip: `usearch is not installed or its native binding failed to load (${(e as Error).message.split("\n")[0]})` };
  }
  const { Index, MetricKind, ScalarKind } = mod;
  const metric = ds.metric === "L2" ? MetricKind.L2sq : ds.metric === "IP" ? MetricKind.IP : MetricKind.Cos;
  const mk = (ef: number) =>
    new Index({ dimensions: ds.base.dim, metric, quantization: ScalarKind.F32, multi: false, connectivity: opts.M, expansion_add: opts.efConstruction, expansion_search: ef });
  const idx = mk(opts.efs[0] ?? 64);
  const keys = new BigUint64Array(ds.base.n);
  for (let i = 0; i < ds.base.n; i++) keys[i] = BigInt(i);
  process.stderr.write(`  usearch build (${opts.threads} threads)...\n`);
  const t0 = performance.now();
  // Add in chunks so the progress bar moves.
  const chunk = 10_000;
  const p = new Progress(`usearch build M=${opts.M} efC=${opts.efConstruction}`, ds.base.n);
  for (let s = 0; s < ds.base.n; s += chunk) {
    const e = Math.min(ds.base.n, s + chunk);
    idx.add(keys.subarray(s, e), ds.base.data.subarray(s * ds.base.dim, e * ds.base.dim), opts.threads);
    p.update(e);
  }
  const buildMs = performance.now() - t0;
  p.done();
  // expansion_search is fixed at construction: save once, then load the same graph with each ef.
  const file = join(opts.tmp, "usearch.idx");
  idx.save(file);
  const points: SweepPoint[] = [];
  const qs = ds.queries;
  for (const ef of opts.efs) {
    const ix = mk(Math.max(ef, k));
    ix.load(file);
    for (let i = 0; i < Math.min(20, qs.n); i++) ix.search(qvec(qs, i), k, 1); // warm-up
    const lat: number[] = [];
    const found: number[][] = [];
    const t1 = performance.now();
    for (let i = 0; i < qs.n; i++) {
      const s = performance.now();
      const r = ix.search(qvec(qs, i), k, 1) as InstanceType<typeof mod.Matches>;
      lat.push(performance.now() - s);
      found.push(Array.from(r.keys, (x) => Number(x)));
    }
    points.push({ param: `ef=${ef}`, stats: latencyStats(lat, performance.now() - t1), recall: recallAtK(found, gt, k) });
  }
  return { system: "usearch", buildMs, buildNote: `${opts.threads} threads`, points };
};

/** PGlite + pgvector (optional peer): HNSW index in WASM Postgres, single thread. */
export const runPgvector = async (
  ds: Dataset,
  k: number,
  gt: Int32Array,
  opts: { M: number; efConstruction: number; efs: number[]; nq: number },
): Promise<AnnResult | { skip: string }> => {
  let PGlite: typeof import("@electric-sql/pglite").PGlite;
  let vector: typeof import("@electric-sql/pglite-pgvector").vector;
  try {
    ({ PGlite } = await import("@electric-sql/pglite"));
    ({ vector } = await import("@electric-sql/pglite-pgvector"));
  } catch (e) {
    return { skip: `@electric-sql/pglite / @electric-sql/pglite-pgvector not installed (${(e as Error).message.split("\n")[0]})` };
  }
  const ops = ds.metric === "L2" ? "vector_l2_ops" : ds.metric === "IP" ? "vector_ip_ops" : "vector_cosine_ops";
  const op = ds.metric === "L2" ? "<->" : ds.metric === "IP" ? "<#>" : "<=>";
  const db = new PGlite({ extensions: { vector } });
  try {
    await db.exec(`CREATE EXTENSION IF NOT EXISTS vector; CREATE TABLE items (id int PRIMARY KEY, embedding vector(${ds.base.dim}));`);
    const { n, dim, data } = ds.base;
    const lit = (off: number) => {
      let s = "[";
      for (let j = 0; j < dim; j++) s += (j ? "," : "") + data[off + j]!;
      return s + "]";
    };
    const p = new Progress("pgvector load rows", n);
    const t0 = performance.now();
    const B = 500;
    for (let s = 0; s < n; s += B) {
      const e = Math.min(n, s + B);
      const vals: string[] = [];
      for (let i = s; i < e; i++) vals.push(`(${i},'${lit(i * dim)}')`);
      await db.exec(`INSERT INTO items VALUES ${vals.join(",")}`);
      p.update(e);
    }
    p.done();
    const loadMs = performance.now() - t0;
    process.stderr.write(`  pgvector: building HNSW (m=${opts.M}, ef_construction=${opts.efConstruction})...\n`);
    const t1 = performance.now();
    await db.exec(`SET maintenance_work_mem = '1GB'; CREATE INDEX ON items USING hnsw (embedding ${ops}) WITH (m = ${opts.M}, ef_construction = ${opts.efConstruction});`);
    const buildMs = performance.now() - t1;
    const nq = Math.min(opts.nq, ds.queries.n);
    const points: SweepPoint[] = [];
    for (const ef of opts.efs) {
      await db.exec(`SET hnsw.ef_search = ${Math.max(ef, k)}`);
      // Warm-up (the WASM JIT and Postgres caches): not measured.
      for (let i = 0; i < Math.min(20, nq); i++)
        await db.query(`SELECT id FROM items ORDER BY embedding ${op} $1 LIMIT ${k}`, [`[${Array.from(qvec(ds.queries, i)).join(",")}]`]);
      const lat: number[] = [];
      const found: number[][] = [];
      const t2 = performance.now();
      for (let i = 0; i < nq; i++) {
        const q = qvec(ds.queries, i);
        const s = performance.now();
        const r = await db.query<{ id: number }>(`SELECT id FROM items ORDER BY embedding ${op} $1 LIMIT ${k}`, [`[${Array.from(q).join(",")}]`]);
        lat.push(performance.now() - s);
        found.push(r.rows.map((x) => x.id));
      }
      points.push({ param: `ef=${ef}`, stats: latencyStats(lat, performance.now() - t2), recall: recallAtK(found, gt.subarray(0, nq * k), k) });
    }
    return { system: "pgvector (PGlite)", buildMs, buildNote: `index build only; loading rows took ${(loadMs / 1000).toFixed(1)} s; WASM, single thread`, points };
  } finally {
    await db.close().catch(() => undefined);
  }
};
