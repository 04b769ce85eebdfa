/**
 * The proxy's view of the catalog: collection and alias records kept fresh
 * by a KV watch, with a direct KV read on a miss (a collection created a
 * moment ago through another proxy may not have reached the watch yet).
 */
import { metaKeys } from "../../schemas/names.ts";
import type { CollectionRecord } from "../../schemas/meta.ts";
import type { LoadRecord, SegmentRecord, ServingView, ShardCheckpoint } from "../../schemas/segment.ts";
import { Catalog, type AliasStored } from "../../runtime/catalog.ts";
import type { MetaStore } from "../../runtime/meta.ts";
import { DEFAULT_DATABASE } from "../../schemas/collection.ts";

export class MetaCache {
  readonly catalog: Catalog;
  private readonly collections = new Map<string, CollectionRecord>();
  private readonly aliases = new Map<string, AliasStored>();
  private readonly views = new Map<number, ServingView>();
  private readonly loads = new Map<number, LoadRecord>();
  /** collectionId -> segmentId -> record */
  private readonly segments = new Map<number, Map<number, SegmentRecord>>();
  /** "collectionId/shard" -> checkpoint seq */
  private readonly checkpoints = new Map<string, number>();
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
      await this.meta.watch<ServingView>(metaKeys.viewPrefix(), (k, v) => {
        const id = Number(k.slice(k.indexOf(".") + 1));
        if (v) this.views.set(id, v);
        else this.views.delete(id);
      }),
      await this.meta.watch<SegmentRecord>(metaKeys.segmentPrefix(), (k, v) => {
        const [, c, sid] = k.split(".");
        const m = this.segments.get(Number(c)) ?? new Map<number, SegmentRecord>();
        if (v) m.set(Number(sid), v);
        else m.delete(Number(sid));
        this.segments.set(Number(c), m);
      }),
      await this.meta.watch<ShardCheckpoint>(metaKeys.checkpointPrefix(), (k, v) => {
        const [, c, shard] = k.split(".");
        if (v) this.checkpoints.set(`${c}/${shard}`, v.seq);
        else this.checkpoints.delete(`${c}/${shard}`);
      }),
      await this.meta.watch<LoadRecord>(metaKeys.loadPrefix(), (k, v) => {
        const id = Number(k.slice(k.indexOf(".") + 1));
        if (v) this.loads.set(id, v);
        else this.loads.delete(id);
      }),
    );
  }

  stop() {
    for (const s of this.stops) s();
  }

  /** The serving view; `fresh` reads KV (after a read found the cached one outdated). */
  async view(collectionId: number, fresh = false): Promise<ServingView | undefined> {
    if (!fresh) {
      const v = this.views.get(collectionId);
      if (v) return v;
    }
    const r = await this.meta.get<ServingView>(metaKeys.view(collectionId));
    if (r) this.views.set(collectionId, r.value);
    return r?.value;
  }

  /** Sealed segments the checkpoints cover and that are not dropped: each must be read from somewhere. */
  committedSegments(collectionId: number): SegmentRecord[] {
    const out: SegmentRecord[] = [];
    for (const s of this.segments.get(collectionId)?.values() ?? []) {
      if (s.state !== "Dropped" && s.walTo <= (this.checkpoints.get(`${collectionId}/${s.shard}`) ?? 0)) out.push(s);
    }
    return out;
  }

  /** The load record; `fresh` reads KV (reads that must see a load/release acknowledged a moment ago). */
  async load(collectionId: number, fresh = false): Promise<LoadRecord | undefined> {
    const cached = fresh ? undefined : this.loads.get(collectionId);
    return cached ?? (await this.meta.get<LoadRecord>(metaKeys.load(collectionId)))?.value;
  }

  /**
   * Collection by name or alias; CollectionNotFound / DatabaseNotFound otherwise. `fresh` reads
   * KV instead of the watch-fed copy: DDL reads (describe, list indexes, load state) must see a
   * change acknowledged a moment ago, which the watch may not have delivered yet (to this proxy
   * or, behind a queue group, to any other). Data requests take the cached copy.
   */
  async resolve(db: string | undefined, name: string, fresh = false): Promise<CollectionRecord> {
    const dbName = db ?? DEFAULT_DATABASE;
    if (fresh) return this.catalog.resolve(dbName, name);
    const hit = this.collections.get(metaKeys.collection(dbName, name));
    if (hit) return hit;
    const alias = this.aliases.get(metaKeys.alias(dbName, name));
    if (alias) for (const c of this.collections.values()) if (c.id === alias.collectionId) return c;
    return this.catalog.resolve(dbName, name);
  }
}
