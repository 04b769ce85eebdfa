/**
 * natsvec benchmark runner:  npm run bench -- <scenario> [options]
 *
 * Scenarios: quick (100k x 128 synthetic, < 3 min), full (1M x 128, ~30 min
 * budget), fashion-mnist (60k x 784 from the Debian package). See
 * bench/README.md for what each measures.
 *
 * natsvec runs as a separate `natsvec standalone` child process against a
 * nats-server the bench starts (so both RSS figures can be read from /proc);
 * both, and every temp dir, are removed at the end, on error and on Ctrl-C.
 */
import { parseArgs } from "node:util";
import { cpus, loadavg, totalmem } from "node:os";
import { execFileSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { NatsvecClient } from "../client/index.ts";
import { startNatsServer, findNatsServer, NATS_SERVER_MISSING_HELP } from "../cluster/natsServer.ts";
import { packMsgpack } from "../runtime/codec.ts";
import {
  BENCH_DIR,
  FASHION_MNIST_HELP,
  fashionMnist,
  fashionMnistAvailable,
  groundTruth,
  recallAtK,
  scanTopK,
  syntheticClustered,
  type Dataset,
} from "./datasets.ts";
import { cleanupAll, cpuMsOf, fmtBytes, interrupted, onCleanup, Progress, rssOf, runConcurrent, say, spawnChild, tempDir, type LatencyStats } from "./harness.ts";
import { runHnswlib, runPgvector, runScan, runUsearch, type AnnResult } from "./baselines.ts";
import { markdownTable, writeReport, type Figure, type Point, type Report } from "./report.ts";

const REPO = resolve(BENCH_DIR, "..");
const K = 10;
const MAX_PAYLOAD = 8 * 1024 * 1024;
const HNSW = { M: 16, efConstruction: 200 };
const EFS = [16, 32, 64, 128];

interface Spec {
  name: string;
  dataset(o: Options): Dataset;
  /** Queries sent to natsvec and to the scan baseline (the ANN baselines use all dataset queries). */
  searchQueries: number;
  mainBatch: number;
  subset: { n: number; batches: number[] };
  concurrencies: number[];
  /** Wall-clock budget; optional phases are skipped (and say so) once it is spent. */
  budgetS: number;
  peers: string[];
}

interface Options {
  n?: number;
  nq?: number;
  queries?: number;
  shards: number;
  peers?: string[];
  hnsw: boolean;
  out?: string;
}

const SPECS: Record<string, Spec> = {
  quick: {
    name: "quick",
    dataset: (o) => syntheticClustered({ n: o.n ?? 100_000, dim: 128, nq: o.nq ?? 1000 }),
    searchQueries: 200,
    mainBatch: 1000,
    subset: { n: 20_000, batches: [100, 1000, 10_000] },
    concurrencies: [1, 16, 64],
    budgetS: 170,
    peers: ["usearch"],
  },
  full: {
    name: "full",
    dataset: (o) => syntheticClustered({ n: o.n ?? 1_000_000, dim: 128, nq: o.nq ?? 1000 }),
    searchQueries: 200,
    mainBatch: 1000,
    subset: { n: 20_000, batches: [100, 1000, 10_000] },
    concurrencies: [1, 16, 64],
    budgetS: 30 * 60,
    peers: ["usearch"],
  },
  "fashion-mnist": {
    name: "fashion-mnist",
    dataset: (o) => fashionMnist(o.nq ?? 10_000),
    searchQueries: 200,
    mainBatch: 1000,
    subset: { n: 20_000, batches: [100, 1000, 10_000] },
    concurrencies: [1, 16],
    budgetS: 30 * 60,
    peers: ["usearch"],
  },
};

const FILTERS = [
  { name: "bucket<1", expr: "bucket < 1", keep: (r: number) => r % 100 < 1, selectivity: "1%" },
  { name: "bucket<50", expr: "bucket < 50", keep: (r: number) => r % 100 < 50, selectivity: "50%" },
  { name: "bucket<99", expr: "bucket < 99", keep: (r: number) => r % 100 < 99, selectivity: "99%" },
];

const HELP = `usage: npm run bench -- <scenario> [options]

scenarios:
  quick           100k x 128 synthetic clustered Gaussian (seeded); < 3 min
  full            1M x 128 synthetic; ~30 min budget, phases past it are skipped
  fashion-mnist   60k x 784 Fashion-MNIST (apt-get install dataset-fashion-mnist)

options:
  --n N           base vectors (synthetic scenarios)
  --nq N          dataset queries (ground truth, ANN baselines); default 1000 (fashion-mnist 10000)
  --queries N     queries sent to natsvec and the scan baseline (default 200)
  --shards N      natsvec shardsNum of the bench collection (default 1)
  --peers LIST    comma list of optional peers: usearch, pgvector, none (default usearch)
  --no-hnsw       skip hnswlib-node
  --out DIR       results directory (default bench/results/<date>-<scenario>)
`;

const today = () => {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
};

const dirSize = (p: string): number => {
  let s = 0;
  try {
    const st = statSync(p);
    if (st.isFile()) return st.size;
    for (const e of readdirSync(p)) s += dirSize(join(p, e));
  } catch {
    /* vanished */
  }
  return s;
};

/** Commit of the natsvec tree being measured, with "+dirty" when it has uncommitted changes. */
const gitRevision = (): string => {
  try {
    const rev = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: REPO, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: REPO, encoding: "utf8" }).trim() !== "";
    return rev + (dirty ? "+dirty" : "");
  } catch {
    return "unknown";
  }
};

const natsServerVersion = (): string => {
  try {
    return execFileSync(findNatsServer() ?? "nats-server", ["--version"], { encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
};

const rowsOf = (ds: Dataset, start: number, end: number) => {
  const { dim, data } = ds.base;
  const rows = new Array<{ id: number; vector: Float32Array; bucket: number }>(end - start);
  for (let i = start; i < end; i++) rows[i - start] = { id: i, vector: data.slice(i * dim, (i + 1) * dim), bucket: i % 100 };
  return rows;
};

/** Where an ingest's time went: CPU of each process over the wall time. */
const cpuNote = (ms: number, cpu: { natsvecMs: number; natsServerMs: number; benchClientMs: number }, raw: { ms: number; natsServerCpuMs: number }) =>
  `wall ${(ms / 1000).toFixed(2)} s; CPU: natsvec ${(cpu.natsvecMs / 1000).toFixed(2)} s, nats-server ${(cpu.natsServerMs / 1000).toFixed(2)} s, bench client ${(cpu.benchClientMs / 1000).toFixed(2)} s; raw publish: wall ${(raw.ms / 1000).toFixed(2)} s, nats-server CPU ${(raw.natsServerCpuMs / 1000).toFixed(2)} s`;

const main = async () => {
  const { values: v, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      n: { type: "string" },
      nq: { type: "string" },
      queries: { type: "string" },
      shards: { type: "string" },
      peers: { type: "string" },
      "no-hnsw": { type: "boolean" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const scenario = positionals[0];
  if (v.help || !scenario) {
    process.stdout.write(HELP);
    return;
  }
  const spec = SPECS[scenario];
  if (!spec) {
    process.stderr.write(`unknown scenario '${scenario}'\n\n${HELP}`);
    process.exitCode = 2;
    return;
  }
  const num = (x: string | undefined) => (x === undefined ? undefined : Number(x));
  const opts: Options = {
    n: num(v.n),
    nq: num(v.nq),
    queries: num(v.queries),
    shards: num(v.shards) ?? 1,
    peers: v.peers === undefined ? undefined : v.peers === "none" ? [] : v.peers.split(",").map((s) => s.trim()),
    hnsw: !v["no-hnsw"],
    out: v.out,
  };
  if (scenario === "fashion-mnist" && !fashionMnistAvailable()) {
    say(`fashion-mnist: skipped.\n${FASHION_MNIST_HELP}`);
    return;
  }
  if (!findNatsServer()) throw new Error(NATS_SERVER_MISSING_HELP);
  await runScenario(spec, opts);
};

const runScenario = async (spec: Spec, opts: Options) => {
  const started = new Date();
  const loadAtStart = loadavg()[0]!;
  const t0 = performance.now();
  const elapsedS = () => (performance.now() - t0) / 1000;
  const figures: Figure[] = [];
  const points: Point[] = [];
  const skipped: { what: string; why: string }[] = [];
  const notes: string[] = [];
  const raw: Record<string, unknown> = {};
  const fig = (f: Figure) => figures.push(f);
  const skip = (what: string, why: string) => {
    skipped.push({ what, why });
    say(`  SKIPPED ${what}: ${why}`);
  };
  const budgetLeft = () => spec.budgetS - elapsedS();

  say(`natsvec bench: ${spec.name}`);
  // ---------------------------------------------------------------- data + ground truth
  const tData = performance.now();
  const ds = spec.dataset(opts);
  const { n, dim } = ds.base;
  say(`dataset: ${ds.description} (${((performance.now() - tData) / 1000).toFixed(1)} s)`);
  const nSearch = Math.min(opts.queries ?? spec.searchQueries, ds.queries.n);
  const searchDs: Dataset = {
    ...ds,
    name: `${ds.name}-first${nSearch}`,
    queries: { data: ds.queries.data.subarray(0, nSearch * dim), n: nSearch, dim },
  };
  const gtProgress = (label: string, total: number) => {
    const p = new Progress(label, total);
    return { onProgress: (d: number) => (d === total ? p.done() : p.update(d)) };
  };
  const gt = groundTruth(ds, { k: K, ...gtProgress(`ground truth (${ds.queries.n} q)`, ds.queries.n) });
  say(`  ground truth ${gt.cached ? "from cache" : "computed"}: ${gt.path}`);
  const gtSearch = gt.ids.subarray(0, nSearch * K);
  const gtFiltered = FILTERS.map((f) => {
    const r = groundTruth(searchDs, { k: K, filter: { name: f.name, keep: f.keep }, ...gtProgress(`ground truth ${f.name} (${nSearch} q)`, nSearch) });
    return r.ids;
  });

  // ---------------------------------------------------------------- in-process scan baselines
  // Run before natsvec and nats-server start, so nothing else competes for the cores.
  say(`in-process brute-force scan baselines (${nSearch} queries, 1 thread)`);
  for (let i = 0; i < Math.min(50, nSearch); i++) scanTopK(searchDs.base, searchDs.queries.data, i * dim, K, ds.metric);
  const scan = runScan(searchDs, nSearch, K, gtSearch, undefined, "in-process scan (1 thread)");
  points.push({ system: "scan (in-process, 1 thread)", label: "c=1", qps: scan.stats.qps, recall: scan.recall });
  const filteredScans = FILTERS.map((f, fi) => runScan(searchDs, nSearch, K, gtFiltered[fi]!, f.keep, `scan ${f.expr}`));

  // ---------------------------------------------------------------- processes
  const tmp = tempDir("natsvec-bench-");
  say(`starting nats-server (max_payload ${fmtBytes(MAX_PAYLOAD)}) and natsvec standalone...`);
  const nats = await startNatsServer({ storeDir: join(tmp, "nats"), port: 0, maxPayloadBytes: MAX_PAYLOAD, logFile: join(tmp, "nats-server.log") });
  onCleanup(
    `nats-server (pid ${nats.pid})`,
    () => nats.stop(),
    () => {
      try {
        process.kill(nats.pid, "SIGKILL");
      } catch {
        /* gone */
      }
    },
  );
  const { child: natsvec } = await spawnChild(
    "natsvec standalone",
    process.execPath,
    ["--import", "tsx", join(REPO, "cluster", "cli.ts"), "standalone", "--data", join(tmp, "natsvec"), "--nats", nats.url, "--log", "info"],
    { cwd: REPO, readyLine: /natsvec ready:/, timeoutMs: 60_000 },
  );
  say(`  nats-server pid ${nats.pid} at ${nats.url}; natsvec standalone pid ${natsvec.pid}`);
  // 2 minutes per call: far above any healthy insert or search here, short enough that a hung write fails the run soon.
  const db = await NatsvecClient.connect({ servers: nats.url, timeoutMs: 120_000 });
  const nc: NatsConnection = await connect({ servers: nats.url, name: "bench-raw" });
  const ncEcho: NatsConnection = await connect({ servers: nats.url, name: "bench-echo" });
  onCleanup("bench NATS connections", async () => {
    await db.close().catch(() => undefined);
    await nc.close().catch(() => undefined);
    await ncEcho.close().catch(() => undefined);
  });
  const idleRss = rssOf(natsvec.pid);

  const createCollection = async (collectionName: string) => {
    await db.collections.create({
      collectionName,
      schema: {
        fields: [
          { fieldName: "id", dataType: "Int64", isPrimary: true },
          { fieldName: "vector", dataType: "FloatVector", elementTypeParams: { dim } },
          { fieldName: "bucket", dataType: "Int64" },
        ],
      },
      indexParams: [{ fieldName: "vector", indexType: "FLAT", metricType: ds.metric }],
      params: { shardsNum: opts.shards },
    });
  };

  /** Insert rows [0, count) in batches through the client, one request at a time. */
  const ingest = async (collectionName: string, count: number, batch: number, label: string) => {
    const p = new Progress(label, count);
    const cpu0 = { natsvec: cpuMsOf(natsvec.pid), nats: cpuMsOf(nats.pid), bench: process.cpuUsage() };
    const t = performance.now();
    for (let s = 0; s < count; s += batch) {
      const e = Math.min(count, s + batch);
      const data = rowsOf(ds, s, e);
      const r = await db.entities.insert({ collectionName, data });
      if (r.insertCount !== e - s) throw new Error(`insert returned insertCount ${r.insertCount}, expected ${e - s}`);
      p.update(e);
    }
    const ms = performance.now() - t;
    const bench = process.cpuUsage(cpu0.bench);
    const cpu = { natsvecMs: cpuMsOf(natsvec.pid) - cpu0.natsvec, natsServerMs: cpuMsOf(nats.pid) - cpu0.nats, benchClientMs: (bench.user + bench.system) / 1000 };
    p.done();
    return { ms, rowsPerS: (count / ms) * 1000, cpu };
  };

  // Raw JetStream baseline: the same request bytes (msgpack of the insert body), same count,
  // published to a separate file-backed stream on the same server, each awaited (ack) before the next.
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "BENCHRAW", subjects: ["benchraw.>"], storage: StorageType.File, max_msg_size: MAX_PAYLOAD, duplicate_window: 120_000_000_000 });
  const rawPublish = async (collectionName: string, count: number, batch: number, label: string) => {
    const p = new Progress(label, count);
    let ms = 0;
    let bytes = 0;
    const cpu0 = cpuMsOf(nats.pid);
    for (let s = 0; s < count; s += batch) {
      const e = Math.min(count, s + batch);
      const body = packMsgpack({ collectionName, data: rowsOf(ds, s, e) });
      bytes += body.length;
      const t = performance.now();
      await js.publish(`benchraw.b${batch}`, body, { timeout: 60_000 });
      ms += performance.now() - t;
      p.update(e);
    }
    p.done();
    return { ms, rowsPerS: (count / ms) * 1000, bytes, msgBytes: bytes / Math.ceil(count / batch), natsServerCpuMs: cpuMsOf(nats.pid) - cpu0 };
  };
  const requestBytes = (batch: number) => packMsgpack({ collectionName: "bench_main", data: rowsOf(ds, 0, Math.min(batch, n)) }).length;

  // natsvec phases: a failure is recorded in the report, and the in-process baselines still run.
  let phase = "ingest";
  let mainMs: number | undefined;
  let c1Qps: number | undefined;
  try {
    // ---------------------------------------------------------------- (a) ingest + (b) visibility
    say(`\n(a) ingest ${n} rows, batch ${spec.mainBatch}, shardsNum ${opts.shards}`);
    const coll = "bench_main";
    await createCollection(coll);
    const tIngest = performance.now();
    const main = await ingest(coll, n, spec.mainBatch, `natsvec insert (batch ${spec.mainBatch})`);
    mainMs = main.ms;
    const tAcked = performance.now();
    let visibleCount = -1;
    let polls = 0;
    while (visibleCount !== n) {
      visibleCount = await db.entities.count({ collectionName: coll, consistencyLevel: "Strong" });
      polls++;
      if (visibleCount !== n) {
        if (performance.now() - tAcked > 120_000) throw new Error(`count(*) is ${visibleCount} two minutes after the last ack, expected ${n}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    const tVisible = performance.now();
    const afterIngestRss = rssOf(natsvec.pid);
    const rawMain = await rawPublish(coll, n, spec.mainBatch, `raw JetStream publish (batch ${spec.mainBatch})`);
    const mainReqBytes = requestBytes(spec.mainBatch);
    fig({
      section: "ingest",
      measure: `rows/s, ${n} rows, batch ${spec.mainBatch} (${fmtBytes(mainReqBytes)}/request)`,
      value: main.rowsPerS,
      unit: "rows/s",
      baselineName: "raw JetStream publish, same bytes, awaited 1 at a time",
      baseline: rawMain.rowsPerS,
      ratio: main.rowsPerS / rawMain.rowsPerS,
      target: ">= 0.3x",
      met: main.rowsPerS / rawMain.rowsPerS >= 0.3,
      note: (mainReqBytes > 1024 * 1024 - 8 * 1024 ? "only possible because the bench's nats-server has max_payload 8 MiB; " : "") + cpuNote(main.ms, main.cpu, rawMain),
    });
    fig({
      section: "visibility",
      measure: `last ack -> count(*) = ${n} under Strong`,
      value: tVisible - tAcked,
      unit: "ms",
      note: `${polls} count polls`,
    });
    fig({
      section: "visibility",
      measure: `ingest start -> all ${n} rows searchable (Strong)`,
      value: (tVisible - tIngest) / 1000,
      unit: "s",
      baselineName: "raw JetStream publish of the same bytes",
      baseline: rawMain.ms / 1000,
      ratio: (tVisible - tIngest) / rawMain.ms,
    });
    raw.ingestMain = { natsvecMs: main.ms, rawMs: rawMain.ms, rawBytes: rawMain.bytes, visibleAfterAckMs: tVisible - tAcked, polls };

    // ---------------------------------------------------------------- NATS round trip
    phase = "echo round trip";
    say(`\nNATS request/reply round trip (echo responder on a second connection)`);
    const echoSub = ncEcho.subscribe("bench.echo", { callback: (_e, m) => void m.respond(m.data) });
    await ncEcho.flush();
    const q0 = ds.queries.data.slice(0, dim);
    const searchBody = packMsgpack({ collectionName: coll, data: [q0], limit: K, consistencyLevel: "Strong" });
    const rtt = await runConcurrent(1000, 1, async () => nc.request("bench.echo", searchBody, { timeout: 5_000 }), new Progress(`echo ${searchBody.length} B`, 1000));
    echoSub.unsubscribe();
    const rttMs = rtt.stats.p50Ms;
    fig({ section: "search", measure: `NATS echo round trip p50 (${searchBody.length} B, the size of a search request)`, value: rttMs, unit: "ms", note: `p99 ${rtt.stats.p99Ms.toFixed(3)} ms` });
    raw.echo = rtt.stats;

    // ---------------------------------------------------------------- (c) exact search
    phase = "exact search";
    say(`\n(c) exact search: ${nSearch} queries, k=${K}, concurrency ${spec.concurrencies.join("/")}`);
    const qv = (i: number) => ds.queries.data.slice(i * dim, (i + 1) * dim);
    const search = async (i: number, filter?: string, consistencyLevel: "Strong" | "Eventually" = "Strong") => {
      const r = await db.entities.search({ collectionName: coll, data: [qv(i)], limit: K, consistencyLevel, ...(filter ? { filter } : {}) });
      return r.data.map((x) => Number(x.id as bigint));
    };
    // Warm-up (JIT, caches) — not measured.
    for (let i = 0; i < Math.min(10, nSearch); i++) await search(i);
    const natsvecRuns: { c: number; stats: LatencyStats; recall: number }[] = [];
    for (const c of spec.concurrencies) {
      if (c > 1 && budgetLeft() < 30) {
        skip(`natsvec search at concurrency ${c}`, `time budget of ${spec.budgetS} s nearly spent`);
        continue;
      }
      const r = await runConcurrent(nSearch, c, (i) => search(i), new Progress(`natsvec search c=${c}`, nSearch));
      const recall = recallAtK(r.results, gtSearch, K);
      natsvecRuns.push({ c, stats: r.stats, recall });
      points.push({ system: "natsvec (FLAT, exact)", label: `c=${c}`, qps: r.stats.qps, recall });
    }
    const c1 = natsvecRuns.find((r) => r.c === 1)!;
    c1Qps = c1.stats.qps;
    for (const p of ["p50", "p95", "p99"] as const) {
      const key = `${p}Ms` as const;
      const limit = 1.5 * scan.stats[key] + rttMs;
      fig({
        section: "search",
        measure: `latency ${p}, concurrency 1`,
        value: c1.stats[key],
        unit: "ms",
        baselineName: "in-process scan, same queries",
        baseline: scan.stats[key],
        ratio: c1.stats[key] / scan.stats[key],
        target: `<= 1.5x scan + RTT (${limit.toFixed(2)} ms)`,
        met: c1.stats[key] <= limit,
      });
    }
    for (const r of natsvecRuns) {
      fig({
        section: "search",
        measure: `QPS, concurrency ${r.c}`,
        value: r.stats.qps,
        unit: "QPS",
        baselineName: "in-process scan, 1 thread",
        baseline: scan.stats.qps,
        ratio: r.stats.qps / scan.stats.qps,
        note: r.c > 1 ? `p50 ${r.stats.p50Ms.toFixed(1)} / p95 ${r.stats.p95Ms.toFixed(1)} / p99 ${r.stats.p99Ms.toFixed(1)} ms` : undefined,
      });
    }
    {
      // The same queries under Eventually: no TSO round trip before the search.
      const ev = await runConcurrent(nSearch, 1, (i) => search(i, undefined, "Eventually"), new Progress("natsvec search c=1 Eventually", nSearch));
      fig({
        section: "search",
        measure: "latency p50, concurrency 1, consistencyLevel Eventually",
        value: ev.stats.p50Ms,
        unit: "ms",
        baselineName: "same search under Strong",
        baseline: c1.stats.p50Ms,
        ratio: ev.stats.p50Ms / c1.stats.p50Ms,
        note: `QPS ${ev.stats.qps.toFixed(1)}`,
      });
      raw.searchEventually = ev.stats;
    }
    fig({
      section: "search",
      measure: `recall@${K} vs exact ground truth (${nSearch} q)`,
      value: c1.recall,
      unit: "",
      baselineName: "exact",
      baseline: 1,
      ratio: c1.recall,
      target: "= 1.0",
      met: natsvecRuns.every((r) => r.recall === 1),
    });
    raw.search = { scan: scan.stats, natsvec: natsvecRuns };

    // ---------------------------------------------------------------- (e) filtered search
    phase = "filtered search";
    say(`\n(e) filtered search (bucket = id % 100), ${nSearch} queries, concurrency 1`);
    const filtered: unknown[] = [];
    for (let fi = 0; fi < FILTERS.length; fi++) {
      const f = FILTERS[fi]!;
      if (budgetLeft() < 20) {
        skip(`filtered search ${f.expr}`, `time budget of ${spec.budgetS} s nearly spent`);
        continue;
      }
      const fscan = filteredScans[fi]!;
      const r = await runConcurrent(nSearch, 1, (i) => search(i, f.expr), new Progress(`natsvec search ${f.expr}`, nSearch));
      const recall = recallAtK(r.results, gtFiltered[fi]!, K);
      fig({
        section: "filtered",
        measure: `QPS, ${f.selectivity} pass (${f.expr}), c=1`,
        value: r.stats.qps,
        unit: "QPS",
        baselineName: "in-process filtered scan",
        baseline: fscan.stats.qps,
        ratio: r.stats.qps / fscan.stats.qps,
        note: `p50 ${r.stats.p50Ms.toFixed(1)} ms vs scan ${fscan.stats.p50Ms.toFixed(1)} ms`,
      });
      fig({
        section: "filtered",
        measure: `recall@${K}, ${f.selectivity} pass (${f.expr})`,
        value: recall,
        unit: "",
        baselineName: "exact filtered",
        baseline: 1,
        ratio: recall,
        target: "= 1.0",
        met: recall === 1,
      });
      filtered.push({ filter: f.expr, natsvec: r.stats, scan: fscan.stats, recall });
    }
    raw.filtered = filtered;

    // ---------------------------------------------------------------- (f) memory
    phase = "memory readings";
    const vecBytes = n * dim * 4;
    const nvRss = rssOf(natsvec.pid);
    const nsRss = rssOf(nats.pid);
    const storeBytes = dirSize(join(tmp, "nats", "jetstream"));
    if (nvRss) {
      fig({
        section: "memory",
        measure: `natsvec process RSS with ${n} rows (after searches)`,
        value: nvRss.rss / 2 ** 20,
        unit: "MiB",
        baselineName: "raw vector bytes (n x dim x 4)",
        baseline: vecBytes / 2 ** 20,
        ratio: nvRss.rss / vecBytes,
        note: `peak ${fmtBytes(nvRss.peak)}; idle before ingest ${idleRss ? fmtBytes(idleRss.rss) : "?"}; right after ingest ${afterIngestRss ? fmtBytes(afterIngestRss.rss) : "?"}`,
      });
      if (idleRss)
        fig({
          section: "memory",
          measure: "natsvec RSS growth over idle",
          value: (nvRss.rss - idleRss.rss) / 2 ** 20,
          unit: "MiB",
          baselineName: "raw vector bytes",
          baseline: vecBytes / 2 ** 20,
          ratio: (nvRss.rss - idleRss.rss) / vecBytes,
        });
    }
    if (nsRss)
      fig({
        section: "memory",
        measure: "nats-server RSS (WAL + bench raw stream)",
        value: nsRss.rss / 2 ** 20,
        unit: "MiB",
        baselineName: "raw vector bytes",
        baseline: vecBytes / 2 ** 20,
        ratio: nsRss.rss / vecBytes,
        note: `peak ${fmtBytes(nsRss.peak)}`,
      });
    fig({
      section: "memory",
      measure: "JetStream store on disk (natsvec WAL + meta + bench raw stream)",
      value: storeBytes / 2 ** 20,
      unit: "MiB",
      baselineName: "raw vector bytes",
      baseline: vecBytes / 2 ** 20,
      ratio: storeBytes / vecBytes,
    });
    raw.memory = { idleRss, afterIngestRss, natsvec: nvRss, natsServer: nsRss, vecBytes, storeBytes };

    // ---------------------------------------------------------------- (a') batch sizes on a subset
    const sub = Math.min(spec.subset.n, n);
    phase = "batch-size ingest";
    say(`\n(a) batch sizes ${spec.subset.batches.join("/")} on the first ${sub} rows`);
    const batchRuns: unknown[] = [];
    for (const b of spec.subset.batches) {
      const bytes = requestBytes(b);
      if (bytes > MAX_PAYLOAD - 8 * 1024) {
        skip(`ingest batch ${b}`, `a ${fmtBytes(bytes)} request is over the NATS max payload (${fmtBytes(MAX_PAYLOAD)}): not possible over NATS`);
        continue;
      }
      if (budgetLeft() < 15) {
        skip(`ingest batch ${b}`, `time budget of ${spec.budgetS} s nearly spent`);
        continue;
      }
      const name = `bench_b${b}`;
      await createCollection(name);
      const r = await ingest(name, sub, b, `natsvec insert (batch ${b})`);
      const rb = await rawPublish(name, sub, b, `raw JetStream publish (batch ${b})`);
      await db.collections.drop({ collectionName: name });
      const over1M = bytes > 1024 * 1024 - 8 * 1024;
      fig({
        section: "ingest",
        measure: `rows/s, ${sub} rows, batch ${b} (${fmtBytes(bytes)}/request)`,
        value: r.rowsPerS,
        unit: "rows/s",
        baselineName: "raw JetStream publish, same bytes",
        baseline: rb.rowsPerS,
        ratio: r.rowsPerS / rb.rowsPerS,
        target: ">= 0.3x",
        met: r.rowsPerS / rb.rowsPerS >= 0.3,
        note: (over1M ? "only possible because the bench's nats-server has max_payload 8 MiB; over the default 1 MiB the client refuses with PayloadTooLarge; " : "") + cpuNote(r.ms, r.cpu, rb),
      });
      batchRuns.push({ batch: b, bytes, natsvec: r, raw: rb });
    }
    raw.batchSizes = batchRuns;

  } catch (e) {
    if (interrupted()) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    say(`\nnatsvec FAILED during ${phase}: ${msg}`);
    fig({ section: "FAILED", measure: `natsvec ${phase}`, value: msg.replace(/\|/g, "/"), unit: "" });
    skip(`natsvec phases after ${phase}`, "natsvec failed (see the FAILED row)");
    const tail = natsvec.tail().split("\n").filter((l) => l.trim() !== "").slice(-15);
    if (tail.length) notes.push(`natsvec process log (--log info) up to the failure:\n\n    ${tail.join("\n    ")}\n`);
    raw.failure = { phase, message: msg, natsvecTail: natsvec.tail(), natsvecRss: rssOf(natsvec.pid), natsServerRss: rssOf(nats.pid) };
  }

  // Stop natsvec and nats-server before the in-process baselines (frees the core and the memory).
  await db.close().catch(() => undefined);
  await nc.close().catch(() => undefined);
  await ncEcho.close().catch(() => undefined);
  await natsvec.stop();
  await nats.stop();

  // ---------------------------------------------------------------- (d) hnswlib + peers
  const annResults: AnnResult[] = [];
  const ceilingFigures = (r: AnnResult) => {
    fig({
      section: "ANN ceiling",
      measure: `${r.system} build time (M=${HNSW.M}, efC=${HNSW.efConstruction}, ${r.buildNote})`,
      value: r.buildMs / 1000,
      unit: "s",
      baselineName: mainMs === undefined ? undefined : "natsvec ingest (no index)",
      baseline: mainMs === undefined ? undefined : mainMs / 1000,
      ratio: mainMs === undefined ? undefined : r.buildMs / mainMs,
    });
    for (const p of r.points)
      fig({
        section: "ANN ceiling",
        measure: `${r.system} ${p.param}: QPS (recall@${K} ${p.recall.toFixed(4)})`,
        value: p.stats.qps,
        unit: "QPS",
        baselineName: c1Qps === undefined ? undefined : "natsvec FLAT c=1",
        baseline: c1Qps,
        ratio: c1Qps === undefined ? undefined : p.stats.qps / c1Qps,
        note: `p50 ${p.stats.p50Ms.toFixed(3)} ms, ${p.stats.count} q`,
      });
    for (const p of r.points) points.push({ system: r.system, label: p.param, qps: p.stats.qps, recall: p.recall });
  };
  if (!opts.hnsw) skip("hnswlib-node", "--no-hnsw");
  else if (budgetLeft() < 60 && spec.name !== "quick") skip("hnswlib-node", `time budget of ${spec.budgetS} s nearly spent`);
  else {
    say(`\n(d) hnswlib-node M=${HNSW.M} efConstruction=${HNSW.efConstruction}, ef ${EFS.join("/")}, ${ds.queries.n} queries`);
    const r = runHnswlib(ds, K, gt.ids, { ...HNSW, efs: EFS });
    annResults.push(r);
    ceilingFigures(r);
  }
  const peers = opts.peers ?? spec.peers;
  for (const peer of ["usearch", "pgvector", "lancedb"]) {
    if (!peers.includes(peer)) {
      if (peer === "pgvector") skip("pgvector (PGlite)", "opt-in (add --peers usearch,pgvector): at 100k rows its single-threaded WASM HNSW build takes ~54 s plus ~14 s of row loading, which would take quick from ~60 s to ~130 s");
      if (peer === "lancedb") skip("LanceDB", "not a dependency: @lancedb/lancedb installs and works (tried in a scratch dir) but ships a 178 MB native binary and pulls the openai SDK as an optional dependency, so it is not added to every npm install");
      continue;
    }
    if (budgetLeft() < 60 && spec.name !== "quick") {
      skip(peer, `time budget of ${spec.budgetS} s nearly spent`);
      continue;
    }
    say(`\npeer: ${peer}`);
    let r: AnnResult | { skip: string };
    if (peer === "usearch") r = await runUsearch(ds, K, gt.ids, { ...HNSW, efs: EFS, threads: cpus().length, tmp });
    else if (peer === "pgvector") r = await runPgvector(ds, K, gt.ids, { ...HNSW, efs: EFS, nq: nSearch });
    else r = { skip: "LanceDB is not a dependency of this repo" };
    if ("skip" in r) skip(peer, r.skip);
    else {
      annResults.push(r);
      ceilingFigures(r);
    }
  }
  raw.ann = annResults.map((r) => ({ system: r.system, buildMs: r.buildMs, buildNote: r.buildNote, points: r.points }));

  notes.push(
    `natsvec runs as a separate \`natsvec standalone --nats <url>\` child process (all roles in one Node process, one core for the search); the bench's nats-server has max_payload ${fmtBytes(MAX_PAYLOAD)} (default is 1 MiB) so that batch 10000 fits.`,
    "Searches: one query vector per request, consistencyLevel Strong (one TSO round trip per search), k=10, no output fields, index type FLAT (exact). Shards seal growing segments at 200k rows / 128 MiB / 60 s idle; natsvec's HNSW is not benchmarked yet, so hnswlib-node/usearch are its future ceiling, not a like-for-like comparison.",
    "Raw JetStream baseline: the msgpack-encoded insert request bytes, published to a separate file-backed stream on the same server, each publish awaited before the next (encoding excluded from its time; natsvec's time includes the client's encoding).",
    `recall@${K} is |returned ∩ exact top-${K}| / ${K}, averaged over queries; ground truth is an exact scan cached under bench/data/.`,
  );

  const durationS = elapsedS();
  const report: Report = {
    scenario: spec.name,
    title: `${spec.name}: ${n.toLocaleString("en-US")} x ${dim} ${ds.metric}, k=${K}`,
    date: today(),
    startedAt: started.toISOString(),
    durationS,
    machine: {
      cpus: `${cpus().length} x ${cpus()[0]?.model ?? "?"}`,
      memory: fmtBytes(totalmem()),
      node: process.version,
      "nats-server": natsServerVersion(),
      natsvec: gitRevision(),
      // Other work on the machine skews every figure: the 1-minute load average when the run started and ended.
      "load average (start/end)": `${loadAtStart.toFixed(1)}/${loadavg()[0]!.toFixed(1)}`,
    },
    dataset: ds.description,
    config: { k: K, shardsNum: opts.shards, mainBatch: spec.mainBatch, searchQueries: nSearch, maxPayload: MAX_PAYLOAD, hnsw: HNSW, efs: EFS, peers },
    figures,
    points,
    skipped,
    notes,
    raw,
  };
  const outDir = opts.out ? resolve(opts.out) : join(BENCH_DIR, "results", `${report.date}-${spec.name}`);
  writeReport(outDir, report);
  await cleanupAll();
  process.stdout.write(`\n${markdownTable(figures)}\n\n`);
  if (skipped.length) process.stdout.write(`Skipped:\n${skipped.map((s) => `- ${s.what}: ${s.why}`).join("\n")}\n\n`);
  process.stdout.write(`Results: ${outDir}/results.md (+ results.json, qps-recall.svg); ${durationS.toFixed(0)} s\n`);
};

main()
  .catch(async (e) => {
    if (interrupted()) return;
    process.stderr.write(`\nbench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await cleanupAll();
    // Anything left (e.g. an open handle) must not keep the process alive.
    setTimeout(() => process.exit(process.exitCode ?? 0), 200).unref();
  });
