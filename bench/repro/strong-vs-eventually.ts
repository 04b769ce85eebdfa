/**
 * Strong vs Eventually search latency on one sealed FLAT segment, concurrency 1, alternating.
 *
 *   [DIST=path/to/dist/cli.mjs] [N=50000] npx tsx bench/repro/strong-vs-eventually.ts
 *
 * Starts its own nats-server and a natsvec standalone from DIST (default: this checkout's
 * dist/cli.mjs; point it at another checkout's to compare versions), inserts N rows of 128-d,
 * flushes, waits until loaded, then times 300 Strong/Eventually pairs and prints both p50s.
 * Written to check a Strong slowdown seen in the 2026-12-03 full runs: at f21dfe4 and at
 * 0f18eb9 both levels measured the same here.
 */
import { join } from "node:path";
import { NatsvecClient } from "../../client/index.ts";
import { startNatsServer } from "../../cluster/natsServer.ts";
import { syntheticClustered } from "../datasets.ts";
import { spawnChild, tempDir } from "../harness.ts";
const REPO = join(import.meta.dirname, "..", "..");
const DIST = process.env.DIST ?? join(REPO, "dist", "cli.mjs");
const N = Number(process.env.N ?? 50_000);
const tmp = tempDir("strong-");
const nats = await startNatsServer({ storeDir: tmp + "/nats", port: 0, maxPayloadBytes: 8 << 20, logFile: tmp + "/ns.log" });
const { child } = await spawnChild("natsvec", process.execPath, [DIST, "standalone", "--data", tmp + "/nv", "--nats", nats.url, "--log", "info"], { cwd: REPO, env: process.env, readyLine: /natsvec ready:/, timeoutMs: 120_000, logFile: join(tmp, "natsvec.log") });
const db = await NatsvecClient.connect({ servers: nats.url, timeoutMs: 120_000 });
const ds = syntheticClustered({ n: N, dim: 128, nq: 100 }); const d = ds.base.data;
await db.collections.create({ collectionName: "c", schema: { fields: [
  { fieldName: "id", dataType: "Int64", isPrimary: true }, { fieldName: "vector", dataType: "FloatVector", elementTypeParams: { dim: 128 } } ] },
  indexParams: [{ fieldName: "vector", indexType: "FLAT", metricType: "L2" }], params: { shardsNum: 1 } });
for (let s = 0; s < N; s += 1000) await db.entities.insert({ collectionName: "c", data: Array.from({ length: 1000 }, (_, j) => ({ id: s + j, vector: d.slice((s + j) * 128, (s + j + 1) * 128) })) });
await db.call("collections", "flush", { collectionName: "c" });
for (;;) { const l = (await db.call<any>("collections", "get_load_state", { collectionName: "c" })).data; if (l.loadProgress === 100) break; await new Promise((r) => setTimeout(r, 300)); }
await new Promise((r) => setTimeout(r, 3000));
const qv = (i: number) => ds.queries.data.slice((i % 100) * 128, (i % 100 + 1) * 128);
const lat: Record<string, number[]> = { Strong: [], Eventually: [] };
for (let i = 0; i < 300; i++) for (const lvl of ["Strong", "Eventually"]) { const t = performance.now(); await db.entities.search({ collectionName: "c", data: [qv(i)], limit: 10, consistencyLevel: lvl } as any); lat[lvl]!.push(performance.now() - t); }
const p50 = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!.toFixed(2);
console.log(`${DIST}: Strong p50 ${p50(lat.Strong!)} ms, Eventually p50 ${p50(lat.Eventually!)} ms`);
await db.close(); process.kill(child.pid, "SIGINT"); await new Promise((r) => child.proc.once("exit", r)); await nats.stop(); process.exit(0);
