/**
 * The wire contract as a plain NATS client sees it: JSON envelopes, int64 as
 * strings (or raw numbers on request), exact big integers in both directions,
 * msgpack on request, replies over the max payload, and the consistency
 * levels of reads.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, headers, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { Packr } from "msgpackr";
import { NatsvecClient } from "../../client/index.ts";
import { randomVectors, useCluster } from "../harness/cluster.ts";
import { waitFor } from "../harness/nats.ts";

const cluster = useCluster();

const packr = new Packr({ useRecords: false, moreTypes: true, useBigInt64: true } as any);
const subject = (category: string, action: string) => `natsvec.api.v2.${category}.${action}`;

let nc: NatsConnection;

/** Plain JSON request (body is a string so tests can write raw literals); returns reply text and parsed envelope. */
const jsonReq = async (category: string, action: string, body: string | object, h?: MsgHdrs) => {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const reply = await nc.request(subject(category, action), text, { timeout: 15_000, ...(h ? { headers: h } : {}) });
  const raw = reply.string();
  return { raw, env: JSON.parse(raw) as { code: number; message?: string; data?: any; topks?: number[]; [k: string]: unknown }, headers: reply.headers };
};

const allowInt64 = () => {
  const h = headers();
  h.set("Accept-Type-Allow-Int64", "true");
  return h;
};

beforeAll(async () => {
  nc = await connect({ servers: cluster.get().nats.url, name: "wire-test" });
});
afterAll(async () => {
  await nc?.drain().catch(() => undefined);
});

describe("JSON envelope and int64", () => {
  // Success replies are exactly {code: 0, data}; failures exactly {code, message}.
  it("envelope shape", async () => {
    const { name } = cluster.get();
    const collectionName = name("env");
    const created = await jsonReq("collections", "create", { collectionName, dimension: 2 });
    expect(created.env).toEqual({ code: 0, data: {} });
    const listed = await jsonReq("collections", "list", {});
    expect(Object.keys(listed.env).sort()).toEqual(["code", "data"]);
    expect(listed.env.code).toBe(0);
    expect(listed.env.data).toContain(collectionName);
    const has = await jsonReq("collections", "has", { collectionName });
    expect(has.env).toEqual({ code: 0, data: { has: true } });
    const missing = await jsonReq("collections", "describe", { collectionName: "no_such_coll" });
    expect(Object.keys(missing.env).sort()).toEqual(["code", "message"]);
    expect(missing.env.code).toBe(100);
    expect(missing.env.message).toContain("collection 'no_such_coll' not found");
    // Search replies carry topks next to data.
    await jsonReq("entities", "insert", { collectionName, data: [{ id: 1, vector: [1, 0] }] });
    const s = await jsonReq("entities", "search", { collectionName, data: [[1, 0]], limit: 3 });
    expect(s.env).toEqual({ code: 0, data: [{ id: "1", distance: 1 }], topks: [1] });
    // No Content-Type header on a JSON reply.
    expect(s.headers?.get("Content-Type") ?? "").toBe("");
  });

  // int64 values (ids, commitTs) are JSON strings by default and raw numbers with Accept-Type-Allow-Int64: true; both exact.
  it("int64 as strings by default, raw numbers on request, exact beyond 2^53", async () => {
    const { name } = cluster.get();
    const collectionName = name("i64");
    await jsonReq("collections", "create", { collectionName, dimension: 2, params: { shardsNum: 2 } });
    // One pk as a decimal string, one as a bare JSON number literal beyond 2^53.
    const body = `{"collectionName":"${collectionName}","data":[{"id":"9007199254740993","vector":[1,2]},{"id":9007199254740995,"vector":[3,4],"tag":"b"}]}`;
    const ins = await jsonReq("entities", "insert", body);
    expect(ins.env.code).toBe(0);
    expect(ins.env.data.insertCount).toBe(2);
    expect(ins.env.data.insertIds).toEqual(["9007199254740993", "9007199254740995"]);
    expect(ins.raw).toContain(`"insertIds":["9007199254740993","9007199254740995"]`);
    expect(ins.raw).toMatch(/"commitTs":"\d+"/);

    // Default: strings.
    const got = await jsonReq("entities", "get", { collectionName, id: ["9007199254740993", "9007199254740995"], outputFields: ["vector", "tag"] });
    expect(got.env).toEqual({
      code: 0,
      data: [
        { id: "9007199254740993", vector: [1, 2] },
        { id: "9007199254740995", vector: [3, 4], tag: "b" },
      ],
    });

    // With the header: raw JSON numbers, exact in the text.
    const raw = await jsonReq("entities", "get", `{"collectionName":"${collectionName}","id":[9007199254740993],"outputFields":["vector"]}`, allowInt64());
    expect(raw.env.code).toBe(0);
    expect(raw.raw).toContain(`"id":9007199254740993`);
    expect(raw.raw).not.toContain(`"9007199254740993"`);
    const ins2 = await jsonReq("entities", "insert", `{"collectionName":"${collectionName}","data":[{"id":9007199254740997,"vector":[5,6]}]}`, allowInt64());
    expect(ins2.raw).toContain(`"insertIds":[9007199254740997]`);
    expect(ins2.raw).toMatch(/"commitTs":\d+[,}]/);

    // Filters and deletes with the big literal hit exactly one row (not its float neighbour).
    const q = await jsonReq("entities", "query", { collectionName, filter: "id == 9007199254740993", outputFields: ["id"] });
    expect(q.env.data).toEqual([{ id: "9007199254740993" }]);
    const byBareId = await jsonReq("entities", "delete", `{"collectionName":"${collectionName}","ids":[9007199254740995]}`);
    expect(byBareId.env.data.deleteCount).toBe(1);
    const left = await jsonReq("entities", "query", { collectionName, filter: "id > 0", outputFields: ["id"] });
    expect(left.env.data).toEqual([{ id: "9007199254740993" }, { id: "9007199254740997" }]);
  });

  // A request with Content-Type: application/msgpack gets a msgpack reply, with int64 as msgpack int64 (bigint).
  it("msgpack request gets a msgpack reply", async () => {
    const { name } = cluster.get();
    const collectionName = name("mp");
    await jsonReq("collections", "create", { collectionName, dimension: 3 });
    const h = headers();
    h.set("Content-Type", "application/msgpack");
    const insReply = await nc.request(
      subject("entities", "insert"),
      packr.pack({ collectionName, data: [{ id: 9007199254740993n, vector: new Float32Array([1, 2, 3]), note: "mp" }] }),
      { timeout: 15_000, headers: h },
    );
    expect(insReply.headers?.get("Content-Type")).toBe("application/msgpack");
    const ins = packr.unpack(insReply.data) as { code: number; data: { insertIds: unknown[]; commitTs: unknown } };
    expect(ins.code).toBe(0);
    expect(ins.data.insertIds).toEqual([9007199254740993n]);
    expect(typeof ins.data.commitTs).toBe("bigint");
    const h2 = headers();
    h2.set("Content-Type", "application/msgpack");
    const getReply = await nc.request(subject("entities", "get"), packr.pack({ collectionName, id: [9007199254740993n], outputFields: ["vector", "note"] }), {
      timeout: 15_000,
      headers: h2,
    });
    expect(getReply.headers?.get("Content-Type")).toBe("application/msgpack");
    expect(() => JSON.parse(new TextDecoder().decode(getReply.data))).toThrow();
    expect(packr.unpack(getReply.data)).toEqual({ code: 0, data: [{ id: 9007199254740993n, vector: new Float32Array([1, 2, 3]), note: "mp" }] });
    // And a JSON reader of the same row sees the same values.
    const viaJson = await jsonReq("entities", "get", { collectionName, id: ["9007199254740993"], outputFields: ["vector", "note"] });
    expect(viaJson.env.data).toEqual([{ id: "9007199254740993", vector: [1, 2, 3], note: "mp" }]);
  });
});

describe("replies over the max payload", () => {
  // A 3000 x 128 search with vectors is > 1 MB: plain JSON gets 1903 with a clear message; the TS client gets every row via chunks.
  it("plain JSON gets 1903, the chunk-aware client gets all 3000 rows", async () => {
    const { client, name } = cluster.get();
    const collectionName = name("big");
    await client.collections.create({ collectionName, dimension: 128, metricType: "L2", params: { shardsNum: 2 } });
    const vecs = randomVectors(3000, 128, 11);
    for (let i = 0; i < 3000; i += 1000)
      await client.entities.insert({ collectionName, data: vecs.slice(i, i + 1000).map((v, j) => ({ id: i + j, vector: v })) });
    expect(await client.entities.count({ collectionName })).toBe(3000);
    const query = Array.from(vecs[0]!);

    const t0 = Date.now();
    const plain = await jsonReq("entities", "search", { collectionName, data: [query], limit: 16384, outputFields: ["vector"] });
    expect(plain.env.code).toBe(1903);
    expect(plain.env.message).toMatch(/reply of \d+ bytes exceeds the NATS max payload \(\d+ bytes\)/);
    expect(plain.env.message).toContain("lower limit or outputFields");
    expect(plain.env.data).toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(10_000);
    // Without the vectors the same search fits and is complete.
    const slim = await jsonReq("entities", "search", { collectionName, data: [query], limit: 16384 });
    expect(slim.env.code).toBe(0);
    expect(slim.env.topks).toEqual([3000]);

    const res = await client.entities.search({ collectionName, data: [vecs[0]!], limit: 16384, outputFields: ["vector"] });
    expect(res.topks).toEqual([3000]);
    expect(res.data).toHaveLength(3000);
    expect(res.data[0]!.id).toBe(0n);
    expect(res.data[0]!.distance).toBe(0);
    const ids = res.data.map((r) => Number(r.id as bigint));
    expect(new Set(ids).size).toBe(3000);
    for (const r of res.data) expect(r.vector).toEqual(vecs[Number(r.id as bigint)]);
    for (let i = 1; i < res.data.length; i++) expect(res.data[i]!.distance).toBeGreaterThanOrEqual(res.data[i - 1]!.distance);
  });
});

describe("consistency levels", () => {
  // A Session read with another client's commitTs sees that write at once, over JSON and over the TS client.
  it("Session with guaranteeTs sees a write made by another client", async () => {
    const { client, name, nats } = cluster.get();
    const collectionName = name("sess");
    await client.collections.create({ collectionName, dimension: 2, metricType: "L2", params: { shardsNum: 2, consistencyLevel: "Eventually" } });
    const writer = await NatsvecClient.connect({ servers: nats.url, timeoutMs: 15_000 });
    try {
      for (let i = 0; i < 5; i++) {
        const w = await writer.entities.insert({ collectionName, data: [{ id: 100 + i, vector: [i, 1] }] });
        expect(typeof w.commitTs).toBe("bigint");
        // TS client reader.
        const got = await client.entities.get({ collectionName, id: [100 + i], consistencyLevel: "Session", guaranteeTs: w.commitTs });
        expect(got.map((r) => r.id)).toEqual([BigInt(100 + i)]);
        // Plain JSON reader, commitTs passed back as the string it would have received.
        const q = await jsonReq("entities", "query", { collectionName, filter: `id == ${100 + i}`, consistencyLevel: "Session", guaranteeTs: w.commitTs.toString() });
        expect(q.env).toEqual({ code: 0, data: [{ id: String(100 + i) }] });
      }
      // A JSON writer's commitTs (a string) works the same for a TS reader.
      const jw = await jsonReq("entities", "insert", { collectionName, data: [{ id: 200, vector: [9, 9] }] });
      const ts = BigInt(jw.env.data.commitTs as string);
      const s = await client.entities.search({ collectionName, data: [[9, 9]], limit: 1, consistencyLevel: "Session", guaranteeTs: ts });
      expect(s.data[0]!.id).toBe(200n);
      const bad = await jsonReq("entities", "query", { collectionName, filter: "id > 0", consistencyLevel: "Session", guaranteeTs: "not-a-ts" });
      expect(bad.env.code).toBe(1100);
      expect(bad.env.message).toContain("guaranteeTs");
      const badLevel = await jsonReq("entities", "query", { collectionName, filter: "id > 0", consistencyLevel: "Sometimes" });
      expect(badLevel.env.code).toBe(1100);
      expect(badLevel.env.message).toContain("consistencyLevel");
    } finally {
      await writer.close();
    }
  });

  // Bounded and Eventually reads answer without error and converge to every acknowledged write.
  it("Bounded and Eventually reads work", async () => {
    const { client, name } = cluster.get();
    const collectionName = name("lvl");
    await client.collections.create({ collectionName, dimension: 2, metricType: "L2", params: { shardsNum: 2 } });
    await client.entities.insert({ collectionName, data: Array.from({ length: 30 }, (_, i) => ({ id: i, vector: [i, 1] })) });
    for (const consistencyLevel of ["Bounded", "Eventually"] as const) {
      const n = await waitFor(
        async () => {
          const c = await client.entities.count({ collectionName, consistencyLevel });
          return c === 30 ? c : false;
        },
        { what: `${consistencyLevel} count to reach 30` },
      );
      expect(n).toBe(30);
      const s = await client.entities.search({ collectionName, data: [[3, 1]], limit: 1, consistencyLevel });
      expect(s.data).toEqual([{ id: 3n, distance: 0 }]);
      const q = await jsonReq("entities", "query", { collectionName, filter: "id in [4, 5]", consistencyLevel });
      expect(q.env).toEqual({ code: 0, data: [{ id: "4" }, { id: "5" }] });
    }
    // Strong (the default) sees everything at once.
    expect(await client.entities.count({ collectionName })).toBe(30);
  });
});
