/**
 * Public DDL endpoints: databases, collections, partitions, aliases. Reads
 * come from the catalog; writes go to rootcoord.
 */
import * as Api from "../../schemas/api.ts";
import { DEFAULT_DATABASE, DYNAMIC_FIELD, type FieldSchema } from "../../schemas/collection.ts";
import { checkName, normalizeCreate } from "../../schemas/collectionCreate.ts";
import { AliasNotFound, InvalidParameter, MissingParameter } from "../../schemas/errors.ts";
import type { CollectionRecord } from "../../schemas/meta.ts";
import { decodeRequest } from "../../runtime/validate.ts";
import type { ReplyBody } from "../../runtime/host.ts";
import { SHARD_VERBS } from "../streamingnode/protocol.ts";
import { readAll } from "./fanout.ts";
import { loadState } from "./indexes.ts";
import { partitionId, type ProxyContext } from "./context.ts";

export type Handler = (body: unknown, ctx: ProxyContext, deadlineMs: number) => Promise<ReplyBody>;

const ok = (data: unknown = {}): ReplyBody => ({ data });
const db = (b: { dbName?: string }) => b.dbName ?? DEFAULT_DATABASE;
const kv = (o: Readonly<Record<string, unknown>>) => Object.entries(o).map(([key, value]) => ({ key, value: String(value) }));

const describeField = (f: FieldSchema) => ({
  name: f.name,
  type: f.dataType,
  fieldID: f.fieldId,
  primaryKey: f.isPrimary,
  autoId: f.autoId,
  description: f.description,
  nullable: f.nullable,
  partitionKey: false,
  clusteringKey: false,
  ...(f.defaultValue !== undefined ? { defaultValue: f.defaultValue } : {}),
  ...(f.elementType ? { elementType: f.elementType } : {}),
  params: [
    ...(f.dim !== undefined ? [{ key: "dim", value: String(f.dim) }] : []),
    ...(f.maxLength !== undefined ? [{ key: "max_length", value: String(f.maxLength) }] : []),
    ...(f.maxCapacity !== undefined ? [{ key: "max_capacity", value: String(f.maxCapacity) }] : []),
  ],
});

const describeCollection = async (ctx: ProxyContext, rec: CollectionRecord) => {
  const aliases = (await ctx.cache.catalog.aliases(rec.db)).filter((a) => a.collectionId === rec.id).map((a) => a.alias);
  return {
    collectionName: rec.name,
    collectionID: rec.id,
    dbName: rec.db,
    description: rec.description,
    autoId: rec.schema.fields.some((f) => f.autoId),
    enableDynamicField: rec.schema.enableDynamicField,
    fields: rec.schema.fields.filter((f) => f.name !== DYNAMIC_FIELD).map(describeField),
    indexes: rec.indexes.map((i) => ({ fieldName: i.fieldName, indexName: i.indexName, metricType: i.metricType, indexType: i.indexType })),
    aliases,
    load: (await loadState(ctx, rec)).loadState,
    shardsNum: rec.shardsNum,
    partitionsNum: rec.partitions.length,
    consistencyLevel: rec.consistencyLevel,
    properties: kv(rec.properties),
    createTime: rec.createdTs,
  };
};

/** Exact live rows (after deletes and upserts) over growing and sealed data: a Strong count(*). */
const countRows = async (ctx: ProxyContext, rec: CollectionRecord, partitionIds: number[] | undefined, deadlineMs: number) => {
  const guaranteeTs = await ctx.guaranteeTs(rec, "Strong", undefined);
  const pages = await readAll(ctx, rec, partitionIds, deadlineMs, { outputFields: [], k: 0, countOnly: true, guaranteeTs });
  return pages.reduce((n, p) => n + p.count, 0);
};

export const ddlHandlers: Record<string, Handler> = {
  // ---- databases
  "databases.create": async (body, ctx) => {
    const b = decodeRequest(Api.DatabaseName, body);
    checkName("database", b.dbName);
    const properties = Object.fromEntries(Object.entries(b.properties ?? {}).map(([k, v]) => [k, String(v)]));
    await ctx.rootcoord("createDatabase", { db: b.dbName, properties });
    return ok();
  },
  "databases.drop": async (body, ctx) => {
    const b = decodeRequest(Api.DatabaseName, body);
    await ctx.rootcoord("dropDatabase", { db: b.dbName });
    return ok();
  },
  "databases.list": async (_body, ctx) => ok((await ctx.cache.catalog.databases()).map((d) => d.name).sort()),
  "databases.describe": async (body, ctx) => {
    const b = decodeRequest(Api.DatabaseName, body);
    const d = await ctx.cache.catalog.database(b.dbName);
    return ok({ dbName: d.name, dbID: d.id, properties: kv(d.properties) });
  },
  "databases.alter": async (body, ctx) => {
    const b = decodeRequest(Api.DatabaseName, body);
    const properties = Object.fromEntries(Object.entries(b.properties ?? {}).map(([k, v]) => [k, String(v)]));
    await ctx.rootcoord("alterDatabase", { db: b.dbName, properties });
    return ok();
  },

  // ---- collections
  "collections.create": async (body, ctx) => {
    const b = decodeRequest(Api.CreateCollection, body);
    const spec = normalizeCreate(b);
    await ctx.rootcoord("createCollection", { db: db(b), name: b.collectionName, spec });
    return ok();
  },
  "collections.describe": async (body, ctx) => {
    const b = decodeRequest(Api.CollectionOnly, body);
    return ok(await describeCollection(ctx, await ctx.cache.resolve(b.dbName, b.collectionName, true)));
  },
  "collections.list": async (body, ctx) => {
    const b = decodeRequest(Api.DatabaseOnly, body);
    await ctx.cache.catalog.database(db(b));
    return ok(await ctx.cache.catalog.collectionNames(db(b)));
  },
  "collections.has": async (body, ctx) => {
    const b = decodeRequest(Api.CollectionOnly, body);
    await ctx.cache.catalog.database(db(b));
    return ok({ has: (await ctx.cache.catalog.collectionByName(db(b), b.collectionName)) !== undefined });
  },
  "collections.drop": async (body, ctx) => {
    const b = decodeRequest(Api.CollectionOnly, body);
    await ctx.rootcoord("dropCollection", { db: db(b), name: b.collectionName });
    return ok();
  },
  "collections.rename": async (body, ctx) => {
    const b = decodeRequest(Api.RenameCollection, body);
    await ctx.rootcoord("renameCollection", { db: db(b), name: b.collectionName, newDb: b.newDbName ?? db(b), newName: b.newCollectionName });
    return ok();
  },
  "collections.alter_properties": async (body, ctx) => {
    const b = decodeRequest(Api.AlterCollectionProperties, body);
    const properties = Object.fromEntries(Object.entries(b.properties).map(([k, v]) => [k, String(v)]));
    await ctx.rootcoord("alterCollection", { db: db(b), name: b.collectionName, properties });
    return ok();
  },
  "collections.get_stats": async (body, ctx, deadlineMs) => {
    const b = decodeRequest(Api.CollectionOnly, body);
    const rec = await ctx.cache.resolve(b.dbName, b.collectionName);
    return ok({ rowCount: await countRows(ctx, rec, undefined, deadlineMs) });
  },
  "collections.load": async (body, ctx) => {
    const b = decodeRequest(Api.CollectionOnly, body);
    await ctx.rootcoord("setLoad", { db: db(b), name: b.collectionName, loaded: true });
    return ok();
  },
  "collections.release": async (body, ctx) => {
    const b = decodeRequest(Api.CollectionOnly, body);
    await ctx.rootcoord("setLoad", { db: db(b), name: b.collectionName, loaded: false });
    return ok();
  },
  "collections.get_load_state": async (body, ctx) => {
    const b = decodeRequest(Api.PartitionsRequest, body);
    const rec = await ctx.cache.resolve(b.dbName, b.collectionName, true);
    for (const p of b.partitionNames ?? []) partitionId(rec, p);
    return ok(await loadState(ctx, rec, true));
  },
  "collections.compact": async (body, ctx) => {
    const b = decodeRequest(Api.CollectionOnly, body);
    const rec = await ctx.cache.resolve(b.dbName, b.collectionName);
    const r = await ctx.client.call(ctx.h.names.role("datacoord", "any", "compact"), { collectionId: rec.id }, { timeoutMs: ctx.config.requestTimeoutMs });
    return ok(r.data);
  },
  "collections.flush": async (body, ctx, deadlineMs) => {
    const b = decodeRequest(Api.CollectionOnly, body);
    const rec = await ctx.cache.resolve(b.dbName, b.collectionName);
    await ctx.allShards(rec, SHARD_VERBS.flush, { collectionId: rec.id }, deadlineMs);
    return ok();
  },

  // ---- partitions
  "partitions.create": async (body, ctx) => {
    const b = decodeRequest(Api.PartitionRequest, body);
    await ctx.rootcoord("createPartition", { db: db(b), name: b.collectionName, partitionName: b.partitionName });
    return ok();
  },
  "partitions.drop": async (body, ctx) => {
    const b = decodeRequest(Api.PartitionRequest, body);
    await ctx.rootcoord("dropPartition", { db: db(b), name: b.collectionName, partitionName: b.partitionName });
    return ok();
  },
  "partitions.list": async (body, ctx) => {
    const b = decodeRequest(Api.CollectionOnly, body);
    return ok((await ctx.cache.catalog.resolve(db(b), b.collectionName)).partitions.map((p) => p.name));
  },
  "partitions.has": async (body, ctx) => {
    const b = decodeRequest(Api.PartitionRequest, body);
    const rec = await ctx.cache.catalog.resolve(db(b), b.collectionName);
    return ok({ has: rec.partitions.some((p) => p.name === b.partitionName) });
  },
  "partitions.get_stats": async (body, ctx, deadlineMs) => {
    const b = decodeRequest(Api.PartitionRequest, body);
    const rec = await ctx.cache.catalog.resolve(db(b), b.collectionName);
    const pid = partitionId(rec, b.partitionName);
    return ok({ rowCount: await countRows(ctx, rec, [pid], deadlineMs) });
  },
  "partitions.load": async (body, ctx) => {
    const b = decodeRequest(Api.PartitionsRequest, body);
    if (!b.partitionNames?.length) throw new MissingParameter({ message: "missing required parameter 'partitionNames'" });
    await ctx.rootcoord("setLoad", { db: db(b), name: b.collectionName, loaded: true, partitionNames: [...b.partitionNames] });
    return ok();
  },
  "partitions.release": async (body, ctx) => {
    const b = decodeRequest(Api.PartitionsRequest, body);
    if (!b.partitionNames?.length) throw new MissingParameter({ message: "missing required parameter 'partitionNames'" });
    await ctx.rootcoord("setLoad", { db: db(b), name: b.collectionName, loaded: false, partitionNames: [...b.partitionNames] });
    return ok();
  },

  // ---- aliases
  "aliases.create": async (body, ctx) => {
    const b = decodeRequest(Api.AliasWithCollection, body);
    await ctx.rootcoord("createAlias", { db: db(b), alias: b.aliasName, collectionName: b.collectionName });
    return ok();
  },
  "aliases.alter": async (body, ctx) => {
    const b = decodeRequest(Api.AliasWithCollection, body);
    await ctx.rootcoord("alterAlias", { db: db(b), alias: b.aliasName, collectionName: b.collectionName });
    return ok();
  },
  "aliases.drop": async (body, ctx) => {
    const b = decodeRequest(Api.AliasRequest, body);
    await ctx.rootcoord("dropAlias", { db: db(b), alias: b.aliasName, collectionName: "" });
    return ok();
  },
  "aliases.describe": async (body, ctx) => {
    const b = decodeRequest(Api.AliasRequest, body);
    const a = await ctx.cache.catalog.alias(db(b), b.aliasName);
    if (!a) throw new AliasNotFound({ message: `alias '${b.aliasName}' not found in database '${db(b)}'` });
    const c = await ctx.cache.catalog.collectionById(a.collectionId);
    return ok({ aliasName: a.alias, collectionName: c?.name ?? a.collectionName, dbName: db(b) });
  },
  "aliases.list": async (body, ctx) => {
    const b = decodeRequest(Api.ListAliases, body);
    await ctx.cache.catalog.database(db(b));
    let aliases = await ctx.cache.catalog.aliases(db(b));
    if (b.collectionName) {
      const rec = await ctx.cache.resolve(db(b), b.collectionName);
      aliases = aliases.filter((a) => a.collectionId === rec.id);
    }
    return ok(aliases.map((a) => a.alias));
  },
};

export const notSupportedYet = (what: string) =>
  new InvalidParameter({ message: `${what} is not supported yet in this version of natsvec` });
