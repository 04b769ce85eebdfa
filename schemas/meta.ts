/**
 * Records stored in the `natsvec-meta` KV bucket (msgpack values). Only
 * rootcoord writes them; every other actor reads or watches them.
 */
import type { CollectionSchema, IndexDefinition } from "./collection.ts";
import type { CollectionId, PartitionId } from "./ids.ts";

export interface DatabaseRecord {
  readonly id: number;
  readonly name: string;
  readonly createdAtMs: number;
  readonly properties: Readonly<Record<string, string>>;
}

export interface PartitionRecord {
  readonly partitionId: PartitionId;
  readonly name: string;
  readonly createdAtMs: number;
}

export const CONSISTENCY_LEVELS = ["Strong", "Bounded", "Session", "Eventually"] as const;
export type ConsistencyLevel = (typeof CONSISTENCY_LEVELS)[number];

export interface CollectionRecord {
  readonly id: CollectionId;
  readonly db: string;
  readonly name: string;
  readonly description: string;
  readonly schema: CollectionSchema;
  readonly shardsNum: number;
  readonly partitions: readonly PartitionRecord[];
  readonly indexes: readonly IndexDefinition[];
  readonly properties: Readonly<Record<string, string>>;
  /** Default consistency level of reads that don't name one. */
  readonly consistencyLevel: ConsistencyLevel;
  readonly createdAtMs: number;
  /** Timestamp (TSO) of creation; writes before it cannot exist. */
  readonly createdTs: bigint;
}

/** Pointer from a collection id to its current (db, name): names change on rename, ids never. */
export interface CollectionPointer {
  readonly db: string;
  readonly name: string;
}

export interface AliasRecord {
  readonly alias: string;
  readonly collectionName: string;
}

/** Heartbeat value in the nodes bucket. */
export interface NodeRecord {
  readonly nodeId: string;
  readonly role: string;
  readonly pid: number;
  readonly host: string;
  readonly startedAtMs: number;
  readonly lastSeenMs: number;
}
