/**
 * querycoord + querynode against a real nats-server: sealed segments written
 * by hand (engine/binlog objects in the Object Store, records in the meta KV)
 * get assigned, loaded and served; search matches brute force; WAL deletes
 * hide rows; a corrupt binlog is refused; an indexed vector field is served
 * from its index without reading its binlog, and vector outputs are exact;
 * a dead node's segments move.
 *
 * Scaffolding: no streaming node runs here. A tiny responder on the shard's
 * real `position` subject answers like the shard owner would (the shard's last
 * WAL sequence), so the query node's consistency wait runs for real.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CollectionSchema } from "../../schemas/collection.ts";
import { CollectionId, PartitionId } from "../../schemas/ids.ts";
import type { CollectionPointer, CollectionRecord } from "../../schemas/meta.ts";
import { metaKeys, objectNames } from "../../schemas/names.ts";
import type { LoadRecord, SegmentRecord, ServingView, ShardCheckpoint } from "../../schemas/segment.ts";
import { encodeSegment } from "../../engine/binlog.ts";
import type { RowBatch } from "../../engine/columns.ts";
import { buildIndex, loadIndex } from "../../engine/index/index.ts";
import { distance, type Metric } from "../../engine/search.ts";
import { fld, makeSchema, rng } from "../../engine/testkit.ts";
import { ObjectStoreBlobs, type BlobStore } from "../../runtime/blob.ts";
import { RequestClient } from "../../runtime/client.ts";
import { packMsgpack } from "../../runtime/codec.ts";
import { serveEndpoints, type ServedEndpoints } from "../../runtime/host.ts";
import { registerNode } from "../../runtime/registry.ts";
import { defaultConfig, openNats, type NatsHandles, type NatsvecConfig } from "../../runtime/services.ts";
import { openStorage, type Storage } from "../../runtime/storage.ts";
import { useNatsServer, waitFor } from "../../test/harness/nats.ts";
import { startQuerycoord, QUERYCOORD_VERBS, type LoadStateReply, type QuerycoordHandle } from "../querycoord/index.ts";
import { SHARD_VERBS, type Pk, type WalEntry } from "../streamingnode/protocol.ts";
import { startQueryNode, QUERYNODE_VERBS, type QnQueryReply, type QnSearchReply, type QnStatsReply, type QueryNodeHandle } from "./index.ts";

const C = 7;
const PART = 70;
const DIM = 8;
const ROWS = 200;
const schema: CollectionSchema = makeSchema([fld("id", "Int64", { isPrimary: true }), fld("vec", "FloatVector", { dim: DIM }), fld("tag", "Int32")]);

interface Rows {
  segmentId: number;
  pks: bigint[];
  vecs: Float32Array;
  tags: number[];
}

const makeRows = (segmentId: number, seed: number): Rows => {
  const r = rng(seed);
  const vecs = new Float32Array(ROWS * DIM);
  for (let i = 0; i < vecs.length; i++) vecs[i] = Math.fround(r() * 2 - 1);
  return { segmentId, pks: Array.from({ length: ROWS }, (_, i) => BigInt(segmentId * 1000 + i)), vecs, tags: Array.from({ length: ROWS }, (_, i) => i % 10) };
};

const batchOf = (rows: Rows): RowBatch => ({
  rowCount: ROWS,
  columns: {
    id: { kind: "int64", data: BigInt64Array.from(rows.pks) },
    vec: { kind: "vector", dim: DIM, data: rows.vecs },
    tag: { kind: "number", type: "Int32", data: Int32Array.from(rows.tags) },
  },
});

describe("querycoord + querynode", () => {
  const nats = useNatsServer();
  let h: NatsHandles;
  let storage: Storage;
  let config: NatsvecConfig;
  let client: RequestClient;
  let coord: QuerycoordHandle;
  let qn1: QueryNodeHandle;
  let qn2: QueryNodeHandle | undefined;
  let reg1: { stop(): Promise<void> };
  let reg2: { stop(): Promise<void> } | undefined;
  let positionResponder: ServedEndpoints;
  const walSubject = () => h.names.wal(C, 0);
  /** Rows live in the sealed segments (deleted ones removed as the test deletes them). */
  const live = new Map<number, Rows>();
  const deleted = new Set<bigint>();

  /** Every object name qn1 reads from the segments store. */
  const qn1Reads: string[] = [];
  const recording = (inner: BlobStore): BlobStore => ({
    put: (name, bytes) => inner.put(name, bytes),
    get: (name) => {
      qn1Reads.push(name);
      return inner.get(name);
    },
    getToFile: (name, path) => {
      qn1Reads.push(name);
      return inner.getToFile(name, path);
    },
    delete: (name) => inner.delete(name),
    list: (prefix) => inner.list(prefix),
  });

  const writeSegment = async (rows: Rows, opts: { index?: boolean; metric?: Metric; corrupt?: boolean; walTo: number }) => {
    const blobs = new ObjectStoreBlobs(storage.segments);
    const { fieldLogs, stats, segmentStats } = encodeSegment(schema, batchOf(rows), new BigUint64Array(ROWS).fill(1n));
    const fields: Record<number, string> = {};
    for (const [fieldId, bytes] of fieldLogs) {
      const name = objectNames.insertLog(C, PART, rows.segmentId, fieldId);
      const out = opts.corrupt && fieldId === schema.fields[1]!.fieldId ? bytes.slice() : bytes;
      if (out !== bytes) out[100] = out[100]! ^ 0xff; // one flipped byte in the vector log
      await blobs.put(name, out);
      fields[fieldId] = name;
    }
    const statsName = objectNames.stats(C, PART, rows.segmentId);
    await blobs.put(statsName, stats);
    const indexes: Record<string, SegmentRecord["indexes"][string]> = {};
    if (opts.index) {
      const metric = opts.metric ?? "L2";
      const bytes = buildIndex("HNSW", metric, rows.vecs, DIM, { M: 16, efConstruction: 200 }).serialize();
      const object = objectNames.index(C, PART, rows.segmentId, 1);
      await blobs.put(object, bytes);
      indexes.vec = { indexName: "vec_idx", fieldName: "vec", indexType: "HNSW", metricType: metric, params: {}, object, sizeBytes: bytes.length, builtAtMs: Date.now() };
    }
    const rec: SegmentRecord = {
      segmentId: rows.segmentId,
      collectionId: C,
      partitionId: PART,
      shard: 0,
      state: opts.index ? "Indexed" : "Flushed",
      rowCount: ROWS,
      sizeBytes: segmentStats.sizeBytes,
      walFrom: 1,
      walTo: opts.walTo,
      maxTs: 1n,
      objects: { fields, stats: statsName },
      deltas: [],
      indexes,
      createdAtMs: Date.now(),
    };
    await storage.meta.mutate<SegmentRecord>(metaKeys.segment(C, rows.segmentId), () => rec);
  };

  const appendWal = async (entry: WalEntry) => {
    await storage.wal.open(walSubject());
    return storage.wal.append(walSubject(), packMsgpack(entry), await storage.wal.lastSeq(walSubject()));
  };

  const view = async () => (await storage.meta.get<ServingView>(metaKeys.view(C)))?.value;
  const qnCall = async <T>(node: string, verb: string, body: unknown, retry = true) =>
    (await client.call(h.names.role("querynode", node, verb), body, { timeoutMs: 10_000, retry })).data as T;

  const bruteForce = (q: Float32Array, k: number, keep: (rows: Rows, i: number) => boolean = () => true) => {
    const all: { pk: Pk; distance: number; tag: number }[] = [];
    for (const rows of live.values())
      for (let i = 0; i < ROWS; i++) {
        if (deleted.has(rows.pks[i]!) || !keep(rows, i)) continue;
        all.push({ pk: rows.pks[i]!, distance: distance("L2", q, 0, rows.vecs, i * DIM, DIM), tag: rows.tags[i]! });
      }
    all.sort((a, b) => a.distance - b.distance || (a.pk < b.pk ? -1 : 1));
    return all.slice(0, k);
  };

  const queries = (() => {
    const r = rng(99);
    return Array.from({ length: 3 }, () => Float32Array.from({ length: DIM }, () => r() * 2 - 1));
  })();

  const search = (segmentIds: number[], extra: Record<string, unknown> = {}, retry = true) =>
    qnCall<QnSearchReply>("qn1", QUERYNODE_VERBS.search, {
      collectionId: C,
      segmentIds,
      field: "vec",
      metric: "L2",
      queries,
      k: 10,
      params: { ef: 512 },
      outputFields: ["tag"],
      guaranteeTs: 1n << 40n,
      ...extra,
    }, retry);

  beforeAll(async () => {
    config = defaultConfig({ natsUrl: nats.get().url, nodeId: "qn1", heartbeatMs: 250, leaseTtlMs: 3_000, consistencyWaitMs: 5_000 });
    h = await openNats(config);
    storage = await openStorage(h, config);
    client = new RequestClient(h.nc, 10_000);
    const rec: CollectionRecord = {
      id: CollectionId(C),
      db: "default",
      name: "qn_test",
      description: "",
      schema,
      shardsNum: 1,
      partitions: [{ partitionId: PartitionId(PART), name: "_default", createdAtMs: 0 }],
      indexes: [],
      properties: {},
      consistencyLevel: "Strong",
      createdAtMs: 0,
      createdTs: 0n,
    };
    await storage.meta.create(metaKeys.collection("default", "qn_test"), rec);
    await storage.meta.create<CollectionPointer>(metaKeys.collectionById(C), { db: "default", name: "qn_test" });
    // The WAL up to the flush: one seal marker; the segments and the checkpoint end there.
    const sealSeq = await appendWal({ ts: 1n, ops: [{ op: "seal", segments: [] }] });
    const a = makeRows(1001, 1);
    const b = makeRows(1002, 2);
    await writeSegment(a, { index: true, walTo: sealSeq });
    await writeSegment(b, { walTo: sealSeq });
    live.set(a.segmentId, a);
    live.set(b.segmentId, b);
    await storage.meta.create<ShardCheckpoint>(metaKeys.checkpoint(C, 0), { collectionId: C, shard: 0, seq: sealSeq, ts: 1n, updatedAtMs: Date.now() });
    await storage.meta.create<LoadRecord>(metaKeys.load(C), { collectionId: C, loaded: true, partitionIds: [], updatedAtMs: Date.now() });
    positionResponder = serveEndpoints(
      h,
      [
        {
          subject: h.names.shard(C, 0, SHARD_VERBS.position),
          handle: async () => {
            const seq = await storage.wal.lastSeq(walSubject());
            return { data: { seq, checkpoint: 0 } };
          },
        },
      ],
      "test position responder",
    );
    reg1 = registerNode(h, storage, config, ["querynode"]);
    qn1 = startQueryNode(h, storage, config, { blobs: recording(new ObjectStoreBlobs(storage.segments)) });
    coord = startQuerycoord(h, storage, config);
    await Promise.all([qn1.ready, coord.ready]);
  });

  afterAll(async () => {
    await coord?.stop();
    await qn2?.stop();
    await reg2?.stop();
    await qn1?.stop();
    await reg1?.stop();
    await positionResponder?.stop();
    client?.close();
    await h?.nc.drain();
  });

  it("assigns the ready segments and the node flips them to serving; loadState reports Loaded", async () => {
    const v = await waitFor(async () => {
      const cur = await view();
      return cur && cur.segments[1001]?.state === "serving" && cur.segments[1002]?.state === "serving" ? cur : undefined;
    }, { what: "both segments serving" });
    expect(v.segments[1001]!.node).toBe("qn1");
    expect(v.segments[1001]!.servingSince).toBeGreaterThan(0);
    const st = (await client.call(h.names.role("querycoord", "any", QUERYCOORD_VERBS.loadState), { collectionId: C })).data as LoadStateReply;
    expect(st).toEqual({ state: "LoadStateLoaded", progress: 100, servingRows: 2 * ROWS, totalRows: 2 * ROWS });
    const stats = await qnCall<QnStatsReply>("qn1", QUERYNODE_VERBS.stats, {});
    expect(stats.segments.map((s) => [s.segmentId, s.rowCount, s.indexed]).sort()).toEqual([
      [1001, ROWS, true],
      [1002, ROWS, false],
    ]);
  });

  it("search over an HNSW-indexed and an unindexed segment equals brute force", async () => {
    const { results } = await search([1001, 1002]);
    expect(results).toHaveLength(queries.length);
    queries.forEach((q, qi) => {
      const want = bruteForce(q, 10);
      expect(results[qi]!.map((hit) => hit.pk)).toEqual(want.map((w) => w.pk));
      results[qi]!.forEach((hit, i) => {
        expect(hit.distance).toBeCloseTo(want[i]!.distance, 4);
        expect(hit.fields).toEqual({ tag: want[i]!.tag });
      });
    });
  });

  it("filtered search equals brute force: a broad filter (bitset pre-filter) and a very selective one (exact scan)", async () => {
    const broad = await search([1001, 1002], { filter: "tag in [1, 2, 3]" });
    queries.forEach((q, qi) => expect(broad.results[qi]!.map((x) => x.pk)).toEqual(bruteForce(q, 10, (r, i) => [1, 2, 3].includes(r.tags[i]!)).map((w) => w.pk)));
    // One row of 200 in the indexed segment (0.5%): scanned exactly instead of walking the graph.
    const picked = [1001005n, 1002010n, 1002077n];
    const narrow = await search([1001, 1002], { filter: "id in {ids}", exprParams: { ids: picked } });
    queries.forEach((q, qi) => expect(narrow.results[qi]!.map((x) => x.pk)).toEqual(bruteForce(q, 10, (r, i) => picked.includes(r.pks[i]!)).map((w) => w.pk)));
  });

  it("query returns matching rows in pk order, honours pks and counts", async () => {
    const r = await qnCall<QnQueryReply>("qn1", QUERYNODE_VERBS.query, { collectionId: C, segmentIds: [1002, 1001], filter: "tag == 3", k: 5, outputFields: ["tag"] });
    expect(r.count).toBe(2 * (ROWS / 10));
    expect(r.pks).toEqual([1001003n, 1001013n, 1001023n, 1001033n, 1001043n]);
    expect(r.rows.every((x) => x.tag === 3)).toBe(true);
    const byPk = await qnCall<QnQueryReply>("qn1", QUERYNODE_VERBS.query, { collectionId: C, segmentIds: [1001, 1002], pks: [1002007n, 1001001n, 5n], k: 10, outputFields: [] });
    expect(byPk.pks).toEqual([1001001n, 1002007n]);
    const count = await qnCall<QnQueryReply>("qn1", QUERYNODE_VERBS.query, { collectionId: C, segmentIds: [1001, 1002], k: 0, countOnly: true, outputFields: [] });
    expect(count.count).toBe(2 * ROWS);
  });

  it("a delete appended to the WAL hides the row from reads that guarantee its timestamp", async () => {
    const before = await search([1001, 1002]);
    const victims = [before.results[0]![0]!.pk as bigint, before.results[1]![0]!.pk as bigint];
    const segs = victims.map((pk) => Number(pk / 1000n));
    await appendWal({ ts: 2n, ops: [{ op: "delete", pks: victims, segs }] });
    victims.forEach((pk) => deleted.add(pk));
    const after = await search([1001, 1002]);
    queries.forEach((q, qi) => {
      const got = after.results[qi]!.map((x) => x.pk);
      for (const v of victims) expect(got).not.toContain(v);
      expect(got).toEqual(bruteForce(q, 10).map((w) => w.pk));
    });
    const byPk = await qnCall<QnQueryReply>("qn1", QUERYNODE_VERBS.query, { collectionId: C, segmentIds: [1001, 1002], pks: victims, k: 10, outputFields: [], guaranteeTs: 3n });
    expect(byPk.count).toBe(0);
    const count = await qnCall<QnQueryReply>("qn1", QUERYNODE_VERBS.query, { collectionId: C, segmentIds: [1001, 1002], k: 0, countOnly: true, outputFields: [], guaranteeTs: 3n });
    expect(count.count).toBe(2 * ROWS - victims.length);
  });

  it("a segment with a corrupt binlog is not served: the load failure is reported, the entry stays loading", async () => {
    await writeSegment(makeRows(1003, 3), { corrupt: true, walTo: 1 });
    const stats = await waitFor(async () => {
      const s = await qnCall<QnStatsReply>("qn1", QUERYNODE_VERBS.stats, {});
      return s.failed?.some((f) => f.segmentId === 1003) ? s : undefined;
    }, { what: "segment 1003 reported failed" });
    const failure = stats.failed!.find((f) => f.segmentId === 1003)!;
    expect(failure.error).toMatch(/corrupt object '.*\/1003\/insert\/\d+': SHA-256 checksum mismatch/);
    expect(stats.segments.map((s) => s.segmentId)).not.toContain(1003);
    expect((await view())!.segments[1003]!.state).toBe("loading");
    const st = (await client.call(h.names.role("querycoord", "any", QUERYCOORD_VERBS.loadState), { collectionId: C })).data as LoadStateReply;
    expect(st.state).toBe("LoadStateLoading");
    expect(st.totalRows).toBe(3 * ROWS);
    expect(st.servingRows).toBe(2 * ROWS);
    await expect(search([1001, 1003], {}, false).then(() => undefined, (e) => e)).resolves.toMatchObject({ code: 1904 });
    // Out of the way for the next test: the segment is dropped (nothing replaces it, so it leaves the view).
    await storage.meta.mutate<SegmentRecord>(metaKeys.segment(C, 1003), (cur) => cur && { ...cur, state: "Dropped", droppedAtMs: Date.now() });
    await waitFor(async () => (await view())!.segments[1003] === undefined, { what: "dropped segment leaves the view" });
  });

  it("a segment loaded after deletes of its rows were applied catches up from the WAL before serving", async () => {
    const rows = makeRows(1004, 4);
    const victim = rows.pks[17]!;
    await appendWal({ ts: 3n, ops: [{ op: "delete", pks: [victim], segs: [1004] }] });
    // The node's follower moves past the delete while 1004 is not loaded anywhere.
    await search([1001]);
    const applied = (await qnCall<QnStatsReply>("qn1", QUERYNODE_VERBS.stats, {})).shards![0]!.appliedSeq;
    expect(applied).toBe(await storage.wal.lastSeq(walSubject()));
    await writeSegment(rows, { walTo: 1 });
    live.set(rows.segmentId, rows);
    deleted.add(victim);
    await waitFor(async () => (await view())?.segments[1004]?.state === "serving", { what: "1004 serving" });
    const byPk = await qnCall<QnQueryReply>("qn1", QUERYNODE_VERBS.query, { collectionId: C, segmentIds: [1004], pks: [victim, rows.pks[18]!], k: 10, outputFields: [] });
    expect(byPk.pks).toEqual([rows.pks[18]!]);
    const stats = await qnCall<QnStatsReply>("qn1", QUERYNODE_VERBS.stats, {});
    expect(stats.segments.find((x) => x.segmentId === 1004)).toMatchObject({ rowCount: ROWS, liveRows: ROWS - 1 });
  });

  it("an index built after the segment was loaded is added in place and used", async () => {
    const rows = live.get(1002)!;
    const bytes = buildIndex("HNSW", "L2", rows.vecs, DIM, { M: 16, efConstruction: 200 }).serialize();
    const object = objectNames.index(C, PART, 1002, 1);
    await new ObjectStoreBlobs(storage.segments).put(object, bytes);
    const info = { indexName: "vec_idx", fieldName: "vec", indexType: "HNSW", metricType: "L2", params: {}, object, sizeBytes: bytes.length, builtAtMs: Date.now() };
    await storage.meta.mutate<SegmentRecord>(metaKeys.segment(C, 1002), (cur) => cur && { ...cur, state: "Indexed", indexes: { vec: info } });
    await waitFor(async () => (await qnCall<QnStatsReply>("qn1", QUERYNODE_VERBS.stats, {})).segments.find((x) => x.segmentId === 1002)?.indexed, {
      what: "1002 indexed",
    });
    expect((await view())!.segments[1002]!.state).toBe("serving");
    const { results } = await search([1001, 1002, 1004]);
    queries.forEach((q, qi) => expect(results[qi]!.map((x) => x.pk)).toEqual(bruteForce(q, 10).map((w) => w.pk)));
  });

  /** The vector of `pk` as inserted. */
  const vectorOf = (pk: bigint): Float32Array => {
    const rows = live.get(Number(pk / 1000n))!;
    const i = rows.pks.indexOf(pk);
    return rows.vecs.slice(i * DIM, (i + 1) * DIM);
  };
  const vectorLog = (segmentId: number) => objectNames.insertLog(C, PART, segmentId, schema.fields[1]!.fieldId);
  const segStats = async (segmentId: number) => (await qnCall<QnStatsReply>("qn1", QUERYNODE_VERBS.stats, {})).segments.find((x) => x.segmentId === segmentId);
  const drop = async (ids: number[]) => {
    for (const id of ids) {
      await storage.meta.mutate<SegmentRecord>(metaKeys.segment(C, id), (cur) => cur && { ...cur, state: "Dropped", droppedAtMs: Date.now() });
      live.delete(id);
    }
    await waitFor(
      async () => {
        const v = await view();
        return v !== undefined && ids.every((id) => v.segments[id] === undefined);
      },
      { what: `segments ${ids.join(", ")} leave the view` },
    );
  };

  it("vector outputs are exact: from the HNSW (L2) index, from the index added later, and from the FLAT of an unindexed segment", async () => {
    // 1001: HNSW L2 since load; 1002: HNSW L2 added after load (its FLATs are gone); 1004: unindexed (FLAT in the pool).
    const { results } = await search([1001, 1002, 1004], { outputFields: ["tag", "vec"] });
    queries.forEach((q, qi) => {
      expect(results[qi]!.map((x) => x.pk)).toEqual(bruteForce(q, 10).map((w) => w.pk));
      for (const hit of results[qi]!) {
        expect(hit.fields.vec).toBeInstanceOf(Float32Array);
        expect(hit.fields.vec).toEqual(vectorOf(hit.pk as bigint));
        expect(hit.fields.tag).toBe(Number((hit.pk as bigint) % 1000n) % 10);
      }
    });
    const pks = [1001003n, 1002150n, 1004199n, 1004000n];
    const got = await qnCall<QnQueryReply>("qn1", QUERYNODE_VERBS.query, { collectionId: C, segmentIds: [1001, 1002, 1004], pks, k: 10, outputFields: ["vec", "tag"] });
    expect(got.pks).toEqual([...pks].sort((a, b) => (a < b ? -1 : 1)));
    got.rows.forEach((row, i) => expect(row).toEqual({ vec: vectorOf(got.pks[i] as bigint), tag: Number((got.pks[i] as bigint) % 1000n) % 10 }));
    // Index added later: no FLAT left, the segment's bytes are its scalars plus the index.
    const s1001 = await segStats(1001);
    const s1002 = await segStats(1002);
    expect(s1002!.memoryBytes).toBe(s1001!.memoryBytes);
  });

  it("an indexed segment never reads its vector binlog: search, filters and scalar outputs work with it corrupt, vector outputs come from the index", async () => {
    const rows = makeRows(1005, 5);
    const readsBefore = qn1Reads.length;
    await writeSegment(rows, { index: true, corrupt: true, walTo: 1 });
    live.set(rows.segmentId, rows);
    await waitFor(async () => (await view())?.segments[1005]?.state === "serving", { what: "1005 serving" });
    const reads = qn1Reads.slice(readsBefore);
    expect(reads.filter((n) => n.includes("/1005/")).length).toBeGreaterThan(0);
    expect(reads).not.toContain(vectorLog(1005));
    // Search over it (plain, broad filter, selective filter) equals brute force.
    const all = await search([1001, 1002, 1004, 1005], { outputFields: ["tag", "vec"] });
    queries.forEach((q, qi) => {
      expect(all.results[qi]!.map((x) => x.pk)).toEqual(bruteForce(q, 10).map((w) => w.pk));
      for (const hit of all.results[qi]!) expect(hit.fields.vec).toEqual(vectorOf(hit.pk as bigint));
    });
    const broad = await search([1005], { filter: "tag in [1, 2, 3]" });
    queries.forEach((q, qi) =>
      expect(broad.results[qi]!.map((x) => x.pk)).toEqual(bruteForce(q, 10, (r, i) => r.segmentId === 1005 && [1, 2, 3].includes(r.tags[i]!)).map((w) => w.pk)),
    );
    const picked = [1005005n, 1005077n, 1005123n];
    const narrow = await search([1005], { filter: "id in {ids}", exprParams: { ids: picked }, outputFields: ["vec"] });
    queries.forEach((q, qi) => {
      expect(narrow.results[qi]!.map((x) => x.pk)).toEqual(bruteForce(q, 10, (r, i) => picked.includes(r.pks[i]!)).map((w) => w.pk));
      for (const hit of narrow.results[qi]!) expect(hit.fields.vec).toEqual(vectorOf(hit.pk as bigint));
    });
    const byPk = await qnCall<QnQueryReply>("qn1", QUERYNODE_VERBS.query, { collectionId: C, segmentIds: [1005], pks: [1005042n], k: 10, outputFields: ["tag", "vec"] });
    expect(byPk.rows).toEqual([{ tag: 2, vec: vectorOf(1005042n) }]);
    expect(qn1Reads.slice(readsBefore)).not.toContain(vectorLog(1005));
    // Accounting: scalars and per-row state plus the index, once; no copy of the vectors on the main thread.
    const idx = (await storage.meta.get<SegmentRecord>(metaKeys.segment(C, 1005)))!.value.indexes.vec!;
    const scalarBytes = ROWS * (1 + 8 + 4 + 8 + 4 + 8); // deleted, insertTs, rowOfSorted, id, tag, sortedPks
    const st = (await segStats(1005))!;
    // the index's own account of itself (engine/index/hnsw.ts memoryBytes), loaded here the way the query node loads it
    const hnswBytes = loadIndex((await new ObjectStoreBlobs(storage.segments).get(idx.object))!).memoryBytes();
    expect(st.memoryBytes).toBeGreaterThan(scalarBytes + hnswBytes - 1024); // a main-thread copy of the vectors would add ROWS * DIM * 4 = 6400
    expect(st.memoryBytes).toBeLessThanOrEqual(scalarBytes + hnswBytes);
    await drop([1005]);
  });

  it("a COSINE HNSW index keeps unit vectors: vector outputs read the binlog for that request only, and a corrupt one is reported", async () => {
    const good = makeRows(1006, 6);
    const bad = makeRows(1007, 7);
    const readsBefore = qn1Reads.length;
    await writeSegment(good, { index: true, metric: "COSINE", walTo: 1 });
    await writeSegment(bad, { index: true, metric: "COSINE", corrupt: true, walTo: 1 });
    live.set(good.segmentId, good);
    live.set(bad.segmentId, bad);
    await waitFor(async () => {
      const v = await view();
      return v?.segments[1006]?.state === "serving" && v.segments[1007]?.state === "serving";
    }, { what: "1006 and 1007 serving" });
    expect(qn1Reads.slice(readsBefore)).not.toContain(vectorLog(1006));
    expect(qn1Reads.slice(readsBefore)).not.toContain(vectorLog(1007));
    // Search (COSINE) and scalar outputs work on both, the corrupt binlog notwithstanding.
    const cos = await search([1006, 1007], { metric: "COSINE" });
    queries.forEach((q, qi) => {
      const want: { pk: bigint; d: number }[] = [];
      for (const r of [good, bad]) for (let i = 0; i < ROWS; i++) want.push({ pk: r.pks[i]!, d: distance("COSINE", q, 0, r.vecs, i * DIM, DIM) });
      want.sort((a, b) => b.d - a.d || (a.pk < b.pk ? -1 : 1));
      expect(cos.results[qi]!.map((x) => x.pk)).toEqual(want.slice(0, 10).map((w) => w.pk));
      for (const hit of cos.results[qi]!) expect(hit.fields).toEqual({ tag: Number((hit.pk as bigint) % 1000n) % 10 });
    });
    // Exact vectors of the intact segment: its binlog is read for the request (and verified), nothing of it is kept.
    const before = (await segStats(1006))!.memoryBytes;
    const got = await qnCall<QnQueryReply>("qn1", QUERYNODE_VERBS.query, { collectionId: C, segmentIds: [1006], pks: [1006001n, 1006199n], k: 10, outputFields: ["vec"] });
    expect(got.rows).toEqual([{ vec: vectorOf(1006001n) }, { vec: vectorOf(1006199n) }]);
    expect(qn1Reads.slice(readsBefore)).toContain(vectorLog(1006));
    expect((await segStats(1006))!.memoryBytes).toBe(before);
    // The corrupt one: scalars fine, the vector output names the corrupt object.
    const scalars = await qnCall<QnQueryReply>("qn1", QUERYNODE_VERBS.query, { collectionId: C, segmentIds: [1007], pks: [1007003n], k: 10, outputFields: ["tag"] });
    expect(scalars.rows).toEqual([{ tag: 3 }]);
    const err = await qnCall<QnQueryReply>("qn1", QUERYNODE_VERBS.query, { collectionId: C, segmentIds: [1007], pks: [1007003n], k: 10, outputFields: ["vec"] }, false).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 65535 });
    expect((err as Error).message).toMatch(/vectors of field 'vec' of segment 1007 cannot be read: corrupt object '.*\/1007\/insert\/\d+': SHA-256 checksum mismatch/);
    // The segment keeps serving.
    expect((await view())!.segments[1007]!.state).toBe("serving");
    await drop([1006, 1007]);
  });

  it("a dead node's segments move to a live node, which loads them with the deletes applied", async () => {
    const config2 = { ...config, nodeId: "qn2" };
    reg2 = registerNode(h, storage, config2, ["querynode"]);
    qn2 = startQueryNode(h, storage, config2);
    await qn2.ready;
    // qn1 dies: it stops and its heartbeat disappears.
    await qn1.stop();
    await reg1.stop();
    const v = await waitFor(async () => {
      const cur = await view();
      return cur && [1001, 1002, 1004].every((id) => cur.segments[id]?.node === "qn2" && cur.segments[id]?.state === "serving") ? cur : undefined;
    }, { what: "segments serving on qn2", timeoutMs: 15_000 });
    expect(Object.keys(v.segments).sort()).toEqual(["1001", "1002", "1004"]);
    const { results } = (await client.call(h.names.role("querynode", "qn2", QUERYNODE_VERBS.search), {
      collectionId: C,
      segmentIds: [1001, 1002, 1004],
      field: "vec",
      metric: "L2",
      queries,
      k: 10,
      params: { ef: 512 },
      outputFields: [],
      guaranteeTs: 1n << 40n,
    })).data as QnSearchReply;
    queries.forEach((q, qi) => expect(results[qi]!.map((x) => x.pk)).toEqual(bruteForce(q, 10).map((w) => w.pk)));
  });

  it("releasing the collection empties the view and the node unloads", async () => {
    await storage.meta.mutate<LoadRecord>(metaKeys.load(C), (cur) => cur && { ...cur, loaded: false, updatedAtMs: Date.now() });
    await waitFor(async () => Object.keys((await view())?.segments ?? {}).length === 0, { what: "empty view" });
    await waitFor(async () => (await qnCall<QnStatsReply>("qn2", QUERYNODE_VERBS.stats, {})).segments.length === 0, { what: "qn2 unloaded" });
    const st = (await client.call(h.names.role("querycoord", "any", QUERYCOORD_VERBS.loadState), { collectionId: C })).data as LoadStateReply;
    expect(st.state).toBe("LoadStateNotLoad");
  });
});
