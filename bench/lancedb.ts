/**
 * LanceDB peer (`--peers lancedb`), installed on demand.
 *
 * @lancedb/lancedb is not a dependency of natsvec: its native binary is ~178 MB
 * and it pulls the openai SDK and @huggingface/transformers (onnxruntime) as
 * optional dependencies. The first run with `--peers lancedb` installs a pinned
 * version into bench/.peers/ (its own package.json, gitignored) with
 * `npm install --ignore-scripts --omit=optional`, naming the platform's native
 * package explicitly so that it is the only optional package kept (~210 MB in
 * all instead of ~570 MB). It is loaded from there with createRequire. Any
 * failure (no registry, no binary for this platform, load error) is returned
 * as a skip with the reason; the run goes on.
 *
 * Measured like the other peers, in-process, one query at a time: an IVF_FLAT
 * index with the same nlist and nprobe sweep as natsvec's IVF collection, and
 * an IVF_HNSW_SQ index (one partition, m=16, efConstruction=200: LanceDB's HNSW
 * always stores 8-bit scalar-quantized vectors, or PQ codes) with the ef sweep.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { BENCH_DIR, recallAtK, type Dataset } from "./datasets.ts";
import { latencyStats, Progress, say } from "./harness.ts";
import type { AnnResult, SweepPoint } from "./baselines.ts";

export const PEERS_DIR = join(BENCH_DIR, ".peers");
export const LANCEDB_VERSION = "0.39.0";
/** LanceDB's peer dependency (it accepts >=15 <=18.1). */
export const APACHE_ARROW_VERSION = "18.1.0";

/** The prebuilt binary package for this platform, or undefined when LanceDB ships none. */
const nativePackage = (): string | undefined => {
  const { platform, arch } = process;
  if (platform === "linux" && (arch === "x64" || arch === "arm64")) {
    const glibc = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;
    return `@lancedb/lancedb-linux-${arch}-${glibc ? "gnu" : "musl"}`;
  }
  if (platform === "darwin" && arch === "arm64") return "@lancedb/lancedb-darwin-arm64";
  if (platform === "win32" && (arch === "x64" || arch === "arm64")) return `@lancedb/lancedb-win32-${arch}-msvc`;
  return undefined;
};

const installedVersion = (pkg: string): string | undefined => {
  try {
    return (JSON.parse(readFileSync(join(PEERS_DIR, "node_modules", pkg, "package.json"), "utf8")) as { version?: string }).version;
  } catch {
    return undefined;
  }
};

/** Install (once) the pinned LanceDB into bench/.peers/. Returns what was done, or why it could not be. */
export const ensureLancedb = (): { installed: "already" | "now"; ms: number; log?: string } | { skip: string } => {
  const native = nativePackage();
  if (!native) return { skip: `LanceDB ships no prebuilt binary for ${process.platform}-${process.arch}` };
  if (installedVersion("@lancedb/lancedb") === LANCEDB_VERSION && installedVersion(native) === LANCEDB_VERSION && installedVersion("apache-arrow") === APACHE_ARROW_VERSION)
    return { installed: "already", ms: 0 };
  mkdirSync(PEERS_DIR, { recursive: true });
  const pkg = {
    name: "natsvec-bench-peers",
    private: true,
    description: "Written by bench/lancedb.ts: optional benchmark peers installed on demand (gitignored).",
    dependencies: { "@lancedb/lancedb": LANCEDB_VERSION, [native]: LANCEDB_VERSION, "apache-arrow": APACHE_ARROW_VERSION },
  };
  writeFileSync(join(PEERS_DIR, "package.json"), JSON.stringify(pkg, null, 2) + "\n");
  const log = join(PEERS_DIR, "npm-install.log");
  say(`  installing @lancedb/lancedb@${LANCEDB_VERSION} + ${native} + apache-arrow@${APACHE_ARROW_VERSION} into ${PEERS_DIR} (npm install, ~210 MB; log: ${log})`);
  const t = performance.now();
  const fd = openSync(log, "w");
  try {
    execFileSync(process.platform === "win32" ? "npm.cmd" : "npm", ["install", "--prefix", PEERS_DIR, "--ignore-scripts", "--omit=optional", "--no-audit", "--no-fund"], {
      cwd: PEERS_DIR,
      stdio: ["ignore", fd, fd],
      timeout: 10 * 60_000,
    });
  } catch (e) {
    // The informative npm lines: "npm error code X" and the first message line (not the stack, not the log pointer).
    const lines = existsSync(log) ? readFileSync(log, "utf8").split("\n").filter((l) => /^npm error (code |[A-Z][A-Za-z]*Error|notarget|404|network)/.test(l)) : [];
    const why = lines.slice(0, 2).map((l) => l.replace(/^npm error /, "")).join("; ") || (e as Error).message.split("\n")[0];
    return { skip: `npm install of @lancedb/lancedb@${LANCEDB_VERSION} into bench/.peers failed: ${why} (log: bench/.peers/npm-install.log)` };
  } finally {
    closeSync(fd);
  }
  if (installedVersion(native) !== LANCEDB_VERSION) return { skip: `npm install finished but ${native}@${LANCEDB_VERSION} is not in bench/.peers/node_modules (see ${log})` };
  return { installed: "now", ms: performance.now() - t, log };
};

// Minimal shapes of the parts of the LanceDB and Arrow APIs used here (the packages are not
// installed where tsc looks, so they are loaded untyped).
interface LanceQuery {
  distanceType(d: string): LanceQuery;
  nprobes(n: number): LanceQuery;
  ef(n: number): LanceQuery;
  limit(n: number): LanceQuery;
  select(cols: string[]): LanceQuery;
  toArray(): Promise<{ id: number }[]>;
}
interface LanceTable {
  countRows(): Promise<number>;
  createIndex(column: string, options: { config: unknown; replace?: boolean }): Promise<void>;
  vectorSearch(v: Float32Array): LanceQuery;
}
interface LanceModule {
  connect(uri: string): Promise<{ createTable(name: string, data: unknown): Promise<LanceTable>; close?(): void }>;
  Index: {
    ivfFlat(o: { numPartitions: number; distanceType: string }): unknown;
    hnswSq(o: { m: number; efConstruction: number; numPartitions: number; distanceType: string }): unknown;
  };
}
interface ArrowModule {
  Float32: new () => unknown;
  Field: new (name: string, type: unknown, nullable: boolean) => unknown;
  FixedSizeList: new (size: number, child: unknown) => unknown;
  makeData(o: Record<string, unknown>): unknown;
  makeVector(d: unknown): unknown;
  Table: new (cols: Record<string, unknown>) => unknown;
}

export const runLancedb = async (
  ds: Dataset,
  k: number,
  gt: Int32Array,
  opts: { nlist: number; nprobes: number[]; M: number; efConstruction: number; efs: number[]; nq: number; tmp: string },
): Promise<{ results: AnnResult[]; install: string } | { skip: string }> => {
  const inst = ensureLancedb();
  if ("skip" in inst) return inst;
  const install = inst.installed === "already" ? `already installed in bench/.peers` : `installed into bench/.peers in ${(inst.ms / 1000).toFixed(1)} s`;
  let lancedb: LanceModule;
  let arrow: ArrowModule;
  try {
    const req = createRequire(join(PEERS_DIR, "package.json"));
    lancedb = req("@lancedb/lancedb") as LanceModule;
    arrow = req("apache-arrow") as ArrowModule;
  } catch (e) {
    return { skip: `@lancedb/lancedb@${LANCEDB_VERSION} is in bench/.peers but did not load (${(e as Error).message.split("\n")[0]})` };
  }
  const { n, dim, data } = ds.base;
  const distanceType = ds.metric === "L2" ? "l2" : ds.metric === "IP" ? "dot" : "cosine";
  const nq = Math.min(opts.nq, ds.queries.n);
  const truth = gt.subarray(0, nq * k);
  const q = (i: number) => ds.queries.data.subarray(i * dim, (i + 1) * dim);

  // One Arrow table over the same Float32Array (id Int32, vector FixedSizeList<Float32>[dim]).
  const t0 = performance.now();
  const f32 = new arrow.Float32();
  const child = arrow.makeData({ type: f32, length: n * dim, data: data.subarray(0, n * dim) });
  const vtype = new arrow.FixedSizeList(dim, new arrow.Field("item", f32, true));
  const table = new arrow.Table({
    id: arrow.makeVector(Int32Array.from({ length: n }, (_, i) => i)),
    vector: arrow.makeVector(arrow.makeData({ type: vtype, length: n, nullCount: 0, child })),
  });
  const db = await lancedb.connect(join(opts.tmp, "lancedb"));
  const tbl = await db.createTable("items", table);
  const rows = await tbl.countRows();
  if (rows !== n) return { skip: `LanceDB table has ${rows} rows after createTable, expected ${n}` };
  const loadMs = performance.now() - t0;

  const sweep = async (label: string, params: { name: string; value: number }[], set: (qq: LanceQuery, v: number) => LanceQuery): Promise<SweepPoint[]> => {
    const points: SweepPoint[] = [];
    for (const { name, value } of params) {
      const run = (i: number) => set(tbl.vectorSearch(q(i)).distanceType(distanceType), value).limit(k).select(["id", "_distance"]).toArray();
      for (let i = 0; i < Math.min(20, nq); i++) await run(i); // warm-up
      const lat: number[] = [];
      const found: number[][] = [];
      const p = new Progress(`LanceDB ${label} ${name}=${value}`, nq);
      const t1 = performance.now();
      for (let i = 0; i < nq; i++) {
        const s = performance.now();
        const r = await run(i);
        lat.push(performance.now() - s);
        found.push(r.map((x) => Number(x.id)));
        p.update(i + 1);
      }
      points.push({ param: `${name}=${value}`, stats: latencyStats(lat, performance.now() - t1), recall: recallAtK(found, truth, k) });
      p.done();
    }
    return points;
  };

  const results: AnnResult[] = [];
  say(`  LanceDB IVF_FLAT (numPartitions ${opts.nlist}, ${distanceType}): building...`);
  const t2 = performance.now();
  await tbl.createIndex("vector", { config: lancedb.Index.ivfFlat({ numPartitions: opts.nlist, distanceType }) });
  const ivfMs = performance.now() - t2;
  results.push({
    system: "LanceDB IVF_FLAT",
    params: `numPartitions=${opts.nlist}`,
    buildMs: ivfMs,
    buildNote: `index build only (its own threads); createTable from Arrow took ${(loadMs / 1000).toFixed(2)} s`,
    points: await sweep("IVF_FLAT", opts.nprobes.map((v) => ({ name: "nprobe", value: v })), (qq, v) => qq.nprobes(v)),
  });
  say(`  LanceDB IVF_HNSW_SQ (m ${opts.M}, efConstruction ${opts.efConstruction}, 1 partition): building...`);
  const t3 = performance.now();
  await tbl.createIndex("vector", { config: lancedb.Index.hnswSq({ m: opts.M, efConstruction: opts.efConstruction, numPartitions: 1, distanceType }), replace: true });
  const hnswMs = performance.now() - t3;
  results.push({
    system: "LanceDB IVF_HNSW_SQ",
    params: `m=${opts.M}, efC=${opts.efConstruction}, 1 partition, SQ8 vectors`,
    buildMs: hnswMs,
    buildNote: "index build only (its own threads)",
    points: await sweep("HNSW_SQ", opts.efs.map((v) => ({ name: "ef", value: Math.max(v, k) })), (qq, v) => qq.ef(v)),
  });
  db.close?.();
  return { results, install };
};
