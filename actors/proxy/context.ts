/**
 * What every proxy handler works with: the catalog view, calls to rootcoord
 * and to shard owners, and the consistency rules that turn a level into a
 * guarantee timestamp.
 */
import { composeTs, physicalMsOf } from "../../schemas/ids.ts";
import { DEFAULT_PARTITION, primaryField, type CollectionSchema } from "../../schemas/collection.ts";
import { InvalidParameter, PartitionNotFound } from "../../schemas/errors.ts";
import type { CollectionRecord, ConsistencyLevel } from "../../schemas/meta.ts";
import type { RequestClient } from "../../runtime/client.ts";
import type { NatsHandles, NatsvecConfig } from "../../runtime/services.ts";
import { ROOTCOORD_VERBS, type TsoReply } from "../rootcoord/protocol.ts";
import type { Pk } from "../streamingnode/protocol.ts";
import type { MetaCache } from "./metaCache.ts";

export class ProxyContext {
  constructor(
    readonly h: NatsHandles,
    readonly config: NatsvecConfig,
    readonly client: RequestClient,
    readonly cache: MetaCache,
  ) {}

  async rootcoord<T = unknown>(verb: keyof typeof ROOTCOORD_VERBS, body: unknown): Promise<T> {
    return (await this.client.call(this.h.names.role("rootcoord", "any", ROOTCOORD_VERBS[verb]), body, { timeoutMs: this.config.requestTimeoutMs })).data as T;
  }

  async shard<T = unknown>(collectionId: number, shard: number, verb: string, body: unknown, deadlineMs?: number): Promise<T> {
    const timeoutMs = deadlineMs ? Math.max(1, deadlineMs - Date.now()) : this.config.requestTimeoutMs;
    return (await this.client.call(this.h.names.shard(collectionId, shard, verb), body, { timeoutMs })).data as T;
  }

  async querynode<T = unknown>(nodeId: string, verb: string, body: unknown, deadlineMs?: number): Promise<T> {
    const timeoutMs = deadlineMs ? Math.max(1, deadlineMs - Date.now()) : this.config.requestTimeoutMs;
    return (await this.client.call(this.h.names.role("querynode", nodeId, verb), body, { timeoutMs })).data as T;
  }

  /** Call every shard of a collection in parallel. */
  allShards<T>(rec: CollectionRecord, verb: string, body: unknown, deadlineMs?: number): Promise<T[]> {
    return Promise.all(Array.from({ length: rec.shardsNum }, (_, s) => this.shard<T>(rec.id, s, verb, body, deadlineMs)));
  }

  async tsoNow(): Promise<bigint> {
    return (await this.rootcoord<TsoReply>("tso", {})).ts;
  }

  /** Guarantee timestamp of a read (undefined = Eventually: no wait). */
  async guaranteeTs(rec: CollectionRecord, level: ConsistencyLevel | undefined, sessionTs: unknown): Promise<bigint | undefined> {
    const l = level ?? rec.consistencyLevel;
    switch (l) {
      case "Strong":
        return this.tsoNow();
      case "Bounded": {
        const now = await this.tsoNow();
        return composeTs(Math.max(0, physicalMsOf(now) - this.config.boundedStalenessMs), 0);
      }
      case "Session":
        return sessionTs === undefined ? undefined : toTimestamp(sessionTs);
      case "Eventually":
        return undefined;
    }
  }
}

const TS_MAX = (1n << 63n) - 1n;

export const toTimestamp = (v: unknown): bigint => {
  try {
    if (typeof v === "bigint" && v >= 0n && v <= TS_MAX) return v;
    if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
    if (typeof v === "string" && /^\d{1,19}$/.test(v) && BigInt(v) <= TS_MAX) return BigInt(v);
  } catch {
    /* below */
  }
  throw new InvalidParameter({ message: `guaranteeTs must be a commitTs (a non-negative int64), got ${JSON.stringify(String(v))}` });
};

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/** A primary key value from the wire, converted to the key's type. */
export const toPk = (schema: CollectionSchema, v: unknown, where: string): Pk => {
  const pk = primaryField(schema);
  if (pk.dataType === "VarChar") {
    if (typeof v !== "string") throw new InvalidParameter({ message: `${where}: primary key '${pk.name}' is VarChar, got ${typeof v}` });
    return v;
  }
  let b: bigint | undefined;
  if (typeof v === "bigint") b = v;
  else if (typeof v === "number" && Number.isSafeInteger(v)) b = BigInt(v);
  else if (typeof v === "string" && /^-?\d+$/.test(v)) b = BigInt(v);
  if (b === undefined || b < INT64_MIN || b > INT64_MAX)
    throw new InvalidParameter({ message: `${where}: primary key '${pk.name}' is Int64, got ${JSON.stringify(typeof v === "bigint" ? v.toString() : v)}` });
  return b;
};

export const partitionId = (rec: CollectionRecord, name: string | undefined): number => {
  const n = name ?? DEFAULT_PARTITION;
  const p = rec.partitions.find((x) => x.name === n);
  if (!p) throw new PartitionNotFound({ message: `partition '${n}' not found in collection '${rec.name}'` });
  return p.partitionId;
};

export const partitionIds = (rec: CollectionRecord, names: readonly string[] | undefined): number[] | undefined =>
  names && names.length > 0 ? names.map((n) => partitionId(rec, n)) : undefined;
