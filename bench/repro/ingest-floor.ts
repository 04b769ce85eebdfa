/**
 * Where natsvec's ingest stands against the cheapest process with its shape (issue 2's target:
 * acknowledged rows/s >= 0.3x raw JetStream publish of the same bytes).
 *
 *   npx tsx bench/repro/ingest-floor.ts [ROUNDS=3] [ROWS=100000] [BATCH=1000]
 *
 * Starts nats-server (max_payload 8 MiB, like bench/run.ts), `natsvec standalone` from dist/ and a
 * "floor" relay process, then per round, one after the other, each awaited one request at a time
 * with the rows built outside the clock:
 *  - raw:     JetStream publish of the request's msgpack bytes (the bench's baseline);
 *  - floor:   the same bytes as a NATS request to a Node process that appends them unchanged to a
 *             stream with natsvec's fencing (expected last sequence) and replies after the ack:
 *             the two payload hops and the reply every request/reply design over NATS pays, with
 *             no decoding, checking or applying at all (V8 heap growth tuned like natsvec's);
 *  - natsvec: `entities.insert` through the TypeScript client into a FLAT collection.
 * Prints ms per batch and rows/s of each, and the natsvec/raw and floor/raw ratios. Raw speeds up
 * over the first rounds (2.8 -> 1.1 ms per batch here) while the others do not move as much: read
 * the later rounds.
 */
import { connect, type Msg } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { join } from "node:path";
import { startNatsServer } from "../../cluster/natsServer.ts";
import { NatsvecClient } from "../../client/index.ts";
import { packMsgpack } from "../../runtime/codec.ts";
import { tuneHeapGrowth } from "../../runtime/gc.ts";
import { rowsOf, syntheticClustered } from "../datasets.ts";
import { cleanupAll, cpuMsOf, spawnChild, tempDir } from "../harness.ts";

const REPO = join(import.meta.dirname, "..", "..");
const MAX_PAYLOAD = 8 << 20;

/** The floor: append the request's bytes to a fenced stream, reply once JetStream acknowledged them. */
const relay = async (url: string) => {
  tuneHeapGrowth(); // as natsvec's processes do: without it this relay spends more on V8 GC than on relaying
  const nc = await connect({ servers: url, name: "ingest-floor-relay" });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "FLOOR_WAL", subjects: ["floorwal.>"], storage: StorageType.File, max_msg_size: MAX_PAYLOAD });
  const js = jetstream(nc);
  let last = 0;
  const queue: Msg[] = [];
  let busy = false;
  const pump = async () => {
    if (busy) return;
    busy = true;
    for (let m = queue.shift(); m; m = queue.shift()) {
      last = (await js.publish("floorwal.0", m.data, { expect: { lastSequence: last } })).seq;
      m.respond(packMsgpack({ code: 0, data: { seq: last } }));
    }
    busy = false;
  };
  nc.subscribe("floor.insert", { callback: (_e, m) => (queue.push(m), void pump()) });
  await nc.flush();
  console.log("floor relay ready");
};

if (process.argv[2] === "relay") {
  await relay(process.argv[3]!);
} else {
  const rounds = Number(process.argv[2] ?? 3);
  const rows = Number(process.argv[3] ?? 100_000);
  const batch = Number(process.argv[4] ?? 1000);
  const dir = tempDir("ingest-floor-");
  const nats = await startNatsServer({ storeDir: join(dir, "nats"), port: 0, maxPayloadBytes: MAX_PAYLOAD, logFile: join(dir, "nats.log") });
  try {
    const natsvec = (
      await spawnChild("natsvec", process.execPath, [join(REPO, "dist/cli.mjs"), "standalone", "--data", join(dir, "natsvec"), "--nats", nats.url, "--segment-max-rows", "200000"], {
        cwd: REPO,
        readyLine: /natsvec ready:/,
        timeoutMs: 120_000,
        logFile: join(dir, "natsvec.log"),
      })
    ).child;
    const floor = (await spawnChild("floor relay", process.execPath, ["--import", "tsx", import.meta.filename, "relay", nats.url], { cwd: REPO, readyLine: /floor relay ready/ })).child;
    const db = await NatsvecClient.connect({ servers: nats.url, timeoutMs: 120_000 });
    const nc = await connect({ servers: nats.url, name: "ingest-floor-client" });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "FLOOR_RAW", subjects: ["floorraw.>"], storage: StorageType.File, max_msg_size: MAX_PAYLOAD });
    const js = jetstream(nc);

    const ds = syntheticClustered({ n: rows, dim: 128, nq: 1 });
    const rowsOfDs = (s: number, e: number) => rowsOf(ds, s, e);
    const starts = Array.from({ length: Math.ceil(rows / batch) }, (_, i) => i * batch);
    /** Awaited one at a time; `prepare` runs outside the clock. Returns ms per batch and the CPU each process spent. */
    const timed = async <T>(prepare: (s: number, e: number) => T, send: (x: T) => Promise<unknown>) => {
      const cpu0 = [cpuMsOf(nats.pid), cpuMsOf(natsvec.pid), cpuMsOf(floor.pid)];
      let ms = 0;
      for (const s of starts) {
        const x = prepare(s, Math.min(rows, s + batch));
        const t = performance.now();
        await send(x);
        ms += performance.now() - t;
      }
      const [ns, nv, fl] = [cpuMsOf(nats.pid) - cpu0[0]!, cpuMsOf(natsvec.pid) - cpu0[1]!, cpuMsOf(floor.pid) - cpu0[2]!].map((c) => c / starts.length);
      return { msPerBatch: ms / starts.length, cpu: `nats-server ${ns!.toFixed(2)}, natsvec ${nv!.toFixed(2)}, relay ${fl!.toFixed(2)} ms/batch` };
    };
    const schema = {
      fields: [
        { fieldName: "id", dataType: "Int64", isPrimary: true },
        { fieldName: "vector", dataType: "FloatVector", elementTypeParams: { dim: 128 } },
        { fieldName: "bucket", dataType: "Int64" },
      ],
    };
    const ratios: { natsvec: number; floor: number }[] = [];
    for (let r = 0; r < rounds; r++) {
      const collectionName = `floor_${r}`;
      await db.collections.create({ collectionName, schema, indexParams: [{ fieldName: "vector", indexType: "FLAT", metricType: "L2" }], params: { shardsNum: 1 } });
      const bytes = (s: number, e: number) => packMsgpack({ collectionName, data: rowsOfDs(s, e) });
      const raw = await timed(bytes, (b) => js.publish("floorraw.x", b));
      const fl = await timed(bytes, (b) => nc.request("floor.insert", b, { timeout: 60_000 }));
      const nv = await timed(rowsOfDs, (data) => db.entities.insert({ collectionName, data }));
      const rps = (m: number) => `${Math.round((batch / m) * 1000).toLocaleString("en-US")} rows/s`;
      ratios.push({ natsvec: raw.msPerBatch / nv.msPerBatch, floor: raw.msPerBatch / fl.msPerBatch });
      console.log(`round ${r + 1}: raw ${raw.msPerBatch.toFixed(2)} ms/batch (${rps(raw.msPerBatch)}; ${raw.cpu})`);
      console.log(`         floor ${fl.msPerBatch.toFixed(2)} ms/batch (${rps(fl.msPerBatch)}; ${fl.cpu}) = ${ratios[r]!.floor.toFixed(3)}x raw`);
      console.log(`         natsvec ${nv.msPerBatch.toFixed(2)} ms/batch (${rps(nv.msPerBatch)}; ${nv.cpu}) = ${ratios[r]!.natsvec.toFixed(3)}x raw`);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(`median over ${rounds} rounds: floor ${median(ratios.map((x) => x.floor)).toFixed(3)}x raw, natsvec ${median(ratios.map((x) => x.natsvec)).toFixed(3)}x raw`);
    await db.close();
    await nc.close();
  } finally {
    await cleanupAll();
    await nats.stop();
  }
  process.exit(0);
}
