/**
 * rootcoord: DDL (databases, collections, partitions, aliases), id allocation
 * and the timestamp oracle. One active instance (the holder of the
 * `rootcoord` lease); standbys wait for the lease. Every meta write is a KV
 * compare-and-set, so even two actives could not corrupt a record.
 */
import { DEFAULT_DATABASE, DEFAULT_PARTITION } from "../../schemas/collection.ts";
import { checkName, checkPartitionName } from "../../schemas/collectionCreate.ts";
import { AlreadyExists, DatabaseNotFound, InvalidParameter, PartitionNotFound } from "../../schemas/errors.ts";
import { CollectionId, PartitionId } from "../../schemas/ids.ts";
import type { CollectionPointer, CollectionRecord, DatabaseRecord, PartitionRecord } from "../../schemas/meta.ts";
import { metaKeys } from "../../schemas/names.ts";
import { Catalog, type AliasStored } from "../../runtime/catalog.ts";
import { serveEndpoints, type Endpoint, type ServedEndpoints } from "../../runtime/host.ts";
import { tryAcquireLease, type Lease } from "../../runtime/lease.ts";
import { log } from "../../runtime/log.ts";
import { RevisionConflict } from "../../runtime/meta.ts";
import type { NatsHandles, NatsvecConfig } from "../../runtime/services.ts";
import type { Storage } from "../../runtime/storage.ts";
import { Tso } from "./tso.ts";
import {
  ROOTCOORD_VERBS as V,
  type AliasRequest,
  type AllocIdsRequest,
  type CollectionRequest,
  type CreateCollectionRequest,
  type DatabaseRequest,
  type PartitionRequest,
  type AlterCollectionRequest,
  type RenameCollectionRequest,
  type TsoRequest,
  type SetLoadRequest,
  type CreateIndexRequest,
  type DropIndexRequest,
} from "./protocol.ts";
import type { LoadRecord } from "../../schemas/segment.ts";
import { IndexNotFound } from "../../schemas/errors.ts";

export * from "./protocol.ts";

export const MAX_PARTITIONS = 1024;
export const MAX_DATABASES = 64;
/** Row ids for autoID are handed out in blocks this large from one KV write. */
const ID_BLOCK = 1n << 20n;
/** Row ids start high so they never look like small hand-made keys. */
const FIRST_ROW_ID = 1n << 40n;

export interface RootcoordHandle {
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}

export const startRootcoord = (h: NatsHandles, storage: Storage, config: NatsvecConfig): RootcoordHandle => {
  const meta = storage.meta;
  const catalog = new Catalog(meta);
  const tso = new Tso(meta);
  let served: ServedEndpoints | undefined;
  let lease: Lease | undefined;
  let stopped = false;

  // Row-id block held in memory; the KV counter is past its end before any id is handed out.
  let idNext = 0n;
  let idEnd = 0n;
  let idLock: Promise<unknown> = Promise.resolve();
  const allocRowIds = (count: number): Promise<bigint> => {
    const run = idLock.then(async () => {
      const n = BigInt(count);
      if (idNext + n > idEnd) {
        const want = n > ID_BLOCK ? n : ID_BLOCK;
        const next = await meta.mutate<bigint>(metaKeys.counter("rowid"), (cur) => (cur ?? FIRST_ROW_ID) + want);
        idEnd = next!;
        idNext = idEnd - want;
      }
      const start = idNext;
      idNext += n;
      return start;
    });
    idLock = run.catch(() => undefined);
    return run;
  };
  const nextCounter = async (what: string): Promise<number> =>
    Number(await meta.mutate<number>(metaKeys.counter(what), (cur) => (cur ?? 0) + 1));

  const requireDb = async (db: string) => {
    const r = await meta.get<DatabaseRecord>(metaKeys.database(db));
    if (!r) throw new DatabaseNotFound({ message: `database '${db}' not found` });
    return r.value;
  };

  const createDatabase = async (db: string, properties: Record<string, string> = {}) => {
    checkName("database", db);
    if ((await catalog.databases()).length >= MAX_DATABASES) throw new InvalidParameter({ message: `at most ${MAX_DATABASES} databases` });
    const rec: DatabaseRecord = { id: await nextCounter("database"), name: db, createdAtMs: Date.now(), properties };
    try {
      await meta.create(metaKeys.database(db), rec);
    } catch (e) {
      if (e instanceof RevisionConflict) throw new AlreadyExists({ message: `database '${db}' already exists` });
      throw e;
    }
  };

  /** Apply `fn` to a collection record with CAS; returns the new record. */
  const mutateCollection = async (db: string, name: string, fn: (c: CollectionRecord) => CollectionRecord): Promise<CollectionRecord> => {
    for (let attempt = 0; ; attempt++) {
      const cur = await catalog.collectionByName(db, name);
      if (!cur) await catalog.resolve(db, name); // throws the right not-found error
      const next = fn(cur!.value);
      try {
        await meta.update(metaKeys.collection(db, name), next, cur!.revision);
        return next;
      } catch (e) {
        if (!(e instanceof RevisionConflict) || attempt > 20) throw e;
      }
    }
  };

  const realName = async (db: string, nameOrAlias: string) => (await catalog.resolve(db, nameOrAlias)).name;

  const handlers: Record<string, (body: any) => Promise<unknown>> = {
    [V.tso]: async (b: TsoRequest) => ({ ts: await tso.allocate(b.count ?? 1) }),
    [V.allocIds]: async (b: AllocIdsRequest) => {
      if (!Number.isInteger(b.count) || b.count < 1 || b.count > 10_000_000) throw new InvalidParameter({ message: `bad id count ${b.count}` });
      return { start: await allocRowIds(b.count) };
    },
    [V.createDatabase]: async (b: DatabaseRequest) => createDatabase(b.db, b.properties),
    [V.dropDatabase]: async (b: DatabaseRequest) => {
      if (b.db === DEFAULT_DATABASE) throw new InvalidParameter({ message: "the default database cannot be dropped" });
      await requireDb(b.db);
      const colls = await catalog.collectionNames(b.db);
      if (colls.length > 0)
        throw new InvalidParameter({ message: `database '${b.db}' still has collections (${colls.slice(0, 5).join(", ")}); drop them first` });
      await meta.delete(metaKeys.database(b.db));
    },
    [V.alterDatabase]: async (b: DatabaseRequest) => {
      await requireDb(b.db);
      await meta.mutate<DatabaseRecord>(metaKeys.database(b.db), (cur) => cur && { ...cur, properties: { ...cur.properties, ...b.properties } });
    },
    [V.createCollection]: async (b: CreateCollectionRequest) => {
      await requireDb(b.db);
      checkName("collection", b.name);
      if (await catalog.collectionByName(b.db, b.name)) throw new AlreadyExists({ message: `collection '${b.name}' already exists in database '${b.db}'` });
      if (await catalog.alias(b.db, b.name)) throw new AlreadyExists({ message: `'${b.name}' is already an alias in database '${b.db}'` });
      const id = CollectionId(await nextCounter("collection"));
      const partition: PartitionRecord = { partitionId: PartitionId(await nextCounter("partition")), name: DEFAULT_PARTITION, createdAtMs: Date.now() };
      const rec: CollectionRecord = {
        id,
        db: b.db,
        name: b.name,
        description: b.spec.description,
        schema: b.spec.schema,
        shardsNum: b.spec.shardsNum,
        partitions: [partition],
        indexes: b.spec.indexes,
        properties: b.spec.properties,
        consistencyLevel: b.spec.consistencyLevel,
        createdAtMs: Date.now(),
        createdTs: await tso.allocate(),
      };
      // Pointer first: a record without its pointer would be invisible to id lookups.
      await meta.create<CollectionPointer>(metaKeys.collectionById(id), { db: b.db, name: b.name });
      // Served (loaded) from the start, as natsvec always did; collections/release turns it off.
      await meta.mutate<LoadRecord>(metaKeys.load(id), () => ({ collectionId: id, loaded: true, partitionIds: [], updatedAtMs: Date.now() }));
      try {
        await meta.create(metaKeys.collection(b.db, b.name), rec);
      } catch (e) {
        await meta.delete(metaKeys.collectionById(id)).catch(() => undefined);
        if (e instanceof RevisionConflict) throw new AlreadyExists({ message: `collection '${b.name}' already exists in database '${b.db}'` });
        throw e;
      }
      return { collectionId: id };
    },
    [V.dropCollection]: async (b: CollectionRequest) => {
      await requireDb(b.db);
      const cur = await catalog.collectionByName(b.db, b.name);
      if (!cur) await catalog.resolve(b.db, b.name);
      const aliases = (await catalog.aliases(b.db)).filter((a) => a.collectionId === cur!.value.id);
      if (aliases.length > 0)
        throw new InvalidParameter({ message: `collection '${b.name}' has aliases (${aliases.map((a) => a.alias).join(", ")}); drop them first` });
      await meta.delete(metaKeys.collection(b.db, b.name), cur!.revision);
      await meta.delete(metaKeys.collectionById(cur!.value.id));
      await storage.wal.drop(h.names.walCollection(cur!.value.id));
    },
    [V.renameCollection]: async (b: RenameCollectionRequest) => {
      await requireDb(b.db);
      await requireDb(b.newDb);
      checkName("collection", b.newName);
      const cur = await catalog.collectionByName(b.db, b.name);
      if (!cur) await catalog.resolve(b.db, b.name);
      if (await catalog.alias(b.newDb, b.newName)) throw new AlreadyExists({ message: `'${b.newName}' is an alias in database '${b.newDb}'` });
      const next: CollectionRecord = { ...cur!.value, db: b.newDb, name: b.newName };
      try {
        await meta.create(metaKeys.collection(b.newDb, b.newName), next);
      } catch (e) {
        if (e instanceof RevisionConflict) throw new AlreadyExists({ message: `collection '${b.newName}' already exists in database '${b.newDb}'` });
        throw e;
      }
      await meta.mutate<CollectionPointer>(metaKeys.collectionById(next.id), () => ({ db: b.newDb, name: b.newName }));
      await meta.delete(metaKeys.collection(b.db, b.name));
    },
    [V.alterCollection]: async (b: AlterCollectionRequest) => {
      const name = await realName(b.db, b.name);
      await mutateCollection(b.db, name, (c) => ({ ...c, properties: { ...c.properties, ...b.properties } }));
    },
    [V.setLoad]: async (b: SetLoadRequest) => {
      const coll = await catalog.resolve(b.db, b.name);
      const partitionIds = (b.partitionNames ?? []).map((p) => {
        const found = coll.partitions.find((x) => x.name === p);
        if (!found) throw new PartitionNotFound({ message: `partition '${p}' not found in collection '${coll.name}'` });
        return found.partitionId as number;
      });
      await meta.mutate<LoadRecord>(metaKeys.load(coll.id), (cur) => {
        const base = cur ?? { collectionId: coll.id, loaded: false, partitionIds: [], updatedAtMs: 0 };
        if (partitionIds.length === 0) return { ...base, loaded: b.loaded, partitionIds: [], updatedAtMs: Date.now() };
        // Partition-level load/release on top of the current set (empty set = all partitions).
        const all = coll.partitions.map((p) => p.partitionId as number);
        const current = new Set(base.loaded ? (base.partitionIds.length ? base.partitionIds : all) : []);
        for (const p of partitionIds) b.loaded ? current.add(p) : current.delete(p);
        const list = [...current];
        return { ...base, loaded: list.length > 0, partitionIds: list.length === all.length ? [] : list, updatedAtMs: Date.now() };
      });
    },
    [V.createIndex]: async (b: CreateIndexRequest) => {
      const name = await realName(b.db, b.name);
      await mutateCollection(b.db, name, (c) => {
        const same = c.indexes.find((i) => i.fieldName === b.index.fieldName);
        if (same && JSON.stringify(same) === JSON.stringify(b.index)) return c;
        if (same) throw new AlreadyExists({ message: `field '${b.index.fieldName}' already has index '${same.indexName}'; drop it first` });
        if (c.indexes.some((i) => i.indexName === b.index.indexName))
          throw new AlreadyExists({ message: `index '${b.index.indexName}' already exists in collection '${name}'` });
        return { ...c, indexes: [...c.indexes, b.index] };
      });
    },
    [V.dropIndex]: async (b: DropIndexRequest) => {
      const name = await realName(b.db, b.name);
      await mutateCollection(b.db, name, (c) => {
        if (!c.indexes.some((i) => i.indexName === b.indexName))
          throw new IndexNotFound({ message: `index '${b.indexName}' not found in collection '${name}'` });
        return { ...c, indexes: c.indexes.filter((i) => i.indexName !== b.indexName) };
      });
    },
    [V.createPartition]: async (b: PartitionRequest) => {
      checkPartitionName(b.partitionName);
      const name = await realName(b.db, b.name);
      const partitionId = PartitionId(await nextCounter("partition"));
      await mutateCollection(b.db, name, (c) => {
        if (c.partitions.some((p) => p.name === b.partitionName))
          throw new AlreadyExists({ message: `partition '${b.partitionName}' already exists in collection '${name}'` });
        if (c.partitions.length >= MAX_PARTITIONS) throw new InvalidParameter({ message: `at most ${MAX_PARTITIONS} partitions per collection` });
        return { ...c, partitions: [...c.partitions, { partitionId, name: b.partitionName, createdAtMs: Date.now() }] };
      });
    },
    [V.dropPartition]: async (b: PartitionRequest) => {
      if (b.partitionName === DEFAULT_PARTITION) throw new InvalidParameter({ message: "the _default partition cannot be dropped" });
      const name = await realName(b.db, b.name);
      await mutateCollection(b.db, name, (c) => {
        if (!c.partitions.some((p) => p.name === b.partitionName))
          throw new PartitionNotFound({ message: `partition '${b.partitionName}' not found in collection '${name}'` });
        return { ...c, partitions: c.partitions.filter((p) => p.name !== b.partitionName) };
      });
    },
    [V.createAlias]: async (b: AliasRequest) => {
      checkName("alias", b.alias);
      const coll = await catalog.resolve(b.db, b.collectionName);
      if (await catalog.collectionByName(b.db, b.alias)) throw new AlreadyExists({ message: `'${b.alias}' is a collection name in database '${b.db}'` });
      try {
        await meta.create<AliasStored>(metaKeys.alias(b.db, b.alias), { alias: b.alias, collectionName: coll.name, collectionId: coll.id });
      } catch (e) {
        if (e instanceof RevisionConflict) throw new AlreadyExists({ message: `alias '${b.alias}' already exists in database '${b.db}'` });
        throw e;
      }
    },
    [V.alterAlias]: async (b: AliasRequest) => {
      await catalog.requireAlias(b.db, b.alias);
      const coll = await catalog.resolve(b.db, b.collectionName);
      await meta.mutate<AliasStored>(metaKeys.alias(b.db, b.alias), () => ({ alias: b.alias, collectionName: coll.name, collectionId: coll.id }));
    },
    [V.dropAlias]: async (b: AliasRequest) => {
      await catalog.requireAlias(b.db, b.alias);
      await meta.delete(metaKeys.alias(b.db, b.alias));
    },
  };

  const endpoints: Endpoint[] = Object.entries(handlers).map(([verb, fn]) => ({
    subject: h.names.role("rootcoord", "any", verb),
    queue: "rootcoord",
    handle: async (body) => ({ data: (await fn(body)) ?? {} }),
  }));

  const becomeLeader = async () => {
    await tso.start();
    if (!(await meta.get(metaKeys.database(DEFAULT_DATABASE)))) {
      await createDatabase(DEFAULT_DATABASE).catch((e) => {
        if (!(e instanceof AlreadyExists)) throw e;
      });
    }
    served = serveEndpoints(h, endpoints, "rootcoord");
    log.info(`rootcoord ${config.nodeId}: active`);
  };

  const ready = (async () => {
    for (;;) {
      if (stopped) return;
      lease = await tryAcquireLease(storage.leases, "rootcoord", config.nodeId, config.leaseTtlMs, () => {
        // Lost the lease: stop serving at once; a standby takes over.
        void served?.stop();
        served = undefined;
      });
      if (lease) break;
      await new Promise((r) => setTimeout(r, Math.max(100, config.leaseTtlMs / 3)));
    }
    await becomeLeader();
  })();

  return {
    ready,
    async stop() {
      stopped = true;
      await served?.stop();
      await lease?.release();
    },
  };
};
