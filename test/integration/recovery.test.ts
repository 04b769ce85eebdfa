import { afterAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NatsvecClient } from "../../client/index.ts";
import { freePort } from "../../cluster/natsServer.ts";
import { natsUrlOf, spawnNatsvec, type NatsvecProcess } from "../harness/process.ts";
import { useNatsServer, waitFor } from "../harness/nats.ts";
import { bruteForce, randomVectors, testConfig } from "../harness/cluster.ts";
import { startNode, type RunnableRole, type RunningNode } from "../../cluster/node.ts";
import { openNats } from "../../runtime/services.ts";
import { openStorage } from "../../runtime/storage.ts";

const dirs: string[] = [];
const procs: NatsvecProcess[] = [];
afterAll(async () => {
  for (const p of procs) await p.stop().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "natsvec-recovery-"));
  dirs.push(d);
  return d;
};
const start = (args: string[], env: Record<string, string> = {}) => {
  const p = spawnNatsvec(args, env);
  procs.push(p);
  return p;
};

/** Insert small batches until told to stop; returns the ids whose insert was acknowledged. */
const insertStream = (client: NatsvecClient, collectionName: string) => {
  const acked: bigint[] = [];
  let stopped = false;
  let next = 0n;
  const done = (async () => {
    while (!stopped) {
      const batch = Array.from({ length: 25 }, () => {
        const id = next++;
        return { id, vector: new Float32Array([Number(id % 97n), 1, 2, 3]) };
      });
      try {
        await client.entities.insert({ collectionName, data: batch });
        acked.push(...batch.map((r) => r.id));
      } catch {
        return; // the server died mid-request: this batch was not acknowledged
      }
    }
  })();
  return { acked, stop: () => ((stopped = true), done), done };
};

/** Every acknowledged id present exactly once; nothing else but unacknowledged in-flight ids. */
const checkExactlyOnce = async (client: NatsvecClient, collectionName: string, acked: bigint[]) => {
  const count = await client.entities.count({ collectionName });
  const rows: bigint[] = [];
  for (let offset = 0; ; offset += 16_000) {
    const page = await client.entities.query({ collectionName, filter: "id >= 0", limit: 16_000, offset: 0, outputFields: ["id"], ...(offset ? { filter: `id > ${rows[rows.length - 1]}` } : {}) });
    rows.push(...page.map((r) => r.id as bigint));
    if (page.length < 16_000) break;
  }
  expect(new Set(rows).size).toBe(rows.length);
  expect(rows.length).toBe(count);
  const present = new Set(rows);
  const missing = acked.filter((id) => !present.has(id));
  expect(missing).toEqual([]);
  // At most the one batch in flight at the kill may be present without an ack.
  expect(count - acked.length).toBeGreaterThanOrEqual(0);
  expect(count - acked.length).toBeLessThanOrEqual(25);
};

describe("crash recovery", () => {
  // kill -9 of the standalone process and of its embedded nats-server under a stream of inserts:
  // after a restart on the same data dir, every acknowledged row is present exactly once.
  it("standalone kill -9 under inserts loses no acknowledged write", async () => {
    const data = tempDir();
    const port = await freePort();
    const args = ["standalone", "--data", data, "--nats-port", String(port)];
    const first = start(args);
    const url = natsUrlOf(await first.ready);
    const client = await NatsvecClient.connect({ servers: url, timeoutMs: 5_000 });
    await client.collections.create({ collectionName: "crash", dimension: 4, metricType: "L2", params: { shardsNum: 2 } });
    const stream = insertStream(client, "crash");
    await waitFor(() => stream.acked.length >= 2_000, { timeoutMs: 30_000, what: "2000 acknowledged rows" });
    const serverPid = Number(readFileSync(join(data, "nats-server.pid"), "utf8"));
    await first.kill9();
    process.kill(serverPid, "SIGKILL");
    await stream.done;
    await client.close().catch(() => undefined);
    const acked = [...stream.acked];

    const second = start(args);
    await second.ready;
    const again = await NatsvecClient.connect({ servers: url, timeoutMs: 20_000 });
    try {
      await checkExactlyOnce(again, "crash", acked);
      // And the collection takes writes again after the restart.
      await again.entities.insert({ collectionName: "crash", data: [{ id: 10_000_000n, vector: [1, 1, 1, 1] }] });
      expect((await again.entities.get({ collectionName: "crash", id: 10_000_000n })).length).toBe(1);
    } finally {
      await again.close();
    }
  });

  // SIGTERM stops the standalone cleanly: exit code 0, and its embedded nats-server is gone too.
  it("stops gracefully on SIGTERM", async () => {
    const data = tempDir();
    const p = start(["standalone", "--data", data, "--nats-port", "0"]);
    await p.ready;
    const serverPid = Number(readFileSync(join(data, "nats-server.pid"), "utf8"));
    expect(existsSync(`/proc/${serverPid}`)).toBe(true);
    const code = new Promise<number | null>((r) => p.proc.once("exit", (c) => r(c)));
    process.kill(p.proc.pid!, "SIGTERM");
    expect(await code).toBe(0);
    await waitFor(() => !existsSync(`/proc/${serverPid}`) || readFileSync(`/proc/${serverPid}/stat`, "utf8").includes(") Z "), {
      timeoutMs: 10_000,
      what: "embedded nats-server to exit",
    });
  });

  describe("with an external NATS server", () => {
    const nats = useNatsServer();
    // kill -9 of only the natsvec process (NATS keeps running): restart recovers from the WAL, exactly once.
    it("natsvec kill -9, NATS up: restart recovers every acknowledged row", async () => {
      const url = nats.get().url;
      const data = tempDir();
      const args = ["standalone", "--data", data, "--nats", url];
      const first = start(args);
      await first.ready;
      const client = await NatsvecClient.connect({ servers: url, timeoutMs: 5_000 });
      await client.collections.create({ collectionName: "crash2", dimension: 4, metricType: "L2" });
      const stream = insertStream(client, "crash2");
      await waitFor(() => stream.acked.length >= 1_000, { timeoutMs: 30_000, what: "1000 acknowledged rows" });
      await first.kill9();
      await stream.done;
      const acked = [...stream.acked];
      const second = start(args); // same data dir => same node id => takes its shard leases back at once
      await second.ready;
      const again = await NatsvecClient.connect({ servers: url, timeoutMs: 20_000 });
      try {
        await checkExactlyOnce(again, "crash2", acked);
      } finally {
        await again.close();
        await client.close().catch(() => undefined);
      }
    });

    // nats-server restarts under a stream of inserts: natsvec's connections (nats.js and the data
    // wire that carries inserts and WAL appends) reconnect, inserts are acknowledged again, and
    // every acknowledged row is there exactly once.
    it("NATS restart under inserts: natsvec serves again, every acknowledged row once", async () => {
      const n = nats.get();
      const data = tempDir();
      // Its own subject root: the deployment of the test above still runs on this server.
      const proc = start(["standalone", "--data", data, "--nats", n.url, "--root", "natsrestart"]);
      await proc.ready;
      const client = await NatsvecClient.connect({ servers: n.url, timeoutMs: 5_000, root: "natsrestart" });
      try {
        await client.collections.create({ collectionName: "natsrestart", dimension: 4, metricType: "L2" });
        const before = insertStream(client, "natsrestart");
        await waitFor(() => before.acked.length >= 500, { timeoutMs: 30_000, what: "500 acknowledged rows" });
        await n.restart();
        await before.stop();
        // Ids continue above the first stream's (it may have had a batch in flight).
        const offset = BigInt(before.acked.length + 25);
        const after: bigint[] = [];
        await waitFor(
          async () => {
            const batch = Array.from({ length: 25 }, (_, i) => ({ id: offset + BigInt(after.length + i), vector: new Float32Array([1, 2, 3, 4]) }));
            await client.entities.insert({ collectionName: "natsrestart", data: batch });
            after.push(...batch.map((r) => r.id));
            return after.length >= 100;
          },
          { timeoutMs: 60_000, intervalMs: 250, what: "inserts acknowledged after the NATS restart" },
        );
        await checkExactlyOnce(client, "natsrestart", [...before.acked, ...after]);
        expect(proc.proc.exitCode).toBeNull(); // still the same process
      } finally {
        await client.close().catch(() => undefined);
      }
    });
  });
});

describe("crash recovery with sealed segments", () => {
  // kill -9 while segments are being flushed and indexed: after restart every acknowledged row is
  // present exactly once (some in flushed segments on query nodes, the rest replayed from the WAL
  // tail after the checkpoint), and the restart replays only that tail.
  it("kill -9 during flush and index build loses and duplicates nothing", async () => {
    const data = tempDir();
    const port = await freePort();
    const args = ["standalone", "--data", data, "--nats-port", String(port), "--segment-max-rows", "600", "--segment-idle-ms", "300"];
    const first = start(args);
    const url = natsUrlOf(await first.ready);
    const client = await NatsvecClient.connect({ servers: url, timeoutMs: 5_000 });
    await client.collections.create({ collectionName: "sealed", dimension: 4, metricType: "L2", params: { shardsNum: 2 } });
    const stream = insertStream(client, "sealed");
    await waitFor(() => stream.acked.length >= 3_000, { timeoutMs: 60_000, what: "3000 acknowledged rows" });
    const serverPid = Number(readFileSync(join(data, "nats-server.pid"), "utf8"));
    await first.kill9();
    process.kill(serverPid, "SIGKILL");
    await stream.done;
    await client.close().catch(() => undefined);
    const acked = [...stream.acked];

    const second = start(args, { NATSVEC_LOG: "info" });
    await second.ready;
    const again = await NatsvecClient.connect({ servers: url, timeoutMs: 30_000 });
    try {
      await waitFor(async () => (await again.entities.count({ collectionName: "sealed" }).catch(() => -1)) >= acked.length, {
        timeoutMs: 90_000,
        what: "restarted natsvec serving every acknowledged row",
      });
      await checkExactlyOnce(again, "sealed", acked);
      const log = second.output();
      // Recovery replayed a tail, not the whole WAL: at least one shard started from a checkpoint.
      expect(log).toMatch(/checkpoint [1-9]\d*/);
    } finally {
      await again.close();
    }
  }, 180_000);
});

describe("crash recovery with flushes queued before the crash", () => {
  const nats = useNatsServer();
  const nodes: RunningNode[] = [];
  afterAll(async () => {
    for (const n of nodes) await n.stop().catch(() => undefined);
  });
  const inProcess = async (roles: RunnableRole[]) => {
    const n = await startNode(testConfig(nats.get().url, { segmentMaxRows: 500 }), roles);
    nodes.push(n);
    return n;
  };
  const streamingnode = (url: string) =>
    start(["run", "streamingnode", "--nats", url, "--node-id", "sn-queued", "--segment-max-rows", "500", "--lease-ttl-ms", String(testConfig(url).leaseTtlMs)], { NATSVEC_LOG: "info" });

  // A shard sealed five segments but only the flush of the first was queued (one flush in flight per
  // shard) when its streamingnode was killed -9. The restarted shard queues the flush of everything
  // sealed since the checkpoint, a range that overlaps the queued one. collections/flush, called while
  // the task from before the crash is still pending, replies once a datanode runs, and every row is
  // counted once and indexed. (No datanode runs until then, so the crash always leaves the flushes queued.)
  it("flush after restart replies while a flush queued before the crash is pending", async () => {
    const url = nats.get().url;
    await inProcess(["rootcoord", "proxy", "datacoord", "querycoord", "querynode", "indexnode"]);
    const first = streamingnode(url);
    await first.ready;
    const client = await NatsvecClient.connect({ servers: url, timeoutMs: 20_000 });
    try {
      const collectionName = "queued";
      await client.collections.create({ collectionName, dimension: 8, metricType: "L2" });
      const vecs = randomVectors(2_750, 8, 5);
      const rows = vecs.map((v, i) => ({ id: BigInt(i), vector: v }));
      // 100 rows per write: a seal after every fifth write, the last 100 rows still growing.
      for (let i = 0; i < 2_600; i += 100) await client.entities.insert({ collectionName, data: rows.slice(i, i + 100) });
      await waitFor(() => first.output().match(/sealed 1 segments \(500 rows, rows\)/g)?.length === 5, { what: "five seals" });
      await first.kill9();

      const second = streamingnode(url); // same node id: takes its shard lease back at once
      await second.ready;
      for (let i = 2_600; i < 2_750; i += 50) await client.entities.insert({ collectionName, data: rows.slice(i, i + 50) });
      const flushed = client.call("collections", "flush", { collectionName }, { timeoutMs: 30_000 });
      flushed.catch(() => undefined);
      await waitFor(() => /sealed 1 segments \(250 rows, requested\)/.test(second.output()), { timeoutMs: 10_000, what: "the flush to seal the growing rows" });

      await inProcess(["datanode"]);
      const started = Date.now();
      await flushed;
      expect(Date.now() - started).toBeLessThan(20_000);
      // The shard was recovered once: a second recovery would queue from the new checkpoint and hide the bug.
      expect(second.output()).not.toMatch(/lost shard/);
      expect(await client.entities.count({ collectionName })).toBe(2_750);
      const indexName = ((await client.collections.describe({ collectionName })).indexes as { indexName: string }[])[0]!.indexName;
      const index = await waitFor(
        async () => {
          const d = (await client.call<{ indexedRows: number; pendingRows: number }[]>("indexes", "describe", { collectionName, indexName })).data[0]!;
          return d.indexedRows === 2_750 && d.pendingRows === 0 ? d : undefined;
        },
        { timeoutMs: 60_000, what: "every row indexed" },
      );
      expect(index.indexedRows).toBe(2_750);
      // No flush task is left behind retrying forever: the task queue drains.
      const h = await openNats(testConfig(url), "test");
      try {
        const tasksStream = (await openStorage(h, testConfig(url))).tasksStream;
        await waitFor(async () => (await h.jsm.streams.info(tasksStream)).state.messages === 0, { timeoutMs: 20_000, what: "the task queue to drain" });
      } finally {
        await h.nc.close();
      }
      const q = vecs[1_234]!;
      const hits = await client.entities.search({ collectionName, data: [q], limit: 5 });
      expect(hits.data.map((h) => h.id)).toEqual(bruteForce(rows.map((r) => ({ id: r.id, v: r.vector })), q, "L2", 5).map((h) => h.id));
    } finally {
      await client.close();
    }
  }, 120_000);
});
