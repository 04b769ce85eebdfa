/**
 * Repro (product bug, found by the bench): JetStreamWal.read (runtime/wal.ts) silently skips
 * entries when WAL entries are large, and returns as if the range were complete.
 *
 *   npx tsx bench/repro/wal-read-large-entries.ts [ENTRIES=100] [ENTRY_BYTES=5400000]
 *
 * It starts its own nats-server (max_payload 8 MiB, as the bench does), appends ENTRIES entries
 * of ENTRY_BYTES to one subject with the product's JetStreamWal, reads them back with
 * JetStreamWal.read(subject, 1, last) and counts what was delivered. A pull of
 * WAL_FETCH_MESSAGES (32) entries of > 2 MiB is over nats-server's 64 MiB per-connection
 * max_pending: the server drops messages as a slow consumer (AckPolicy.None: never redelivered),
 * and read() neither notices the gap nor fails. The datanode's flush rebuilds sealed segments
 * with read(), then moves the checkpoint: the skipped rows are gone (acknowledged writes lost).
 * Entries that large come from group commits / inserts of > 2 MiB, possible whenever the
 * server's max_payload is above ~2 MiB. (Before 2984f01 the pull was 256 entries, and 1000-row
 * batches of 128-d vectors, ~0.5 MiB each, lost 713k of 1M rows in the bench's `full`.)
 *
 * Exits 1 when entries are missing.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { startNatsServer } from "../../cluster/natsServer.ts";
import { JetStreamWal } from "../../runtime/wal.ts";

const main = async () => {
  const entries = Number(process.argv[2] ?? 100);
  const size = Number(process.argv[3] ?? 5_400_000);
  const dir = mkdtempSync(join(tmpdir(), "walgap-"));
  const nats = await startNatsServer({ storeDir: join(dir, "nats"), port: 0, maxPayloadBytes: 8 << 20, logFile: join(dir, "nats.log") });
  let missing: number[] = [];
  try {
    const nc = await connect({ servers: nats.url });
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const wal = new JetStreamWal(
      js,
      jsm,
      (subject) => (subject === "wal.1.0" ? "WALTEST" : undefined),
      async (name, subject) => void (await jsm.streams.add({ name, subjects: [subject], storage: StorageType.File, max_msg_size: 8 << 20 })),
    );
    await wal.open("wal.1.0");
    const body = new Uint8Array(size).fill(7);
    let last = 0;
    for (let i = 0; i < entries; i++) last = await wal.append("wal.1.0", body, last);
    const seen = new Set<number>();
    const t = performance.now();
    await wal.read("wal.1.0", 1, last, (seq) => void seen.add(seq));
    for (let s = 1; s <= last; s++) if (!seen.has(s)) missing.push(s);
    console.log(
      `appended ${entries} entries of ${(size / 2 ** 20).toFixed(1)} MiB (seq 1..${last}); read(1, ${last}) delivered ${seen.size} in ${((performance.now() - t) / 1000).toFixed(1)} s and returned without error; missing ${missing.length}${missing.length ? ` (first: ${missing.slice(0, 10).join(", ")})` : ""}`,
    );
    await nc.close();
  } finally {
    await nats.stop();
    const slow = readFileSync(join(dir, "nats.log"), "utf8")
      .split("\n")
      .filter((l) => /slow consumer/i.test(l));
    console.log(`nats-server log: ${slow.length} "Slow Consumer Detected" line(s)${slow[0] ? `, e.g. ${slow[0].slice(slow[0].indexOf("Slow"))}` : ""}`);
    rmSync(dir, { recursive: true, force: true });
  }
  if (missing.length > 0) process.exitCode = 1;
};

void main();
