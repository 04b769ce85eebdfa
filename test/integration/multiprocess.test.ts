import { afterAll, describe, expect, it } from "vitest";
import { NatsvecClient } from "../../client/index.ts";
import { startNode, type RunningNode } from "../../cluster/node.ts";
import { spawnNatsvec, type NatsvecProcess } from "../harness/process.ts";
import { useNatsServer, waitFor } from "../harness/nats.ts";
import { testConfig } from "../harness/cluster.ts";

const nats = useNatsServer();
const procs: NatsvecProcess[] = [];
let node: RunningNode | undefined;
let client: NatsvecClient | undefined;
afterAll(async () => {
  await client?.close().catch(() => undefined);
  for (const p of procs) await p.stop().catch(() => undefined);
  await node?.stop().catch(() => undefined);
});

const streamingnode = (url: string) => {
  const p = spawnNatsvec(["run", "streamingnode", "--nats", url, "--lease-ttl-ms", "2000"]);
  procs.push(p);
  return p;
};

describe("roles in separate processes", () => {
  // proxy + rootcoord in this process, the streamingnode in another: the API works across processes,
  // and when that streamingnode is killed -9 a second one takes its shards over with every acknowledged row.
  it("streamingnode in its own process, then failover to another", async () => {
    const url = nats.get().url;
    node = await startNode(testConfig(url, { leaseTtlMs: 2_000 }), ["rootcoord", "proxy"]);
    const sn1 = streamingnode(url);
    await sn1.ready;
    client = await NatsvecClient.connect({ servers: url, timeoutMs: 20_000 });
    await client.collections.create({ collectionName: "mp", dimension: 3, metricType: "L2", params: { shardsNum: 2 } });
    const rows = Array.from({ length: 300 }, (_, i) => ({ id: i, vector: [i, 0, 1] }));
    await client.entities.insert({ collectionName: "mp", data: rows });
    const hit = await client.entities.search({ collectionName: "mp", data: [[42, 0, 1]], limit: 1 });
    expect(hit.data[0]!.id).toBe(42n);

    await sn1.kill9();
    const sn2 = streamingnode(url);
    await sn2.ready;
    // The new node claims the shards once the dead owner's leases expire; until then reads are retried.
    await waitFor(async () => (await client!.entities.count({ collectionName: "mp" }).catch(() => -1)) === 300, {
      timeoutMs: 20_000,
      what: "all 300 rows served by the second streamingnode",
    });
    await client.entities.insert({ collectionName: "mp", data: [{ id: 1000, vector: [1, 2, 3] }] });
    expect(await client.entities.count({ collectionName: "mp" })).toBe(301);
    await expect(client.entities.insert({ collectionName: "mp", data: [{ id: 7, vector: [1, 2, 3] }] })).rejects.toMatchObject({ code: 1806 });
  });
});
