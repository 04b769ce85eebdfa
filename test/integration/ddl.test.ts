/**
 * Every DDL endpoint through the TypeScript client, each checked by reading
 * the result back (describe, list, has, get, counts), not by trusting the
 * acknowledgement.
 */
import { describe, expect, it } from "vitest";
import { useCluster } from "../harness/cluster.ts";

const cluster = useCluster();

const BIG = 9007199254740993n; // 2^53 + 1: not representable as a JS number
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

const failsWith = async (p: Promise<unknown>, code: number, part: string) => {
  await expect(p).rejects.toMatchObject({ code, message: expect.stringContaining(part) });
};

describe("databases", () => {
  // Databases are created, listed, described and dropped; collections in a non-default db are isolated from default.
  it("create / list / describe / drop and isolation by dbName", async () => {
    const { client, name } = cluster.get();
    const dbName = name("db");
    const coll = name("same");
    expect(await client.databases.list()).not.toContain(dbName);
    await client.databases.create({ dbName, properties: { "database.replica.number": "1" } });
    expect(await client.databases.list()).toContain(dbName);
    const d = await client.databases.describe({ dbName });
    expect(d.dbName).toBe(dbName);
    expect(typeof d.dbID).toBe("number");
    expect(d.properties).toEqual([{ key: "database.replica.number", value: "1" }]);
    await failsWith(client.databases.create({ dbName }), 1807, `database '${dbName}' already exists`);

    // Same collection name in both databases, different dims and contents.
    await client.collections.create({ collectionName: coll, dimension: 2 });
    await client.collections.create({ dbName, collectionName: coll, dimension: 3 });
    await client.entities.insert({ collectionName: coll, data: [{ id: 1, vector: [1, 0] }] });
    await client.entities.insert({ dbName, collectionName: coll, data: [1, 2, 3].map((i) => ({ id: i, vector: [i, 0, 0] })) });
    expect(await client.entities.count({ collectionName: coll })).toBe(1);
    expect(await client.entities.count({ dbName, collectionName: coll })).toBe(3);
    expect(await client.collections.list({ dbName })).toEqual([coll]);
    const inDb = await client.collections.describe({ dbName, collectionName: coll });
    expect(inDb.dbName).toBe(dbName);
    expect(inDb.fields.find((f: { name: string }) => f.name === "vector").params).toEqual([{ key: "dim", value: "3" }]);
    const inDefault = await client.collections.describe({ collectionName: coll });
    expect(inDefault.dbName).toBe("default");
    expect(inDefault.collectionID).not.toBe(inDb.collectionID);
    // A name only in the other db is not visible from default.
    const only = name("only");
    await client.collections.create({ dbName, collectionName: only, dimension: 2 });
    expect(await client.collections.has({ collectionName: only })).toBe(false);
    expect(await client.collections.has({ dbName, collectionName: only })).toBe(true);
    expect(await client.collections.list()).not.toContain(only);
    await failsWith(client.entities.count({ collectionName: only }), 100, `collection '${only}' not found in database 'default'`);

    // Dropping the db's collections then the db leaves default untouched.
    await client.collections.drop({ dbName, collectionName: coll });
    await client.collections.drop({ dbName, collectionName: only });
    await client.databases.drop({ dbName });
    expect(await client.databases.list()).not.toContain(dbName);
    await failsWith(client.databases.describe({ dbName }), 800, `database '${dbName}' not found`);
    await failsWith(client.collections.list({ dbName }), 800, dbName);
    await failsWith(client.databases.drop({ dbName }), 800, dbName);
    expect(await client.entities.count({ collectionName: coll })).toBe(1);
    await client.collections.drop({ collectionName: coll });
  });
});

describe("collections", () => {
  // Quick setup honours every option: metric, VarChar id with max_length, primary/vector names, no dynamic field, shards.
  it("quick setup with every option", async () => {
    const { client, name } = cluster.get();
    const collectionName = name("quick");
    await client.collections.create({
      collectionName,
      dimension: 8,
      metricType: "IP",
      idType: "VarChar",
      autoID: false,
      primaryFieldName: "pk",
      vectorFieldName: "emb",
      params: { max_length: 16, enableDynamicField: false, shardsNum: 2 },
      description: "quick one",
    });
    const d = await client.collections.describe({ collectionName });
    expect(d).toMatchObject({
      collectionName,
      dbName: "default",
      description: "quick one",
      autoId: false,
      enableDynamicField: false,
      shardsNum: 2,
      partitionsNum: 1,
      consistencyLevel: "Strong",
      aliases: [],
      properties: [],
      indexes: [{ fieldName: "emb", indexName: "emb", metricType: "IP", indexType: "AUTOINDEX" }],
    });
    expect(d.fields).toHaveLength(2);
    expect(d.fields[0]).toMatchObject({ name: "pk", type: "VarChar", primaryKey: true, autoId: false, nullable: false, params: [{ key: "max_length", value: "16" }] });
    expect(d.fields[1]).toMatchObject({ name: "emb", type: "FloatVector", primaryKey: false, params: [{ key: "dim", value: "8" }] });

    const e = (i: number) => Float32Array.from({ length: 8 }, (_, j) => (j === i ? 1 : 0));
    await client.entities.insert({ collectionName, data: [0, 1, 2, 3].map((i) => ({ pk: `key-${i}`, emb: e(i) })) });
    // No dynamic field: unknown keys are refused; VarChar id is capped at 16 bytes.
    await failsWith(client.entities.insert({ collectionName, data: [{ pk: "x", emb: e(0), extra: 1 }] }), 1804, "field 'extra' is not in the schema");
    await failsWith(client.entities.insert({ collectionName, data: [{ pk: "x".repeat(17), emb: e(0) }] }), 1804, "max_length 16");
    await failsWith(client.entities.insert({ collectionName, data: [{ pk: 5, emb: e(0) }] }), 1804, "field 'pk'");
    // IP: the query [0,0,3,0,...] is most similar to key-2 (3), then the rest (0).
    const q = new Float32Array(8);
    q[2] = 3;
    const r = await client.entities.search({ collectionName, data: [q], limit: 2 });
    expect(r.data[0]).toEqual({ pk: "key-2", distance: 3 });
    expect(r.data[1]!.distance).toBe(0);
    expect(await client.entities.get({ collectionName, id: ["key-1"] })).toEqual([{ pk: "key-1", emb: e(1) }]);
    expect(await client.entities.count({ collectionName })).toBe(4);
  });

  // Quick setup with autoID: describe says so, ids are allocated, and a given id is refused.
  it("quick setup with autoID", async () => {
    const { client, name } = cluster.get();
    const collectionName = name("auto");
    await client.collections.create({ collectionName, dimension: 2, autoID: true, primaryFieldName: "rid", metricType: "L2" });
    const d = await client.collections.describe({ collectionName });
    expect(d.autoId).toBe(true);
    expect(d.enableDynamicField).toBe(true);
    expect(d.fields[0]).toMatchObject({ name: "rid", type: "Int64", primaryKey: true, autoId: true });
    const res = await client.entities.insert({ collectionName, data: [{ vector: [1, 2] }, { vector: [3, 4], tag: "dyn" }] });
    expect(res.insertCount).toBe(2);
    expect(res.insertIds.every((x) => typeof x === "bigint")).toBe(true);
    const got = await client.entities.get({ collectionName, id: res.insertIds, outputFields: ["vector", "tag"] });
    expect(got).toEqual([
      { rid: res.insertIds[0], vector: new Float32Array([1, 2]) },
      { rid: res.insertIds[1], vector: new Float32Array([3, 4]), tag: "dyn" },
    ]);
    await failsWith(client.entities.insert({ collectionName, data: [{ rid: 5, vector: [1, 1] }] }), 1804, "autoID primary key");
  });

  // A custom schema with every data type, nullable fields and defaults: a row reads back exactly via get.
  it("custom schema with every type round-trips exactly", async () => {
    const { client, name } = cluster.get();
    const collectionName = name("custom");
    await client.collections.create({
      collectionName,
      description: "all types",
      schema: {
        enableDynamicField: false,
        fields: [
          { fieldName: "id", dataType: "Int64", isPrimary: true },
          { fieldName: "b", dataType: "Bool" },
          { fieldName: "i8", dataType: "Int8" },
          { fieldName: "i16", dataType: "Int16" },
          { fieldName: "i32", dataType: "Int32" },
          { fieldName: "i64", dataType: "Int64" },
          { fieldName: "f", dataType: "Float" },
          { fieldName: "d", dataType: "Double" },
          { fieldName: "s", dataType: "VarChar", elementTypeParams: { max_length: 32 } },
          { fieldName: "j", dataType: "JSON" },
          { fieldName: "ai", dataType: "Array", elementDataType: "Int64", elementTypeParams: { max_capacity: 4 } },
          { fieldName: "as", dataType: "Array", elementDataType: "VarChar", elementTypeParams: { max_capacity: 3, max_length: 10 } },
          { fieldName: "v", dataType: "FloatVector", elementTypeParams: { dim: 4 } },
          { fieldName: "n_i32", dataType: "Int32", nullable: true },
          { fieldName: "n_s", dataType: "VarChar", elementTypeParams: { max_length: 10 }, nullable: true },
          { fieldName: "n_j", dataType: "JSON", nullable: true },
          { fieldName: "n_ai", dataType: "Array", elementDataType: "Int64", elementTypeParams: { max_capacity: 2 }, nullable: true },
          { fieldName: "def_i64", dataType: "Int64", defaultValue: "9007199254740993" },
          { fieldName: "def_s", dataType: "VarChar", elementTypeParams: { max_length: 10 }, defaultValue: "dflt" },
          { fieldName: "def_b", dataType: "Bool", defaultValue: true },
          { fieldName: "def_d", dataType: "Double", defaultValue: 2.5 },
          { fieldName: "def_i16", dataType: "Int16", defaultValue: -7, nullable: true },
        ],
      },
      indexParams: [{ fieldName: "v", indexName: "v_idx", metricType: "L2", indexType: "HNSW", params: { M: 16, efConstruction: 64 } }],
      params: { shardsNum: 3, consistencyLevel: "Bounded" },
    });

    const d = await client.collections.describe({ collectionName });
    expect(d).toMatchObject({
      collectionName,
      description: "all types",
      autoId: false,
      enableDynamicField: false,
      shardsNum: 3,
      consistencyLevel: "Bounded",
      indexes: [{ fieldName: "v", indexName: "v_idx", metricType: "L2", indexType: "HNSW" }],
    });
    const byName = Object.fromEntries(d.fields.map((f: { name: string }) => [f.name, f]));
    expect(d.fields.map((f: { name: string; type: string }) => `${f.name}:${f.type}`)).toEqual([
      "id:Int64", "b:Bool", "i8:Int8", "i16:Int16", "i32:Int32", "i64:Int64", "f:Float", "d:Double", "s:VarChar", "j:JSON",
      "ai:Array", "as:Array", "v:FloatVector", "n_i32:Int32", "n_s:VarChar", "n_j:JSON", "n_ai:Array",
      "def_i64:Int64", "def_s:VarChar", "def_b:Bool", "def_d:Double", "def_i16:Int16",
    ]);
    expect(byName.id).toMatchObject({ primaryKey: true, autoId: false, nullable: false });
    expect(byName.v.params).toEqual([{ key: "dim", value: "4" }]);
    expect(byName.s.params).toEqual([{ key: "max_length", value: "32" }]);
    expect(byName.ai).toMatchObject({ elementType: "Int64", params: [{ key: "max_capacity", value: "4" }] });
    expect(byName.as).toMatchObject({ elementType: "VarChar", params: [{ key: "max_length", value: "10" }, { key: "max_capacity", value: "3" }] });
    expect(byName.n_i32.nullable).toBe(true);
    expect(byName.b.nullable).toBe(false);
    expect(byName.def_i64.defaultValue).toBe(BIG);
    expect(byName.def_s.defaultValue).toBe("dflt");
    expect(byName.def_b.defaultValue).toBe(true);
    expect(byName.def_d.defaultValue).toBe(2.5);

    const full = {
      id: BIG,
      b: true,
      i8: -128,
      i16: 32767,
      i32: -2147483648,
      i64: INT64_MIN,
      f: 0.1,
      d: 0.1,
      s: "héllo wörld ✓",
      j: { a: [1, "x", { b: null }], c: true, n: -2.5 },
      ai: [BIG, INT64_MAX, -1n],
      as: ["a", "", "ccc"],
      v: new Float32Array([0.25, -1, 3.5, 0]),
      n_i32: 42,
      n_s: "here",
      n_j: [1, 2],
      n_ai: [7n],
      def_i64: 5n,
      def_s: "given",
      def_b: false,
      def_d: -1.25,
      def_i16: 300,
    };
    // Row 2: every nullable field null and every default field omitted.
    const sparse = {
      id: BIG + 1n,
      b: false,
      i8: 0,
      i16: 0,
      i32: 0,
      i64: INT64_MAX,
      f: 1.5,
      d: Number.MAX_VALUE,
      s: "",
      j: "just a string",
      ai: [],
      as: ["z"],
      v: [1, 2, 3, 4],
      n_i32: null,
      n_s: null,
      n_j: null,
      n_ai: null,
    };
    // Row 3: null given for default fields applies the default (def_i16 is nullable AND has a default).
    const nulledDefaults = { ...sparse, id: BIG + 2n, def_i64: null, def_s: null, def_b: null, def_d: null, def_i16: null };
    const ins = await client.entities.insert({ collectionName, data: [full, sparse, nulledDefaults] });
    expect(ins.insertIds).toEqual([BIG, BIG + 1n, BIG + 2n]);

    const got = await client.entities.get({ collectionName, id: [BIG, BIG + 1n, BIG + 2n], consistencyLevel: "Strong" });
    const defaults = { def_i64: BIG, def_s: "dflt", def_b: true, def_d: 2.5, def_i16: -7 };
    expect(got).toEqual([
      { ...full, f: Math.fround(0.1) },
      { ...sparse, v: new Float32Array([1, 2, 3, 4]), ...defaults },
      { ...sparse, id: BIG + 2n, v: new Float32Array([1, 2, 3, 4]), ...defaults },
    ]);
    // Exactness of the int64 values beyond 2^53, checked as decimal text.
    expect(String(got[0]!.id)).toBe("9007199254740993");
    expect(String(got[1]!.def_i64)).toBe("9007199254740993");
    expect((got[0]!.ai as bigint[]).map(String)).toEqual(["9007199254740993", "9223372036854775807", "-1"]);
    // Filters see the same exact values.
    const viaFilter = await client.entities.query({ collectionName, filter: "def_i64 == 9007199254740993", outputFields: ["id"], consistencyLevel: "Strong" });
    expect(viaFilter.map((r) => r.id)).toEqual([BIG + 1n, BIG + 2n]);
    const nulls = await client.entities.query({ collectionName, filter: "n_i32 is null", outputFields: ["id"], consistencyLevel: "Strong" });
    expect(nulls.map((r) => r.id)).toEqual([BIG + 1n, BIG + 2n]);
  });

  // list / has reflect create and drop; a dropped name is reusable and starts empty.
  it("list, has, drop, and reuse of a dropped name", async () => {
    const { client, name } = cluster.get();
    const collectionName = name("dropme");
    expect(await client.collections.has({ collectionName })).toBe(false);
    await client.collections.create({ collectionName, dimension: 2 });
    expect(await client.collections.has({ collectionName })).toBe(true);
    expect(await client.collections.list()).toContain(collectionName);
    await client.entities.insert({ collectionName, data: [1, 2, 3].map((i) => ({ id: i, vector: [i, 1] })) });
    expect(await client.entities.count({ collectionName })).toBe(3);
    await client.collections.drop({ collectionName });
    expect(await client.collections.has({ collectionName })).toBe(false);
    expect(await client.collections.list()).not.toContain(collectionName);
    await failsWith(client.collections.describe({ collectionName }), 100, `collection '${collectionName}' not found`);
    await failsWith(client.collections.drop({ collectionName }), 100, collectionName);
    await failsWith(client.collections.has({ dbName: "no_such_db", collectionName }), 800, "no_such_db");

    // Reuse with a different dim: no old rows, old ids insertable again.
    await client.collections.create({ collectionName, dimension: 3 });
    expect(await client.entities.count({ collectionName })).toBe(0);
    expect(await client.entities.query({ collectionName, filter: "id >= 0" })).toEqual([]);
    expect(await client.entities.get({ collectionName, id: [1, 2, 3] })).toEqual([]);
    const s = await client.entities.search({ collectionName, data: [[1, 1, 1]], limit: 10 });
    expect(s.topks).toEqual([0]);
    await client.entities.insert({ collectionName, data: [{ id: 1, vector: [1, 1, 1] }] });
    expect(await client.entities.count({ collectionName })).toBe(1);
    const d = await client.collections.describe({ collectionName });
    expect(d.fields.find((f: { name: string }) => f.name === "vector").params).toEqual([{ key: "dim", value: "3" }]);
  });

  // rename moves the data to the new name (also across databases); the old name is gone (100).
  it("rename", async () => {
    const { client, name } = cluster.get();
    const oldName = name("old");
    const newName = name("new");
    await client.collections.create({ collectionName: oldName, dimension: 2, params: { shardsNum: 2 } });
    await client.entities.insert({ collectionName: oldName, data: [1, 2, 3, 4, 5].map((i) => ({ id: i, vector: [i, 0], tag: `t${i}` })) });
    const before = await client.collections.describe({ collectionName: oldName });
    await client.collections.rename({ collectionName: oldName, newCollectionName: newName });
    expect(await client.collections.has({ collectionName: oldName })).toBe(false);
    expect(await client.collections.has({ collectionName: newName })).toBe(true);
    const list = await client.collections.list();
    expect(list).toContain(newName);
    expect(list).not.toContain(oldName);
    await failsWith(client.entities.count({ collectionName: oldName }), 100, oldName);
    await failsWith(client.collections.describe({ collectionName: oldName }), 100, oldName);
    expect(await client.entities.count({ collectionName: newName })).toBe(5);
    expect(await client.entities.get({ collectionName: newName, id: [3], outputFields: ["tag"] })).toEqual([{ id: 3n, tag: "t3" }]);
    const after = await client.collections.describe({ collectionName: newName });
    expect(after.collectionID).toBe(before.collectionID);
    expect(after.collectionName).toBe(newName);
    // Writes under the new name land in the same data.
    await client.entities.insert({ collectionName: newName, data: [{ id: 6, vector: [6, 0] }] });
    expect(await client.entities.count({ collectionName: newName })).toBe(6);
    // The old name can be created afresh.
    await client.collections.create({ collectionName: oldName, dimension: 2 });
    expect(await client.entities.count({ collectionName: oldName })).toBe(0);
    await failsWith(client.collections.rename({ collectionName: oldName, newCollectionName: newName }), 1807, `collection '${newName}' already exists`);

    // Across databases.
    const dbName = name("rdb");
    await client.databases.create({ dbName });
    await client.collections.rename({ collectionName: newName, newCollectionName: "moved", newDbName: dbName });
    expect(await client.collections.has({ collectionName: newName })).toBe(false);
    expect(await client.collections.list({ dbName })).toEqual(["moved"]);
    expect(await client.entities.count({ dbName, collectionName: "moved" })).toBe(6);
    expect((await client.collections.describe({ dbName, collectionName: "moved" })).dbName).toBe(dbName);
  });

  // alter_properties adds properties that describe shows; get_stats counts live rows.
  it("alter_properties and get_stats", async () => {
    const { client, name } = cluster.get();
    const collectionName = name("props");
    await client.collections.create({ collectionName, dimension: 2, params: { shardsNum: 2 } });
    expect((await client.collections.describe({ collectionName })).properties).toEqual([]);
    await client.collections.alterProperties({ collectionName, properties: { "collection.ttl.seconds": 3600, "mmap.enabled": true } });
    const props = (await client.collections.describe({ collectionName })).properties as { key: string; value: string }[];
    expect([...props].sort((a, b) => a.key.localeCompare(b.key))).toEqual([
      { key: "collection.ttl.seconds", value: "3600" },
      { key: "mmap.enabled", value: "true" },
    ]);
    await client.collections.alterProperties({ collectionName, properties: { "collection.ttl.seconds": 60 } });
    const props2 = (await client.collections.describe({ collectionName })).properties as { key: string; value: string }[];
    expect(props2.find((p) => p.key === "collection.ttl.seconds")!.value).toBe("60");
    expect(props2).toHaveLength(2);
    await failsWith(client.collections.alterProperties({ collectionName: "no_such_coll", properties: { a: 1 } }), 100, "no_such_coll");

    expect(await client.collections.getStats({ collectionName })).toEqual({ rowCount: 0 });
    await client.entities.insert({ collectionName, data: Array.from({ length: 25 }, (_, i) => ({ id: i, vector: [i, 1] })) });
    expect(await client.collections.getStats({ collectionName })).toEqual({ rowCount: 25 });
    await client.entities.delete({ collectionName, filter: "id < 5" });
    expect(await client.collections.getStats({ collectionName })).toEqual({ rowCount: 20 });
    await failsWith(client.collections.getStats({ collectionName: "no_such_coll" }), 100, "no_such_coll");
  });

  // load / release / get_load_state answer for existing collections and partitions and refuse missing ones.
  it("load, release, get_load_state", async () => {
    const { client, name } = cluster.get();
    const collectionName = name("load");
    await client.collections.create({ collectionName, dimension: 2 });
    await client.entities.insert({ collectionName, data: [{ id: 1, vector: [1, 1] }] });
    expect(await client.collections.load({ collectionName })).toEqual({});
    expect(await client.collections.getLoadState({ collectionName })).toEqual({ loadState: "LoadStateLoaded", loadProgress: 100 });
    expect(await client.collections.getLoadState({ collectionName, partitionNames: ["_default"] })).toEqual({ loadState: "LoadStateLoaded", loadProgress: 100 });
    expect(await client.collections.release({ collectionName })).toEqual({});
    await client.collections.load({ collectionName });
    expect(await client.entities.count({ collectionName })).toBe(1);
    await failsWith(client.collections.load({ collectionName: "no_such_coll" }), 100, "no_such_coll");
    await failsWith(client.collections.release({ collectionName: "no_such_coll" }), 100, "no_such_coll");
    await failsWith(client.collections.getLoadState({ collectionName: "no_such_coll" }), 100, "no_such_coll");
    await failsWith(client.collections.getLoadState({ collectionName, partitionNames: ["nope_p"] }), 200, "nope_p");
  });
});

describe("partitions", () => {
  // Partitions are created, listed, checked, counted, loaded/released and dropped, with their rows.
  it("create / list / has / get_stats / load / release / drop", async () => {
    const { client, name } = cluster.get();
    const collectionName = name("parts");
    await client.collections.create({ collectionName, dimension: 2, params: { shardsNum: 2 } });
    expect(await client.partitions.list({ collectionName })).toEqual(["_default"]);
    await client.partitions.create({ collectionName, partitionName: "p1" });
    await client.partitions.create({ collectionName, partitionName: "p2" });
    expect(await client.partitions.list({ collectionName })).toEqual(["_default", "p1", "p2"]);
    expect((await client.collections.describe({ collectionName })).partitionsNum).toBe(3);
    expect(await client.partitions.has({ collectionName, partitionName: "p1" })).toBe(true);
    expect(await client.partitions.has({ collectionName, partitionName: "nope_p" })).toBe(false);
    await failsWith(client.partitions.create({ collectionName, partitionName: "p1" }), 1807, "partition 'p1' already exists");
    await failsWith(client.partitions.create({ collectionName, partitionName: "bad-name" }), 1100, "partition name 'bad-name' is invalid");

    await client.entities.insert({ collectionName, data: [1, 2, 3].map((i) => ({ id: i, vector: [i, 0] })) });
    await client.entities.insert({ collectionName, partitionName: "p1", data: [10, 11, 12, 13].map((i) => ({ id: i, vector: [i, 0] })) });
    await client.entities.insert({ collectionName, partitionName: "p2", data: [20, 21].map((i) => ({ id: i, vector: [i, 0] })) });
    expect(await client.partitions.getStats({ collectionName, partitionName: "_default" })).toEqual({ rowCount: 3 });
    expect(await client.partitions.getStats({ collectionName, partitionName: "p1" })).toEqual({ rowCount: 4 });
    expect(await client.partitions.getStats({ collectionName, partitionName: "p2" })).toEqual({ rowCount: 2 });
    expect(await client.collections.getStats({ collectionName })).toEqual({ rowCount: 9 });
    await failsWith(client.partitions.getStats({ collectionName, partitionName: "nope_p" }), 200, "nope_p");
    const inP2 = await client.entities.query({ collectionName, filter: "id >= 0", partitionNames: ["p2"] });
    expect(inP2.map((r) => r.id)).toEqual([20n, 21n]);
    const s = await client.entities.search({ collectionName, data: [[11, 0]], partitionNames: ["p1", "p2"], limit: 3, searchParams: { metricType: "COSINE" } });
    expect(s.data.every((r) => (r.id as bigint) >= 10n)).toBe(true);

    expect(await client.partitions.load({ collectionName, partitionNames: ["p1", "p2"] })).toEqual({});
    expect(await client.partitions.release({ collectionName, partitionNames: ["p1"] })).toEqual({});
    await failsWith(client.partitions.load({ collectionName, partitionNames: ["nope_p"] }), 200, "nope_p");
    await failsWith(client.partitions.release({ collectionName, partitionNames: ["nope_p"] }), 200, "nope_p");

    await client.partitions.drop({ collectionName, partitionName: "p1" });
    expect(await client.partitions.list({ collectionName })).toEqual(["_default", "p2"]);
    expect(await client.partitions.has({ collectionName, partitionName: "p1" })).toBe(false);
    expect(await client.entities.count({ collectionName })).toBe(5);
    expect(await client.entities.get({ collectionName, id: [10, 20] })).toEqual([{ id: 20n, vector: new Float32Array([20, 0]) }]);
    await failsWith(client.partitions.drop({ collectionName, partitionName: "p1" }), 200, "partition 'p1' not found");
    await failsWith(client.partitions.drop({ collectionName, partitionName: "_default" }), 1100, "_default partition cannot be dropped");
    await failsWith(client.partitions.list({ collectionName: "no_such_coll" }), 100, "no_such_coll");
  });
});

describe("aliases", () => {
  // Aliases are created, described, listed, altered and dropped; reads and writes through an alias reach the target.
  it("create / describe / list / alter / drop", async () => {
    const { client, name } = cluster.get();
    const a = name("ca");
    const b = name("cb");
    const alias = name("al");
    await client.collections.create({ collectionName: a, dimension: 2, metricType: "L2" });
    await client.collections.create({ collectionName: b, dimension: 2, metricType: "L2" });
    await client.entities.insert({ collectionName: a, data: [{ id: 1, vector: [1, 1] }] });
    await client.entities.insert({ collectionName: b, data: [{ id: 2, vector: [2, 2] }] });

    await client.aliases.create({ aliasName: alias, collectionName: a });
    expect(await client.aliases.describe({ aliasName: alias })).toEqual({ aliasName: alias, collectionName: a, dbName: "default" });
    expect(await client.aliases.list()).toContain(alias);
    expect(await client.aliases.list({ collectionName: a })).toEqual([alias]);
    expect(await client.aliases.list({ collectionName: b })).toEqual([]);
    expect((await client.collections.describe({ collectionName: a })).aliases).toEqual([alias]);
    const viaA = await client.entities.search({ collectionName: alias, data: [[0, 0]], limit: 5 });
    expect(viaA.data).toEqual([{ id: 1n, distance: 2 }]);
    await client.entities.insert({ collectionName: alias, data: [{ id: 3, vector: [3, 3] }] });
    expect(await client.entities.count({ collectionName: a })).toBe(2);

    await failsWith(client.aliases.create({ aliasName: alias, collectionName: b }), 1807, `alias '${alias}' already exists`);
    await failsWith(client.aliases.create({ aliasName: b, collectionName: a }), 1807, `'${b}' is a collection name`);
    await failsWith(client.collections.create({ collectionName: alias, dimension: 2 }), 1807, `'${alias}' is already an alias`);
    await failsWith(client.collections.drop({ collectionName: a }), 1100, `has aliases (${alias})`);

    await client.aliases.alter({ aliasName: alias, collectionName: b });
    expect(await client.aliases.describe({ aliasName: alias })).toEqual({ aliasName: alias, collectionName: b, dbName: "default" });
    expect(await client.aliases.list({ collectionName: a })).toEqual([]);
    expect(await client.aliases.list({ collectionName: b })).toEqual([alias]);
    const viaB = await client.entities.search({ collectionName: alias, data: [[0, 0]], limit: 5 });
    expect(viaB.data).toEqual([{ id: 2n, distance: 8 }]);

    await client.aliases.drop({ aliasName: alias });
    await failsWith(client.aliases.describe({ aliasName: alias }), 1600, `alias '${alias}' not found`);
    expect(await client.aliases.list()).not.toContain(alias);
    await failsWith(client.entities.count({ collectionName: alias }), 100, alias);
    // The target collections are untouched.
    expect(await client.entities.count({ collectionName: a })).toBe(2);
    expect(await client.entities.count({ collectionName: b })).toBe(1);
    await client.collections.drop({ collectionName: a });
  });

  // Alias errors: target missing (100), alias missing (1600) on describe, alter and drop.
  it("missing targets and missing aliases", async () => {
    const { client, name } = cluster.get();
    const alias = name("al");
    await failsWith(client.aliases.create({ aliasName: alias, collectionName: "no_such_coll" }), 100, "no_such_coll");
    await failsWith(client.aliases.describe({ aliasName: alias }), 1600, `alias '${alias}' not found`);
    await failsWith(client.aliases.drop({ aliasName: alias }), 1600, alias);
    const c = name("c");
    await client.collections.create({ collectionName: c, dimension: 2 });
    await failsWith(client.aliases.alter({ aliasName: alias, collectionName: c }), 1600, alias);
    await failsWith(client.aliases.create({ aliasName: "bad-alias", collectionName: c }), 1100, "alias name 'bad-alias' is invalid");
    expect(await client.aliases.list({ collectionName: c })).toEqual([]);
  });
});
