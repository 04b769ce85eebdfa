import { describe, expect, it } from "vitest";
import { bruteForce, randomVectors, useCluster } from "../harness/cluster.ts";
import { waitFor } from "../harness/nats.ts";
import { metaKeys } from "../../schemas/names.ts";
import type { SegmentRecord, ShardCheckpoint } from "../../schemas/segment.ts";
import { defaultConfig, openNats } from "../../runtime/services.ts";
import { openStorage } from "../../runtime/storage.ts";

// Small segments so a few thousand rows go through seal → flush → index.
const cluster = useCluster(undefined, { segmentMaxRows: 1_000, segmentIdleMs: 500 });

const segmentsOf = async (url: string, collectionId: number) => {
  const h = await openNats(defaultConfig({ natsUrl: url }), "test");
  try {
    const storage = await openStorage(h, defaultConfig({ natsUrl: url }));
    const out: SegmentRecord[] = [];
    for (const k of await storage.meta.keys(metaKeys.segmentsOf(collectionId))) {
      const r = await storage.meta.get<SegmentRecord>(k);
      if (r) out.push(r.value);
    }
    const ckpt = (await storage.meta.get<ShardCheckpoint>(metaKeys.checkpoint(collectionId, 0)))?.value;
    return { segments: out, checkpoint: ckpt?.seq ?? 0 };
  } finally {
    await h.nc.close();
  }
};

describe("sealed segment lifecycle", () => {
  // Rows past the seal threshold are sealed, flushed to the Object Store and indexed (HNSW via AUTOINDEX),
  // while every search keeps returning each row exactly once and matching brute force.
  it("seals, flushes and indexes while searches stay exact", async () => {
    const { client, name, nats } = cluster.get();
    const collectionName = name();
    await client.collections.create({ collectionName, dimension: 8, metricType: "L2" });
    const id = (await client.collections.describe({ collectionName })).collectionID as number;
    const vecs = randomVectors(3_500, 8, 3);
    const rows = vecs.map((v, i) => ({ id: BigInt(i), vector: v }));
    for (let i = 0; i < rows.length; i += 500) await client.entities.insert({ collectionName, data: rows.slice(i, i + 500) });
    const q = randomVectors(3, 8, 77);
    const check = async () => {
      const r = await client.entities.search({ collectionName, data: q, limit: 10 });
      q.forEach((qv, i) => {
        const got = r.data.slice(i * 10, i * 10 + 10).map((x) => x.id);
        expect(new Set(got).size).toBe(10);
        expect(got).toEqual(bruteForce(rows.map((x) => ({ id: x.id, v: x.vector })), qv, "L2", 10).map((x) => x.id));
      });
      expect(await client.entities.count({ collectionName })).toBe(3_500);
    };
    await check();
    const st = await waitFor(
      async () => {
        const s = await segmentsOf(nats.url, id);
        const rowsFlushed = s.segments.filter((x) => x.walTo <= s.checkpoint && x.state !== "Dropped").reduce((n, x) => n + x.rowCount, 0);
        return rowsFlushed === 3_500 && s.segments.every((x) => x.state === "Indexed") ? s : undefined;
      },
      { timeoutMs: 30_000, what: "all rows flushed and indexed" },
    );
    expect(st.segments.length).toBeGreaterThanOrEqual(3);
    for (const s of st.segments) expect(s.indexes.vector?.indexType).toBe("AUTOINDEX");
    await check();
    // Deletes and upserts of flushed rows are seen at once.
    await client.entities.delete({ collectionName, ids: [0n, 1n, 2n] });
    await client.entities.upsert({ collectionName, data: [{ id: 10n, vector: [9, 9, 9, 9, 9, 9, 9, 9] }] });
    expect(await client.entities.count({ collectionName })).toBe(3_497);
    const top = await client.entities.search({ collectionName, data: [new Float32Array(8).fill(9)], limit: 1 });
    expect(top.data[0]!.id).toBe(10n);
    await expect(client.entities.insert({ collectionName, data: [{ id: 5n, vector: vecs[5]! }] })).rejects.toMatchObject({ code: 1806 });
    await client.entities.insert({ collectionName, data: [{ id: 1n, vector: vecs[1]! }] });
    expect(await client.entities.count({ collectionName })).toBe(3_498);
  });

  // collections/flush seals and waits: afterwards every row is in a flushed segment.
  it("flush on request", async () => {
    const { client, name, nats } = cluster.get();
    const collectionName = name();
    await client.collections.create({ collectionName, dimension: 4, metricType: "IP" });
    const id = (await client.collections.describe({ collectionName })).collectionID as number;
    await client.entities.insert({ collectionName, data: randomVectors(123, 4, 9).map((v, i) => ({ id: i, vector: v })) });
    await client.call("collections", "flush", { collectionName });
    const s = await segmentsOf(nats.url, id);
    expect(s.segments.filter((x) => x.walTo <= s.checkpoint && x.state !== "Dropped").reduce((n, x) => n + x.rowCount, 0)).toBe(123);
    expect(await client.entities.count({ collectionName })).toBe(123);
  });
});

describe("handoff", () => {
  // While rows stream in and segments seal, flush, index and move to query nodes, a search loop
  // runs without pause: every result has no duplicate key and equals brute force over the rows
  // acknowledged before it started (rows acknowledged during it may or may not appear).
  it("every row exactly once before, during and after handoff", async () => {
    const { client, name, nats } = cluster.get();
    const collectionName = name();
    await client.collections.create({ collectionName, dimension: 8, metricType: "L2" });
    const id = (await client.collections.describe({ collectionName })).collectionID as number;
    const vecs = randomVectors(4_000, 8, 11);
    const acked: { id: bigint; v: Float32Array }[] = [];
    let writing = true;
    const writer = (async () => {
      for (let i = 0; i < vecs.length; i += 250) {
        const batch = vecs.slice(i, i + 250).map((v, j) => ({ id: BigInt(i + j), vector: v }));
        await client.entities.insert({ collectionName, data: batch });
        acked.push(...batch.map((r) => ({ id: r.id, v: r.vector })));
      }
      writing = false;
    })();
    const q = randomVectors(1, 8, 99)[0]!;
    let searches = 0;
    const checkOnce = async () => {
      const before = acked.length;
      const r = await client.entities.search({ collectionName, data: [q], limit: 20 });
      const after = acked.length;
      const ids = r.data.map((x) => x.id as bigint);
      expect(new Set(ids).size).toBe(ids.length);
      // The result is exact over some prefix of the acknowledged rows between `before` and `after`.
      const okFor = (n: number) => {
        const want = bruteForce(acked.slice(0, n), q, "L2", 20).map((x) => x.id);
        return want.length === ids.length && want.every((w, i) => w === ids[i]);
      };
      let ok = false;
      for (let n = before; n <= after && !ok; n += 250) ok = okFor(n);
      if (!ok) ok = okFor(after);
      expect(ok).toBe(true);
      searches++;
    };
    while (writing) await checkOnce();
    await writer;
    // Keep searching until every row is on a query node and the shard holds no sealed segment.
    await waitFor(
      async () => {
        await checkOnce();
        const s = await segmentsOf(nats.url, id);
        const flushed = s.segments.filter((x) => x.walTo <= s.checkpoint && x.state !== "Dropped").reduce((n, x) => n + x.rowCount, 0);
        if (flushed !== 4_000) return false;
        const view = await client.call<Record<string, unknown>>("collections", "get_load_state", { collectionName });
        return view.data.loadState === "LoadStateLoaded" && view.data.loadProgress === 100;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: "all rows flushed, indexed and served by query nodes" },
    );
    for (let i = 0; i < 5; i++) await checkOnce();
    expect(searches).toBeGreaterThan(10);
    expect(await client.entities.count({ collectionName })).toBe(4_000);
  });
});

describe("indexes API (typed client)", () => {
  // indexes/create on a collection that has sealed rows and no index builds it for every sealed
  // segment (describe counts them), list names it, searches with `ef` match brute force, drop
  // removes it (describe then answers 700), and the data stays searchable exactly.
  it("creates, describes, lists and drops an index", async () => {
    const { client, name } = cluster.get();
    const collectionName = name();
    await client.collections.create({
      collectionName,
      schema: {
        fields: [
          { fieldName: "id", dataType: "Int64", isPrimary: true },
          { fieldName: "v", dataType: "FloatVector", elementTypeParams: { dim: 8 } },
        ],
      },
    });
    const vecs = randomVectors(2_500, 8, 21);
    const rows = vecs.map((v, i) => ({ id: BigInt(i), vector: v }));
    for (let i = 0; i < rows.length; i += 500) await client.entities.insert({ collectionName, data: rows.slice(i, i + 500).map((r) => ({ id: r.id, v: r.vector })) });
    await client.collections.flush({ collectionName });
    expect(await client.indexes.list({ collectionName })).toEqual([]);
    await client.indexes.create({ collectionName, indexParams: [{ fieldName: "v", indexName: "v_hnsw", indexType: "HNSW", metricType: "L2", params: { M: 8, efConstruction: 64 } }] });
    expect(await client.indexes.list({ collectionName })).toEqual(["v_hnsw"]);
    const d = await waitFor(
      async () => {
        const x = await client.indexes.describe({ collectionName, indexName: "v_hnsw" });
        return x.totalRows === 2_500 && x.pendingRows === 0 ? x : undefined;
      },
      { timeoutMs: 60_000, what: "index v_hnsw built on every sealed segment" },
    );
    expect(d).toMatchObject({ indexName: "v_hnsw", fieldName: "v", indexType: "HNSW", metricType: "L2", indexedRows: 2_500, indexState: "Finished" });
    const q = randomVectors(3, 8, 22);
    const exact = async () => {
      const r = await client.entities.search({ collectionName, data: q, limit: 5, searchParams: { metricType: "L2", params: { ef: 200 } } });
      q.forEach((qv, i) =>
        expect(r.data.slice(i * 5, i * 5 + 5).map((x) => x.id)).toEqual(bruteForce(rows.map((x) => ({ id: x.id, v: x.vector })), qv, "L2", 5).map((x) => x.id)),
      );
    };
    await exact();
    await client.indexes.drop({ collectionName, indexName: "v_hnsw" });
    expect(await client.indexes.list({ collectionName })).toEqual([]);
    await expect(client.indexes.describe({ collectionName, indexName: "v_hnsw" })).rejects.toMatchObject({ code: 700 });
    await exact();
    // Without an index the default metric is COSINE: the segments' dropped L2 graphs must not
    // answer it (they did, with a metric mismatch error); the answer is an exact COSINE search.
    const exactCosine = async (params?: Record<string, number>) => {
      const r = await client.entities.search({ collectionName, data: q, limit: 5, ...(params ? { searchParams: { params } } : {}) });
      q.forEach((qv, i) =>
        expect(r.data.slice(i * 5, i * 5 + 5).map((x) => x.id)).toEqual(bruteForce(rows.map((x) => ({ id: x.id, v: x.vector })), qv, "COSINE", 5).map((x) => x.id)),
      );
    };
    await exactCosine();
    // Created again under the same name with another metric: every segment is rebuilt (not kept
    // as built because the name and type match), and the query nodes swap the new graphs in.
    await client.indexes.create({ collectionName, indexParams: [{ fieldName: "v", indexName: "v_hnsw", indexType: "HNSW", metricType: "COSINE", params: { M: 8, efConstruction: 64 } }] });
    const id = (await client.collections.describe({ collectionName })).collectionID as number;
    await waitFor(
      async () => {
        const x = await client.indexes.describe({ collectionName, indexName: "v_hnsw" });
        const { segments } = await segmentsOf(cluster.get().nats.url, id);
        const live = segments.filter((s) => s.state !== "Dropped");
        const rebuilt = live.length > 0 && live.every((s) => s.indexes.v?.metricType === "COSINE");
        return rebuilt && x.metricType === "COSINE" && x.indexedRows === 2_500 && x.pendingRows === 0 ? x : undefined;
      },
      { timeoutMs: 60_000, what: "index v_hnsw rebuilt with COSINE on every sealed segment" },
    );
    await exactCosine({ ef: 200 });
  }, 120_000);
});

describe("compaction", () => {
  // Small segments merge and deleted rows are purged, while searches, counts and gets stay
  // identical before, during and after; deletes made during compaction still apply to the result.
  it("compaction keeps results identical", async () => {
    const { client, name, nats } = cluster.get();
    const collectionName = name();
    await client.collections.create({ collectionName, dimension: 8, metricType: "L2" });
    const id = (await client.collections.describe({ collectionName })).collectionID as number;
    const vecs = randomVectors(1_200, 8, 5);
    // Several small segments: flush after each batch.
    for (let i = 0; i < vecs.length; i += 300) {
      if (process.env.DBG) console.log(new Date().toISOString(), "insert", i);
      await client.entities.insert({ collectionName, data: vecs.slice(i, i + 300).map((v, j) => ({ id: BigInt(i + j), vector: v })) });
      if (process.env.DBG) console.log(new Date().toISOString(), "flush", i);
      await client.call("collections", "flush", { collectionName });
    }
    if (process.env.DBG) console.log(new Date().toISOString(), "flushed all");
    await client.entities.delete({ collectionName, filter: "id < 100" });
    await client.call("collections", "flush", { collectionName });
    const live = vecs.map((v, i) => ({ id: BigInt(i), v })).filter((x) => x.id >= 100n);
    const queries = randomVectors(4, 8, 8);
    const check = async () => {
      const r = await client.entities.search({ collectionName, data: queries, limit: 10 });
      queries.forEach((q, i) => expect(r.data.slice(i * 10, i * 10 + 10).map((x) => x.id)).toEqual(bruteForce(live, q, "L2", 10).map((x) => x.id)));
      expect(await client.entities.count({ collectionName })).toBe(live.length);
    };
    await check();
    const before = await segmentsOf(nats.url, id);
    expect(before.segments.filter((s) => s.state !== "Dropped").length).toBeGreaterThanOrEqual(4);
    await client.call("collections", "compact", { collectionName });
    const stop = Date.now() + 60_000;
    let merged = false;
    while (Date.now() < stop && !merged) {
      await check();
      const s = await segmentsOf(nats.url, id);
      const alive = s.segments.filter((x) => x.state !== "Dropped");
      merged = alive.some((x) => x.compactedFrom?.length) && alive.length < before.segments.length;
      // The result and its sources are both alive until the result serves: rows are counted once.
      const d = (await client.call<{ totalRows: number }[]>("indexes", "describe", { collectionName, indexName: "vector" })).data[0]!;
      expect(d.totalRows).toBeLessThanOrEqual(vecs.length);
    }
    expect(merged).toBe(true);
    // A delete after compaction started still hides the row once the result serves.
    await client.entities.delete({ collectionName, ids: [500n] });
    const live2 = live.filter((x) => x.id !== 500n);
    await waitFor(
      async () => {
        const s = await segmentsOf(nats.url, id);
        const alive = s.segments.filter((x) => x.state !== "Dropped");
        return alive.every((x) => x.state === "Indexed") && alive.length < before.segments.length ? true : undefined;
      },
      { timeoutMs: 60_000, what: "the compaction result indexed" },
    );
    for (let i = 0; i < 10; i++) {
      const r = await client.entities.search({ collectionName, data: queries, limit: 10 });
      queries.forEach((q, k) => expect(r.data.slice(k * 10, k * 10 + 10).map((x) => x.id)).toEqual(bruteForce(live2, q, "L2", 10).map((x) => x.id)));
      expect(await client.entities.count({ collectionName })).toBe(live2.length);
      expect(await client.entities.get({ collectionName, id: [500n, 501n] })).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 120_000);
});
