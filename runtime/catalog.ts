/**
 * Read side of the meta store: resolve databases, collections (by name, alias
 * or id). Used by the proxy (through a watched cache) and by rootcoord.
 */
import { metaKeys } from "../schemas/names.ts";
import type { AliasRecord, CollectionPointer, CollectionRecord, DatabaseRecord } from "../schemas/meta.ts";
import { AliasNotFound, CollectionNotFound, DatabaseNotFound } from "../schemas/errors.ts";
import type { MetaStore, Versioned } from "./meta.ts";
import { DEFAULT_DATABASE } from "../schemas/collection.ts";

export interface AliasStored extends AliasRecord {
  readonly collectionId: number;
}

export class Catalog {
  constructor(readonly meta: MetaStore) {}

  async database(db: string | undefined): Promise<DatabaseRecord> {
    const name = db ?? DEFAULT_DATABASE;
    const r = await this.meta.get<DatabaseRecord>(metaKeys.database(name));
    if (!r) throw new DatabaseNotFound({ message: `database '${name}' not found` });
    return r.value;
  }

  async databases(): Promise<DatabaseRecord[]> {
    const keys = await this.meta.keys(metaKeys.databasePrefix());
    const out: DatabaseRecord[] = [];
    for (const k of keys) {
      const r = await this.meta.get<DatabaseRecord>(k);
      if (r) out.push(r.value);
    }
    return out;
  }

  async collectionNames(db: string): Promise<string[]> {
    const prefix = metaKeys.collection(db, "");
    return (await this.meta.keys(metaKeys.collectionsOf(db))).map((k) => k.slice(prefix.length));
  }

  /** By real name only (no alias). */
  async collectionByName(db: string, name: string): Promise<Versioned<CollectionRecord> | undefined> {
    return this.meta.get<CollectionRecord>(metaKeys.collection(db, name));
  }

  async collectionById(id: number): Promise<CollectionRecord | undefined> {
    const p = await this.meta.get<CollectionPointer>(metaKeys.collectionById(id));
    if (!p) return undefined;
    const r = await this.collectionByName(p.value.db, p.value.name);
    return r && r.value.id === id ? r.value : undefined;
  }

  async alias(db: string, alias: string): Promise<AliasStored | undefined> {
    return (await this.meta.get<AliasStored>(metaKeys.alias(db, alias)))?.value;
  }

  async aliases(db: string): Promise<AliasStored[]> {
    const out: AliasStored[] = [];
    for (const k of await this.meta.keys(metaKeys.aliasesOf(db))) {
      const r = await this.meta.get<AliasStored>(k);
      if (r) out.push(r.value);
    }
    return out;
  }

  /** By name or alias; the database must exist. */
  async resolve(db: string | undefined, nameOrAlias: string): Promise<CollectionRecord> {
    const dbName = db ?? DEFAULT_DATABASE;
    const direct = await this.collectionByName(dbName, nameOrAlias);
    if (direct) return direct.value;
    const a = await this.alias(dbName, nameOrAlias);
    if (a) {
      const c = await this.collectionById(a.collectionId);
      if (c) return c;
    }
    await this.database(dbName);
    throw new CollectionNotFound({ message: `collection '${nameOrAlias}' not found in database '${dbName}'` });
  }

  async requireAlias(db: string, alias: string): Promise<AliasStored> {
    const a = await this.alias(db, alias);
    if (!a) throw new AliasNotFound({ message: `alias '${alias}' not found in database '${db}'` });
    return a;
  }
}
