import { describe, expect, it } from "vitest";
import { bruteForce, randomVectors, useCluster } from "../harness/cluster.ts";

// Every hop over NATS (no in-process shortcut), so internal msgpack messages are exercised too; and
// every byte over nats.js (no data wire: the fallback where a server needs TLS or nkeys), so that
// path stays covered while the other files run over the wire.
const cluster = useCluster(undefined, { localDelivery: false, dataWire: false });

describe("entities through the public API", () => {
  // Search over growing rows returns exactly the brute-force top-k for every metric, across 2 shards.
  it.each(["L2", "IP", "COSINE"] as const)("search matches brute force (%s)", async (metric) => {
    const { client, name } = cluster.get();
    const collectionName = name(metric);
    await client.collections.create({ collectionName, dimension: 16, metricType: metric, params: { shardsNum: 2 } });
    const vecs = randomVectors(600, 16, 7);
    const rows = vecs.map((v, i) => ({ id: BigInt(i), vector: v, tag: i % 3 }));
    for (let i = 0; i < rows.length; i += 200) await client.entities.insert({ collectionName, data: rows.slice(i, i + 200) });
    const queries = randomVectors(5, 16, 99);
    const res = await client.entities.search({ collectionName, data: queries, limit: 10, outputFields: ["tag"] });
    expect(res.topks).toEqual([10, 10, 10, 10, 10]);
    queries.forEach((q, qi) => {
      const got = res.data.slice(qi * 10, qi * 10 + 10);
      const want = bruteForce(rows.map((r) => ({ id: r.id, v: r.vector })), q, metric, 10);
      expect(got.map((r) => r.id)).toEqual(want.map((w) => w.id));
      got.forEach((r, i) => expect(r.distance).toBeCloseTo(want[i]!.d, 4));
      for (const r of got) expect(r.tag).toBe(Number(r.id as bigint) % 3);
    });
  });

  // A Strong search right after an acknowledged insert sees it; counts are exact after upsert and delete.
  it("read-after-write, upsert replaces, delete removes", async () => {
    const { client, name } = cluster.get();
    const collectionName = name();
    await client.collections.create({ collectionName, dimension: 4, metricType: "L2", params: { shardsNum: 3 } });
    for (let i = 0; i < 20; i++) {
      const v = new Float32Array([i, i, i, i]);
      await client.entities.insert({ collectionName, data: [{ id: i, vector: v }] });
      const r = await client.entities.search({ collectionName, data: [v], limit: 1, consistencyLevel: "Strong" });
      expect(r.data[0]!.id).toBe(BigInt(i));
    }
    await client.entities.upsert({ collectionName, data: [{ id: 5, vector: [100, 0, 0, 0], note: "replaced" }] });
    expect(await client.entities.count({ collectionName })).toBe(20);
    const got = await client.entities.get({ collectionName, id: [5], outputFields: ["note", "vector"] });
    expect(got).toEqual([{ id: 5n, note: "replaced", vector: new Float32Array([100, 0, 0, 0]) }]);
    const del = await client.entities.delete({ collectionName, filter: "id < 10 and id >= 2" });
    expect(del.deleteCount).toBe(8);
    expect(await client.entities.count({ collectionName })).toBe(12);
    const byIds = await client.entities.delete({ collectionName, ids: [15n, 16n, 999n] });
    expect(byIds.deleteCount).toBe(2);
    expect((await client.collections.getStats({ collectionName })).rowCount).toBe(10);
    const left = await client.entities.query({ collectionName, filter: "id >= 0", limit: 100 });
    expect(left.map((r) => r.id)).toEqual([0n, 1n, 10n, 11n, 12n, 13n, 14n, 17n, 18n, 19n]);
  });

  // Query pages through rows in primary-key order with limit/offset, across shards, and filters by partition.
  it("query pagination and partitions", async () => {
    const { client, name } = cluster.get();
    const collectionName = name();
    await client.collections.create({ collectionName, dimension: 2, params: { shardsNum: 2 } });
    await client.partitions.create({ collectionName, partitionName: "p1" });
    await client.entities.insert({ collectionName, data: Array.from({ length: 50 }, (_, i) => ({ id: i, vector: [1, i] })) });
    await client.entities.insert({ collectionName, partitionName: "p1", data: Array.from({ length: 10 }, (_, i) => ({ id: 100 + i, vector: [1, i] })) });
    const page = await client.entities.query({ collectionName, filter: "id >= 0", limit: 5, offset: 45 });
    expect(page.map((r) => r.id)).toEqual([45n, 46n, 47n, 48n, 49n]);
    const p1 = await client.entities.query({ collectionName, filter: "id >= 0", partitionNames: ["p1"], limit: 3 });
    expect(p1.map((r) => r.id)).toEqual([100n, 101n, 102n]);
    expect((await client.partitions.getStats({ collectionName, partitionName: "p1" })).rowCount).toBe(10);
    await client.partitions.drop({ collectionName, partitionName: "p1" });
    expect(await client.entities.count({ collectionName })).toBe(50);
  });

  // Duplicate keys are refused with 1806 and nothing of the batch is written, even across shards.
  it("primary keys are unique", async () => {
    const { client, name } = cluster.get();
    const collectionName = name();
    await client.collections.create({ collectionName, dimension: 2, params: { shardsNum: 4 } });
    await client.entities.insert({ collectionName, data: [{ id: 1, vector: [0, 1] }] });
    const batch = Array.from({ length: 40 }, (_, i) => ({ id: 10 + i, vector: [1, i] }));
    await expect(client.entities.insert({ collectionName, data: [...batch, { id: 1, vector: [0, 0] }] })).rejects.toMatchObject({ code: 1806 });
    await expect(client.entities.insert({ collectionName, data: [{ id: 7, vector: [0, 0] }, { id: 7, vector: [0, 0] }] })).rejects.toMatchObject({ code: 1806 });
    expect(await client.entities.count({ collectionName })).toBe(1);
    // Racing inserts of the same keys: exactly one wins.
    const racers = await Promise.allSettled(Array.from({ length: 5 }, () => client.entities.insert({ collectionName, data: batch })));
    expect(racers.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of racers) if (r.status === "rejected") expect(r.reason.code).toBe(1806);
    expect(await client.entities.count({ collectionName })).toBe(41);
  });

  // autoID collections allocate unique int64 ids beyond 2^53, returned exactly.
  it("autoID ids are unique and exact", async () => {
    const { client, name } = cluster.get();
    const collectionName = name();
    await client.collections.create({ collectionName, dimension: 2, autoID: true });
    const a = await client.entities.insert({ collectionName, data: Array.from({ length: 100 }, (_, i) => ({ vector: [i, 1] })) });
    const b = await client.entities.insert({ collectionName, data: Array.from({ length: 100 }, (_, i) => ({ vector: [i, 2] })) });
    const ids = [...a.insertIds, ...b.insertIds];
    expect(new Set(ids.map(String)).size).toBe(200);
    const got = await client.entities.get({ collectionName, id: [ids[150]!], outputFields: ["vector"] });
    expect(got[0]!.id).toBe(ids[150]);
  });
});

describe("grouping and hybrid search", () => {
  // groupingField returns the best hit of each group, as many groups as the limit asks, matching brute force.
  it("search with groupingField", async () => {
    const { client, name } = cluster.get();
    const collectionName = name();
    await client.collections.create({
      collectionName,
      schema: {
        fields: [
          { fieldName: "id", dataType: "Int64", isPrimary: true },
          { fieldName: "vector", dataType: "FloatVector", elementTypeParams: { dim: 8 } },
          { fieldName: "doc", dataType: "VarChar", elementTypeParams: { max_length: 16 } },
        ],
      },
      indexParams: [{ fieldName: "vector", metricType: "L2" }],
      params: { shardsNum: 2 },
    });
    const vecs = randomVectors(400, 8, 21);
    const rows = vecs.map((v, i) => ({ id: BigInt(i), vector: v, doc: `d${i % 7}` }));
    await client.entities.insert({ collectionName, data: rows });
    const q = randomVectors(1, 8, 5)[0]!;
    const r = await client.entities.search({ collectionName, data: [q], limit: 5, groupingField: "doc" } as never);
    const ranked = bruteForce(rows.map((x) => ({ id: x.id, v: x.vector })), q, "L2", 400);
    const want: bigint[] = [];
    const seen = new Set<string>();
    for (const x of ranked) {
      const doc = `d${Number(x.id) % 7}`;
      if (seen.has(doc)) continue;
      seen.add(doc);
      want.push(x.id as bigint);
      if (want.length === 5) break;
    }
    expect(r.data.map((x) => x.id)).toEqual(want);
    expect(new Set(r.data.map((x) => x.doc)).size).toBe(5);
  });

  // hybrid_search over two vector fields fuses the two rankings with RRF (exact here: both lists are exact).
  it("hybrid_search with RRF and weighted rerankers", async () => {
    const { client, name } = cluster.get();
    const collectionName = name();
    await client.collections.create({
      collectionName,
      schema: {
        fields: [
          { fieldName: "id", dataType: "Int64", isPrimary: true },
          { fieldName: "a", dataType: "FloatVector", elementTypeParams: { dim: 4 } },
          { fieldName: "b", dataType: "FloatVector", elementTypeParams: { dim: 4 } },
        ],
      },
      indexParams: [
        { fieldName: "a", metricType: "L2" },
        { fieldName: "b", metricType: "IP" },
      ],
    });
    const A = randomVectors(200, 4, 1);
    const B = randomVectors(200, 4, 2);
    await client.entities.insert({ collectionName, data: A.map((v, i) => ({ id: i, a: v, b: B[i] })) });
    const qa = randomVectors(1, 4, 3)[0]!;
    const qb = randomVectors(1, 4, 4)[0]!;
    const la = bruteForce(A.map((v, i) => ({ id: BigInt(i), v })), qa, "L2", 20);
    const lb = bruteForce(B.map((v, i) => ({ id: BigInt(i), v })), qb, "IP", 20);
    const score = new Map<bigint, number>();
    la.forEach((x, r) => score.set(x.id as bigint, (score.get(x.id as bigint) ?? 0) + 1 / (60 + r + 1)));
    lb.forEach((x, r) => score.set(x.id as bigint, (score.get(x.id as bigint) ?? 0) + 1 / (60 + r + 1)));
    const want = [...score.entries()].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1)).slice(0, 5).map((x) => x[0]);
    const r = await client.entities.hybridSearch({
      collectionName,
      search: [
        { data: [qa], annsField: "a", limit: 20 },
        { data: [qb], annsField: "b", limit: 20 },
      ],
      rerank: { strategy: "rrf", params: { k: 60 } },
      limit: 5,
    });
    expect(r.topks).toEqual([5]);
    expect(r.data.map((x) => x.id)).toEqual(want);
    const w = await client.call<Record<string, unknown>[]>("entities", "hybrid_search", {
      collectionName,
      search: [
        { data: [qa], annsField: "a", limit: 20 },
        { data: [qb], annsField: "b", limit: 20 },
      ],
      rerank: { strategy: "weighted", params: { weights: [1, 0] } },
      limit: 3,
    });
    expect(w.data.map((x) => x.id)).toEqual(la.slice(0, 3).map((x) => x.id));
    await expect(
      client.call("entities", "hybrid_search", { collectionName, search: [{ data: [qa], annsField: "a" }], rerank: { strategy: "weighted", params: { weights: [2] } } }),
    ).rejects.toMatchObject({ code: 1100 });
  });
});
