/**
 * Measurement behind the per-shard WAL streams (docs/ARCHITECTURE.md, departure 14): what the
 * fencing header costs nats-server per append of a WAL-sized entry.
 *
 *   npx tsx bench/repro/wal-fence-cost.ts [MODE=subj|stream|plain] [ROUNDS=10] [ENTRY_BYTES=540000]
 *
 * Starts its own nats-server, appends ROUNDS x 100 entries of ENTRY_BYTES to one subject of a
 * fresh file-backed stream, each awaited, and prints per round the time per append and
 * nats-server's CPU per append. `subj` fences with Nats-Expected-Last-Subject-Sequence (what a
 * shared WAL stream needs), `stream` with Nats-Expected-Last-Sequence (a stream per shard),
 * `plain` with nothing. On nats-server 2.9.10 here: subj 3.6 ms in the first round rising to 7-8 ms,
 * stream and plain ~1.5 ms throughout.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { startNatsServer } from "../../cluster/natsServer.ts";
import { cpuMsOf } from "../harness.ts";

const mode = process.argv[2] ?? "subj";
const rounds = Number(process.argv[3] ?? 10);
const size = Number(process.argv[4] ?? 540_000);
if (!["subj", "stream", "plain"].includes(mode)) throw new Error(`MODE must be subj, stream or plain, got ${mode}`);
const dir = mkdtempSync(join(tmpdir(), "walfence-"));
const nats = await startNatsServer({ storeDir: join(dir, "nats"), port: 0, maxPayloadBytes: 8 << 20, logFile: join(dir, "nats.log") });
try {
  const nc = await connect({ servers: nats.url });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "FENCE", subjects: ["fence.>"], storage: StorageType.File, max_msg_size: 8 << 20 });
  const body = new Uint8Array(size).map((_, i) => (i * 7) & 255);
  let last = 0;
  for (let r = 0; r < rounds; r++) {
    const c0 = cpuMsOf(nats.pid);
    const t = performance.now();
    for (let i = 0; i < 100; i++) {
      const expect = mode === "subj" ? { lastSubjectSequence: last } : mode === "stream" ? { lastSequence: last } : undefined;
      last = (await js.publish("fence.w", body, expect ? { expect } : {})).seq;
    }
    console.log(`${mode} round ${r}: ${((performance.now() - t) / 100).toFixed(2)} ms/append, nats-server CPU ${((cpuMsOf(nats.pid) - c0) / 100).toFixed(2)} ms/append`);
  }
  await nc.close();
} finally {
  await nats.stop();
  rmSync(dir, { recursive: true, force: true });
}
