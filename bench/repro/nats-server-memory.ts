/**
 * Measurement behind NATS_SERVER_GOMEMLIMIT (cluster/natsServer.ts): nats-server's resident memory
 * after a query node's worth of Object Store reading, under the GOMEMLIMIT in the environment.
 *
 *   GOMEMLIMIT=96MiB npx tsx bench/repro/nats-server-memory.ts [MB=650]
 *
 * Starts its own nats-server (natsvec's environment: GOMEMLIMIT from ours, else natsvec's default),
 * puts one MB-sized object (a 1M x 128 HNSW index is ~650 MB), reads it back, and prints the
 * read's rate, nats-server's CPU for it, and its resident memory over the next 20 s.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { Objm } from "@nats-io/obj";
import { startNatsServer } from "../../cluster/natsServer.ts";
import { cpuMsOf, rssOf } from "../harness.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MB = Number(process.argv[2] ?? 650);
const dir = mkdtempSync(join(tmpdir(), "nsmem-"));
const nats = await startNatsServer({ storeDir: join(dir, "nats"), port: 0, maxPayloadBytes: 8 << 20, logFile: join(dir, "nats.log") });
try {
  const nc = await connect({ servers: nats.url });
  const os = await new Objm(nc).create("seg");
  const big = new Uint8Array(MB << 20).map((_, i) => (i * 2654435761) >>> 24);
  const rss = () => `${(rssOf(nats.pid)!.rss / 2 ** 20).toFixed(0)} MiB`;
  console.log(`GOMEMLIMIT ${process.env.GOMEMLIMIT ?? "(natsvec's default)"}; idle ${rss()}`);
  await os.putBlob({ name: "idx" }, big);
  await sleep(2000);
  console.log(`after the put ${rss()}`);
  const c0 = cpuMsOf(nats.pid);
  const t = performance.now();
  const back = await os.getBlob("idx");
  const ms = performance.now() - t;
  if (back?.length !== big.length) throw new Error(`read back ${back?.length} bytes, put ${big.length}`);
  console.log(`read ${MB} MB at ${((MB / ms) * 1000).toFixed(0)} MB/s, nats-server CPU ${(cpuMsOf(nats.pid) - c0).toFixed(0)} ms`);
  let waited = 0;
  for (const at of [0, 2, 5, 10, 20]) {
    await sleep((at - waited) * 1000);
    waited = at;
    console.log(`  +${at} s: ${rss()}`);
  }
  await nc.close();
} finally {
  await nats.stop();
  rmSync(dir, { recursive: true, force: true });
}
