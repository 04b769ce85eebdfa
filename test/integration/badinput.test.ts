/**
 * The bad-input list: every malformed or wrong request gets its exact public
 * code and a message that says what was wrong, and changes nothing (row
 * counts, collection and database lists are compared before and after).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { Packr } from "msgpackr";
import type { FieldSpec } from "../../client/index.ts";
import { useCluster } from "../harness/cluster.ts";

const cluster = useCluster();

const packr = new Packr({ useRecords: false, moreTypes: true, useBigInt64: true } as any);
const SUBJECT = (category: string, action: string) => `natsvec.api.v2.${category}.${action}`;

/** Fixture collection: custom schema WITHOUT dynamic field, 2 shards, 10 rows. */
const FIXTURE = "bad_fixture";
const DIM = 4;
const fixtureSchema: { enableDynamicField: boolean; fields: FieldSpec[] } = {
  enableDynamicField: false,
  fields: [
    { fieldName: "id", dataType: "Int64", isPrimary: true },
    { fieldName: "vec", dataType: "FloatVector", elementTypeParams: { dim: DIM } },
    { fieldName: "i32", dataType: "Int32", nullable: true },
    { fieldName: "s", dataType: "VarChar", elementTypeParams: { max_length: 8 }, nullable: true },
    { fieldName: "arr", dataType: "Array", elementDataType: "Int64", elementTypeParams: { max_capacity: 3 }, nullable: true },
  ],
};
const goodRow = (i: number) => ({ id: i, vec: [i, 1, 0, 0], i32: i, s: `s${i}`, arr: [i] });

interface Snapshot {
  count: number;
  ids: string[];
  collections: string[];
  databases: string[];
  partitions: string[];
}

let nc: NatsConnection;
let baseline: Snapshot;

const snapshot = async (): Promise<Snapshot> => {
  const { client } = cluster.get();
  const rows = await client.entities.query({ collectionName: FIXTURE, filter: "id >= 0", limit: 16384 });
  return {
    count: await client.entities.count({ collectionName: FIXTURE }),
    ids: rows.map((r) => String(r.id)).sort(),
    collections: [...(await client.collections.list())].sort(),
    databases: [...(await client.databases.list())].sort(),
    partitions: [...(await client.partitions.list({ collectionName: FIXTURE }))].sort(),
  };
};
const unchanged = async () => expect(await snapshot()).toEqual(baseline);

/** Raw JSON (or raw bytes) request from a plain NATS client; returns the decoded JSON envelope. */
const rawJson = async (subject: string, body: string | Uint8Array) => {
  const reply = await nc.request(subject, body, { timeout: 10_000 });
  return JSON.parse(reply.string()) as { code: number; message?: string; data?: unknown };
};

/** Client call that must fail with `code` and a message containing every `parts`. */
const fails = async (p: Promise<unknown>, code: number, ...parts: string[]) => {
  const err = await p.then(
    (v) => {
      throw new Error(`expected failure with code ${code}, got success: ${JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x))}`);
    },
    (e: unknown) => e as { code?: number; message?: string },
  );
  expect({ code: err.code, message: err.message }).toMatchObject({ code });
  for (const s of parts) expect(err.message).toContain(s);
};

beforeAll(async () => {
  const { client, nats } = cluster.get();
  nc = await connect({ servers: nats.url, name: "badinput-raw" });
  await client.collections.create({ collectionName: FIXTURE, schema: fixtureSchema, params: { shardsNum: 2 } });
  await client.entities.insert({ collectionName: FIXTURE, data: Array.from({ length: 10 }, (_, i) => goodRow(i)) });
  baseline = await snapshot();
  expect(baseline.count).toBe(10);
  expect(baseline.collections).toEqual([FIXTURE]);
  expect(baseline.databases).toEqual(["default"]);
});

afterAll(async () => {
  await nc?.drain().catch(() => undefined);
});

describe("malformed bodies", () => {
  // A body that is not JSON is refused with 1801 naming JSON, and nothing is inserted.
  it("not JSON -> 1801", async () => {
    const env = await rawJson(SUBJECT("entities", "insert"), "{not json");
    expect(env.code).toBe(1801);
    expect(env.message).toContain("not valid JSON");
    expect(env.data).toBeUndefined();
    await unchanged();
  });

  // A body declared msgpack that does not decode is refused with 1801 (reply in msgpack), nothing inserted.
  it("not msgpack -> 1801", async () => {
    const h = headers();
    h.set("Content-Type", "application/msgpack");
    const reply = await nc.request(SUBJECT("entities", "insert"), new Uint8Array([0xde, 0xad, 0xbe, 0xef]), { timeout: 10_000, headers: h });
    expect(reply.headers?.get("Content-Type")).toBe("application/msgpack");
    const env = packr.unpack(reply.data) as { code: number; message: string };
    expect(env.code).toBe(1801);
    expect(env.message).toContain("not valid msgpack");
    await unchanged();
  });

  // A JSON array body (valid JSON, not an object) is refused with 1801.
  it("JSON array body -> 1801", async () => {
    const env = await rawJson(SUBJECT("entities", "insert"), JSON.stringify([{ collectionName: FIXTURE, data: [goodRow(50)] }]));
    expect(env.code).toBe(1801);
    expect(env.message).toContain("must be a JSON object");
    await unchanged();
  });

  // A request without collectionName is refused with 1802 naming the parameter.
  it("missing collectionName -> 1802", async () => {
    const env = await rawJson(SUBJECT("entities", "insert"), JSON.stringify({ data: [goodRow(51)] }));
    expect(env.code).toBe(1802);
    expect(env.message).toContain("collectionName");
    const { client } = cluster.get();
    await fails(client.call("collections", "describe", {}), 1802, "collectionName");
    await fails(client.call("collections", "create", { dimension: 4 }), 1802, "collectionName");
    await unchanged();
  });

  // An insert without data is a missing required parameter (1802) naming 'data'.
  it("insert without data -> 1802", async () => {
    const env = await rawJson(SUBJECT("entities", "insert"), JSON.stringify({ collectionName: FIXTURE }));
    expect(env.code).toBe(1802);
    expect(env.message).toContain("missing required parameter 'data'");
    const { client } = cluster.get();
    await fails(client.call("entities", "upsert", { collectionName: FIXTURE }), 1802, "'data'");
    await unchanged();
  });

  // An unknown endpoint subject is refused with 1100 naming the subject.
  it("unknown endpoint -> 1100", async () => {
    const env = await rawJson(SUBJECT("entities", "frobnicate"), JSON.stringify({ collectionName: FIXTURE }));
    expect(env.code).toBe(1100);
    expect(env.message).toContain("unknown endpoint 'natsvec.api.v2.entities.frobnicate'");
    await unchanged();
  });
});

describe("names outside the naming rule", () => {
  // Names that can never exist ('a b', '*', '>', dots, non-ASCII, too long) are 1100 naming the rule on every endpoint, never 65535.
  it("bad names in lookups -> 1100, never 65535", async () => {
    const bad = ["a b", "*", ">", "a.b", "..", "ü", "a>b", "x".repeat(300)];
    const cases: [string, string, (w: string) => object, string][] = [
      ["collections", "describe", (w) => ({ collectionName: w }), "collection name"],
      ["collections", "has", (w) => ({ collectionName: w }), "collection name"],
      ["collections", "drop", (w) => ({ collectionName: w }), "collection name"],
      ["collections", "get_stats", (w) => ({ collectionName: w }), "collection name"],
      ["collections", "list", (w) => ({ dbName: w }), "database name"],
      ["collections", "rename", (w) => ({ collectionName: FIXTURE, newCollectionName: w }), "collection name"],
      ["entities", "insert", (w) => ({ collectionName: w, data: [goodRow(90)] }), "collection name"],
      ["entities", "query", (w) => ({ dbName: w, collectionName: FIXTURE, filter: "id >= 0" }), "database name"],
      ["entities", "search", (w) => ({ collectionName: FIXTURE, data: [[1, 0, 0, 0]], partitionNames: [w] }), "partition name"],
      ["partitions", "list", (w) => ({ collectionName: w }), "collection name"],
      ["partitions", "has", (w) => ({ collectionName: FIXTURE, partitionName: w }), "partition name"],
      ["partitions", "create", (w) => ({ collectionName: FIXTURE, partitionName: w }), "partition name"],
      ["aliases", "describe", (w) => ({ aliasName: w }), "alias name"],
      ["aliases", "drop", (w) => ({ aliasName: w }), "alias name"],
      ["aliases", "list", (w) => ({ dbName: w }), "database name"],
      ["databases", "describe", (w) => ({ dbName: w }), "database name"],
      ["databases", "drop", (w) => ({ dbName: w }), "database name"],
      ["databases", "create", (w) => ({ dbName: w }), "database name"],
    ];
    const wrong: string[] = [];
    for (const w of bad)
      for (const [category, action, body, what] of cases) {
        const env = await rawJson(SUBJECT(category, action), JSON.stringify(body(w)));
        const ok = env.code === 1100 && typeof env.message === "string" && env.message.startsWith(what) && /is invalid|is longer than 255/.test(env.message);
        if (!ok) wrong.push(`${category}.${action} ${JSON.stringify(w).slice(0, 12)} -> ${JSON.stringify(env).slice(0, 160)}`);
      }
    expect(wrong).toEqual([]);
    const empty = await rawJson(SUBJECT("collections", "describe"), JSON.stringify({ collectionName: "" }));
    expect(empty).toEqual({ code: 1100, message: "collection name must not be empty" });
    await unchanged();
  });

  // An empty dbName means the default database (as in Milvus), not an error.
  it("empty dbName is the default database", async () => {
    const env = await rawJson(SUBJECT("entities", "query"), JSON.stringify({ dbName: "", collectionName: FIXTURE, outputFields: ["count(*)"] }));
    expect(env).toEqual({ code: 0, data: [{ "count(*)": 10 }] });
    await unchanged();
  });
});

describe("things that do not exist", () => {
  // A collection that does not exist: 100 on insert, search, query and describe.
  it("unknown collection -> 100", async () => {
    const { client } = cluster.get();
    await fails(client.entities.insert({ collectionName: "no_such_coll", data: [goodRow(60)] }), 100, "collection 'no_such_coll' not found");
    await fails(client.entities.search({ collectionName: "no_such_coll", data: [[1, 0, 0, 0]] }), 100, "no_such_coll");
    await fails(client.entities.query({ collectionName: "no_such_coll", filter: "id > 0" }), 100, "no_such_coll");
    await fails(client.collections.describe({ collectionName: "no_such_coll" }), 100, "no_such_coll");
    await unchanged();
  });

  // A partition that does not exist: 200 on insert and on reads.
  it("unknown partition -> 200", async () => {
    const { client } = cluster.get();
    await fails(client.entities.insert({ collectionName: FIXTURE, partitionName: "nope_p", data: [goodRow(61)] }), 200, "partition 'nope_p' not found");
    await fails(client.entities.query({ collectionName: FIXTURE, filter: "id >= 0", partitionNames: ["nope_p"] }), 200, "nope_p");
    await fails(client.entities.search({ collectionName: FIXTURE, data: [[1, 0, 0, 0]], partitionNames: ["nope_p"] }), 200, "nope_p");
    await unchanged();
  });

  // A database that does not exist: 800 on insert, list and describe.
  it("unknown database -> 800", async () => {
    const { client } = cluster.get();
    await fails(client.entities.insert({ dbName: "no_such_db", collectionName: FIXTURE, data: [goodRow(62)] }), 800, "database 'no_such_db' not found");
    await fails(client.collections.list({ dbName: "no_such_db" }), 800, "no_such_db");
    await fails(client.databases.describe({ dbName: "no_such_db" }), 800, "no_such_db");
    await unchanged();
  });

  // An output field that is not in a collection without dynamic field: 1100 naming the field.
  it("unknown output field -> 1100", async () => {
    const { client } = cluster.get();
    await fails(client.entities.query({ collectionName: FIXTURE, filter: "id >= 0", outputFields: ["nope_f"] }), 1100, "output field 'nope_f' does not exist");
    await fails(client.entities.search({ collectionName: FIXTURE, data: [[1, 0, 0, 0]], outputFields: ["nope_f"] }), 1100, "nope_f");
    await fails(client.entities.get({ collectionName: FIXTURE, id: [1], outputFields: ["nope_f"] }), 1100, "nope_f");
    await unchanged();
  });

  // A filter on a field that is neither declared nor dynamic: 1100 naming the field.
  it("filter on a non-existent field -> 1100", async () => {
    const { client } = cluster.get();
    await fails(client.entities.query({ collectionName: FIXTURE, filter: "nope_f > 1" }), 1100, "field 'nope_f' does not exist");
    await fails(client.entities.search({ collectionName: FIXTURE, data: [[1, 0, 0, 0]], filter: "nope_f > 1" }), 1100, "nope_f");
    await fails(client.entities.delete({ collectionName: FIXTURE, filter: "nope_f > 1" }), 1100, "nope_f");
    await unchanged();
  });
});

describe("bad insert data", () => {
  // A vector with the wrong dimension: 1804 on insert naming the row and field.
  it("wrong dim on insert -> 1804", async () => {
    const { client } = cluster.get();
    await fails(client.entities.insert({ collectionName: FIXTURE, data: [{ ...goodRow(70), vec: [1, 2, 3] }] }), 1804, "row 0", "field 'vec'", "dim 4", "got 3");
    await fails(client.entities.insert({ collectionName: FIXTURE, data: [{ ...goodRow(70), vec: new Float32Array(5) }] }), 1804, "dim 4", "got 5");
    await unchanged();
  });

  // NaN and Infinity in an inserted vector (msgpack can carry them): 1804 naming the position.
  it("NaN / Infinity in an inserted vector -> 1804", async () => {
    const { client } = cluster.get();
    await fails(client.entities.insert({ collectionName: FIXTURE, data: [{ ...goodRow(71), vec: new Float32Array([0, NaN, 0, 0]) }] }), 1804, "non-finite", "position 1");
    await fails(client.entities.insert({ collectionName: FIXTURE, data: [{ ...goodRow(71), vec: [0, 0, Infinity, 0] }] }), 1804, "non-finite", "position 2");
    await unchanged();
  });

  // A scalar of the wrong type: 1804 naming the field and the expected type.
  it("wrong scalar type -> 1804", async () => {
    const { client } = cluster.get();
    await fails(client.entities.insert({ collectionName: FIXTURE, data: [{ ...goodRow(72), i32: "seven" }] }), 1804, "field 'i32'", "Int32");
    await fails(client.entities.insert({ collectionName: FIXTURE, data: [{ ...goodRow(72), i32: 2 ** 31 }] }), 1804, "field 'i32'", "Int32");
    await fails(client.entities.insert({ collectionName: FIXTURE, data: [{ ...goodRow(72), s: 12 }] }), 1804, "field 's'", "VarChar");
    await fails(client.entities.insert({ collectionName: FIXTURE, data: [{ ...goodRow(72), id: "x1" }] }), 1804, "field 'id'", "Int64");
    await unchanged();
  });

  // A VarChar longer than max_length: 1804 naming length and limit.
  it("VarChar over max_length -> 1804", async () => {
    const { client } = cluster.get();
    await fails(client.entities.insert({ collectionName: FIXTURE, data: [{ ...goodRow(73), s: "123456789" }] }), 1804, "field 's'", "9 bytes", "max_length 8");
    await unchanged();
  });

  // An Array longer than max_capacity: 1804 naming count and limit.
  it("Array over max_capacity -> 1804", async () => {
    const { client } = cluster.get();
    await fails(client.entities.insert({ collectionName: FIXTURE, data: [{ ...goodRow(74), arr: [1, 2, 3, 4] }] }), 1804, "field 'arr'", "4 elements", "max_capacity 3");
    await unchanged();
  });

  // A field not in the schema of a collection without dynamic field: 1804 naming it.
  it("unknown field in a row -> 1804", async () => {
    const { client } = cluster.get();
    await fails(client.entities.insert({ collectionName: FIXTURE, data: [{ ...goodRow(75), extra: 1 }] }), 1804, "field 'extra' is not in the schema");
    await unchanged();
  });

  // A key that already exists (and one repeated inside the batch): 1806 naming the key, nothing written.
  it("duplicate primary key -> 1806", async () => {
    const { client } = cluster.get();
    await fails(client.entities.insert({ collectionName: FIXTURE, data: [goodRow(80), goodRow(81), goodRow(3)] }), 1806, "3");
    await fails(client.entities.insert({ collectionName: FIXTURE, data: [goodRow(82), goodRow(82)] }), 1806, "82", "more than once");
    await unchanged();
  });

  // 100 rows where only the last is bad: 1804 naming row 99, and none of the 99 good rows is stored.
  it("one bad row at the end of a batch -> 1804, nothing written", async () => {
    const { client } = cluster.get();
    const rows: Record<string, unknown>[] = Array.from({ length: 100 }, (_, i) => goodRow(1000 + i));
    rows[99] = { ...rows[99]!, vec: [1, 2] };
    await fails(client.entities.insert({ collectionName: FIXTURE, data: rows }), 1804, "row 99", "field 'vec'");
    await fails(client.entities.upsert({ collectionName: FIXTURE, data: rows }), 1804, "row 99");
    await unchanged();
  });

  // A request larger than the NATS max payload: the client refuses it at once with 1903; raw nats.js rejects too.
  it("request over max payload -> 1903 quickly, no hang", async () => {
    const { client } = cluster.get();
    const rows = Array.from({ length: 40_000 }, (_, i) => ({ id: 100_000 + i, vec: new Float32Array([i, 1, 2, 3]), i32: i, s: "abcdefgh", arr: [1, 2, 3] }));
    const t0 = Date.now();
    await fails(client.entities.insert({ collectionName: FIXTURE, data: rows }), 1903, "exceeds the NATS max payload");
    expect(Date.now() - t0).toBeLessThan(3_000);
    const big = "x".repeat(1024 * 1024 + 10);
    const t1 = Date.now();
    await expect((async () => nc.request(SUBJECT("entities", "insert"), big, { timeout: 5_000 }))()).rejects.toThrow();
    expect(Date.now() - t1).toBeLessThan(3_000);
    await unchanged();
  });
});

describe("bad read parameters", () => {
  // A query vector of the wrong dimension: 1100 naming both dims.
  it("wrong dim in search -> 1100", async () => {
    const { client } = cluster.get();
    await fails(client.entities.search({ collectionName: FIXTURE, data: [[1, 2, 3]] }), 1100, "dimension 3", "dim 4");
    await unchanged();
  });

  // NaN / Infinity in a query vector: 1100.
  it("NaN / Infinity in a search vector -> 1100", async () => {
    const { client } = cluster.get();
    await fails(client.entities.search({ collectionName: FIXTURE, data: [new Float32Array([0, NaN, 0, 0])] }), 1100, "data[0][1] is not a finite number");
    await fails(client.entities.search({ collectionName: FIXTURE, data: [[0, 0, 0, -Infinity]] }), 1100, "data[0][3] is not a finite number");
    await unchanged();
  });

  // limit / offset out of range, for search and query: 1100 naming the bound.
  it("limit 0, limit 16385, offset -1, limit+offset > 16384 -> 1100", async () => {
    const { client } = cluster.get();
    const q = [[1, 0, 0, 0]];
    await fails(client.entities.search({ collectionName: FIXTURE, data: q, limit: 0 }), 1100, "limit must be in [1, 16384], got 0");
    await fails(client.entities.search({ collectionName: FIXTURE, data: q, limit: 16385 }), 1100, "limit must be in [1, 16384], got 16385");
    await fails(client.entities.search({ collectionName: FIXTURE, data: q, limit: 10, offset: -1 }), 1100, "offset must be >= 0, got -1");
    await fails(client.entities.search({ collectionName: FIXTURE, data: q, limit: 16000, offset: 385 }), 1100, "limit + offset must be <= 16384, got 16385");
    await fails(client.entities.query({ collectionName: FIXTURE, filter: "id >= 0", limit: 0 }), 1100, "limit must be in [1, 16384], got 0");
    await fails(client.entities.query({ collectionName: FIXTURE, filter: "id >= 0", limit: 16385 }), 1100, "got 16385");
    await fails(client.entities.query({ collectionName: FIXTURE, filter: "id >= 0", limit: 5, offset: -1 }), 1100, "offset must be >= 0, got -1");
    await fails(client.entities.query({ collectionName: FIXTURE, filter: "id >= 0", limit: 1, offset: 16384 }), 1100, "limit + offset must be <= 16384, got 16385");
    await unchanged();
  });

  // A guaranteeTs that is not a non-negative int64: 1100 naming guaranteeTs.
  it("guaranteeTs out of int64 range -> 1100", async () => {
    const { client } = cluster.get();
    for (const ts of ["99999999999999999999999", "9223372036854775808", "-5", "abc"]) {
      const env = await rawJson(SUBJECT("entities", "query"), JSON.stringify({ collectionName: FIXTURE, filter: "id >= 0", consistencyLevel: "Session", guaranteeTs: ts }));
      expect(env.code).toBe(1100);
      expect(env.message).toContain("guaranteeTs must be a commitTs");
    }
    await fails(client.entities.query({ collectionName: FIXTURE, filter: "id >= 0", consistencyLevel: "Session", guaranteeTs: 2n ** 64n }), 1100, "guaranteeTs");
    await unchanged();
  });

  // An unknown metric type in searchParams: 1100 listing the supported ones.
  it("unknown metric -> 1100", async () => {
    const { client } = cluster.get();
    await fails(client.entities.search({ collectionName: FIXTURE, data: [[1, 0, 0, 0]], searchParams: { metricType: "HAMMING" } }), 1100, "unknown metric type 'HAMMING'", "L2");
    await unchanged();
  });

  // A filter that does not parse: 1100 with the position of the problem.
  it("malformed filter -> 1100 with position", async () => {
    const { client } = cluster.get();
    await fails(client.entities.query({ collectionName: FIXTURE, filter: "id > " }), 1100, "position");
    await fails(client.entities.query({ collectionName: FIXTURE, filter: "id == (1" }), 1100, "position");
    await fails(client.entities.search({ collectionName: FIXTURE, data: [[1, 0, 0, 0]], filter: "i32 >>> 3" }), 1100, "position");
    await fails(client.entities.delete({ collectionName: FIXTURE, filter: "id in [1, 2" }), 1100, "position");
    await unchanged();
  });
});

describe("bad DDL", () => {
  // Collection names that break the naming rule are refused with 1100 explaining the rule.
  it("bad collection names -> 1100", async () => {
    const { client } = cluster.get();
    await fails(client.collections.create({ collectionName: "1abc", dimension: 4 }), 1100, "collection name '1abc' is invalid");
    await fails(client.collections.create({ collectionName: "a-b", dimension: 4 }), 1100, "collection name 'a-b' is invalid");
    await unchanged();
  });

  // Dimensions outside [2, 32768] are refused with 1100 naming the range.
  it("dim 1 and 40000 -> 1100", async () => {
    const { client } = cluster.get();
    await fails(client.collections.create({ collectionName: "dim_one", dimension: 1 }), 1100, "dimension", "[2, 32768]", "1");
    await fails(client.collections.create({ collectionName: "dim_big", dimension: 40000 }), 1100, "dimension", "[2, 32768]", "40000");
    await fails(
      client.collections.create({
        collectionName: "dim_big2",
        schema: { fields: [{ fieldName: "id", dataType: "Int64", isPrimary: true }, { fieldName: "v", dataType: "FloatVector", elementTypeParams: { dim: 40000 } }] },
      }),
      1100,
      "field 'v': dim",
    );
    await unchanged();
  });

  // An unknown data type in a custom schema is refused with 1100 naming it.
  it("unknown data type -> 1100", async () => {
    const { client } = cluster.get();
    await fails(
      client.collections.create({
        collectionName: "bad_type",
        schema: { fields: [{ fieldName: "id", dataType: "Int64", isPrimary: true }, { fieldName: "x", dataType: "Quaternion" }, { fieldName: "v", dataType: "FloatVector", elementTypeParams: { dim: 4 } }] },
      }),
      1100,
      "unknown data type 'Quaternion'",
    );
    await unchanged();
  });

  // Two primary keys are refused with 1100.
  it("two primary keys -> 1100", async () => {
    const { client } = cluster.get();
    await fails(
      client.collections.create({
        collectionName: "two_pk",
        schema: {
          fields: [
            { fieldName: "id", dataType: "Int64", isPrimary: true },
            { fieldName: "id2", dataType: "Int64", isPrimary: true },
            { fieldName: "v", dataType: "FloatVector", elementTypeParams: { dim: 4 } },
          ],
        },
      }),
      1100,
      "exactly one primary key",
      "found 2",
    );
    await unchanged();
  });

  // A schema without a vector field is refused with 1100.
  it("no vector field -> 1100", async () => {
    const { client } = cluster.get();
    await fails(
      client.collections.create({ collectionName: "no_vec", schema: { fields: [{ fieldName: "id", dataType: "Int64", isPrimary: true }, { fieldName: "x", dataType: "Int32" }] } }),
      1100,
      "FloatVector",
    );
    await unchanged();
  });

  // Creating a collection that exists is refused with AlreadyExists (1807), and its data stays.
  it("create an existing collection -> 1807", async () => {
    const { client } = cluster.get();
    await fails(client.collections.create({ collectionName: FIXTURE, dimension: 8 }), 1807, `collection '${FIXTURE}' already exists`);
    const d = await client.collections.describe({ collectionName: FIXTURE });
    expect(d.fields.find((f: { name: string }) => f.name === "vec").params).toEqual([{ key: "dim", value: "4" }]);
    await unchanged();
  });

  // Dropping a database that still has collections is refused with 1100; the database and its collection stay.
  it("drop a database with collections -> 1100", async () => {
    const { client } = cluster.get();
    await client.databases.create({ dbName: "busy_db" });
    await client.collections.create({ dbName: "busy_db", collectionName: "inside", dimension: 4 });
    await fails(client.databases.drop({ dbName: "busy_db" }), 1100, "database 'busy_db' still has collections", "inside");
    expect(await client.databases.list()).toContain("busy_db");
    expect(await client.collections.list({ dbName: "busy_db" })).toEqual(["inside"]);
    await fails(client.databases.drop({ dbName: "default" }), 1100, "default database cannot be dropped");
    // Clean up so the snapshot's database list is the baseline again.
    await client.collections.drop({ dbName: "busy_db", collectionName: "inside" });
    await client.databases.drop({ dbName: "busy_db" });
    await unchanged();
  });
});
