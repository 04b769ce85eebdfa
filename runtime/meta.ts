/**
 * The meta store: a small interface over the `natsvec-meta` KV bucket.
 * Values are msgpack (int64-exact). Every write is compare-and-set on the
 * key's revision, so concurrent DDL from several coordinators cannot corrupt
 * a record: the loser re-reads and tries again (`mutate`).
 */
import type { KV, KvEntry } from "@nats-io/kv";
import { packMsgpack, unpackMsgpack } from "./codec.ts";

export interface Versioned<T> {
  readonly value: T;
  readonly revision: number;
}

export class RevisionConflict extends Error {}

export interface MetaStore {
  get<T>(key: string): Promise<Versioned<T> | undefined>;
  /** Create only if absent; throws RevisionConflict if the key exists. */
  create<T>(key: string, value: T): Promise<number>;
  /** Replace only at `revision`; throws RevisionConflict otherwise. */
  update<T>(key: string, value: T, revision: number): Promise<number>;
  delete(key: string, revision?: number): Promise<void>;
  /** Keys matching a filter such as `coll.default.>`. */
  keys(filter: string): Promise<string[]>;
  /** Read-modify-write with CAS retries; `fn` returns undefined to leave the key as it is. */
  mutate<T>(key: string, fn: (current: T | undefined) => T | undefined): Promise<T | undefined>;
  /** Current values and every later change under a filter; returns a stop function. */
  watch<T>(filter: string, onChange: (key: string, value: T | undefined) => void): Promise<() => void>;
}

const isConflict = (e: unknown) => {
  const m = (e as Error)?.message ?? "";
  return m.includes("wrong last sequence") || m.includes("key exists");
};

export class KvMetaStore implements MetaStore {
  constructor(private readonly kv: KV) {}

  async get<T>(key: string): Promise<Versioned<T> | undefined> {
    const e = await this.kv.get(key);
    if (!e || e.operation !== "PUT" || e.value.length === 0) return undefined;
    return { value: unpackMsgpack(e.value) as T, revision: e.revision };
  }

  async create<T>(key: string, value: T): Promise<number> {
    try {
      return await this.kv.create(key, packMsgpack(value));
    } catch (e) {
      if (isConflict(e)) throw new RevisionConflict(`key ${key} exists`);
      throw e;
    }
  }

  async update<T>(key: string, value: T, revision: number): Promise<number> {
    try {
      return await this.kv.update(key, packMsgpack(value), revision);
    } catch (e) {
      if (isConflict(e)) throw new RevisionConflict(`key ${key} changed since revision ${revision}`);
      throw e;
    }
  }

  async delete(key: string, revision?: number): Promise<void> {
    try {
      await this.kv.delete(key, revision === undefined ? undefined : { previousSeq: revision });
    } catch (e) {
      if (isConflict(e)) throw new RevisionConflict(`key ${key} changed since revision ${revision}`);
      throw e;
    }
  }

  async keys(filter: string): Promise<string[]> {
    // A Set: a key written while the listing runs can be delivered twice.
    const out = new Set<string>();
    const it = await this.kv.keys(filter);
    for await (const k of it) out.add(k);
    return [...out].sort();
  }

  async mutate<T>(key: string, fn: (current: T | undefined) => T | undefined): Promise<T | undefined> {
    for (let attempt = 0; ; attempt++) {
      const cur = await this.get<T>(key);
      const next = fn(cur?.value);
      if (next === undefined) return cur?.value;
      try {
        if (cur) await this.update(key, next, cur.revision);
        else await this.create(key, next);
        return next;
      } catch (e) {
        if (!(e instanceof RevisionConflict) || attempt > 50) throw e;
      }
    }
  }

  async watch<T>(filter: string, onChange: (key: string, value: T | undefined) => void): Promise<() => void> {
    const iter = await this.kv.watch({ key: filter });
    (async () => {
      for await (const e of iter as AsyncIterable<KvEntry>) {
        if (e.operation === "PUT" && e.value.length > 0) onChange(e.key, unpackMsgpack(e.value) as T);
        else onChange(e.key, undefined);
      }
    })().catch(() => undefined);
    return () => iter.stop();
  }
}
