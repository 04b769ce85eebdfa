/**
 * The proxy's view of the catalog: collection and alias records kept fresh
 * by a KV watch, with a direct KV read on a miss (a collection created a
 * moment ago through another proxy may not have reached the watch yet).
 */
import { metaKeys } from "../../schemas/names.ts";
import type { CollectionRecord } from "../../schemas/meta.ts";
import { Catalog, type AliasStored } from "../../runtime/catalog.ts";
import type { MetaStore } from "../../runtime/meta.ts";
import { DEFAULT_DATABASE } from "../../schemas/collection.ts";

export class MetaCache {
  readonly catalog: Catalog;
  private readonly collections = new Map<string, CollectionRecord>();
  private readonly aliases = new Map<string, AliasStored>();
  private stops: (() => void)[] = [];

  constructor(private readonly meta: MetaStore) {
    this.catalog = new Catalog(meta);
  }

  async start() {
    this.stops.push(
      await this.meta.watch<CollectionRecord>(metaKeys.collectionPrefix(), (k, v) => {
        if (v) this.collections.set(k, v);
        else this.collections.delete(k);
      }),
      await this.meta.watch<AliasStored>(metaKeys.aliasPrefix(), (k, v) => {
        if (v) this.aliases.set(k, v);
        else this.aliases.delete(k);
      }),
    );
  }

  stop() {
    for (const s of this.stops) s();
  }

  /** Collection by name or alias; CollectionNotFound / DatabaseNotFound otherwise. */
  async resolve(db: string | undefined, name: string): Promise<CollectionRecord> {
    const dbName = db ?? DEFAULT_DATABASE;
    const hit = this.collections.get(metaKeys.collection(dbName, name));
    if (hit) return hit;
    const alias = this.aliases.get(metaKeys.alias(dbName, name));
    if (alias) for (const c of this.collections.values()) if (c.id === alias.collectionId) return c;
    return this.catalog.resolve(dbName, name);
  }
}
