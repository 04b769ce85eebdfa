/**
 * rootcoord's internal protocol: verbs on `<root>.rootcoord.any.<verb>`
 * (queue group `rootcoord`; only the lease holder subscribes).
 */
import type { NormalizedCreate } from "../../schemas/collectionCreate.ts";

export const ROOTCOORD_VERBS = {
  tso: "tso",
  allocIds: "allocIds",
  createDatabase: "createDatabase",
  dropDatabase: "dropDatabase",
  alterDatabase: "alterDatabase",
  createCollection: "createCollection",
  dropCollection: "dropCollection",
  renameCollection: "renameCollection",
  alterCollection: "alterCollection",
  createPartition: "createPartition",
  dropPartition: "dropPartition",
  createAlias: "createAlias",
  dropAlias: "dropAlias",
  alterAlias: "alterAlias",
  setLoad: "setLoad",
  createIndex: "createIndex",
  dropIndex: "dropIndex",
} as const;

export interface TsoRequest {
  count?: number;
}
export interface TsoReply {
  ts: bigint;
}
export interface AllocIdsRequest {
  count: number;
}
export interface AllocIdsReply {
  /** First id of `count` consecutive ids. */
  start: bigint;
}
export interface DatabaseRequest {
  db: string;
  properties?: Record<string, string>;
}
export interface CreateCollectionRequest {
  db: string;
  name: string;
  spec: NormalizedCreate;
}
export interface CollectionRequest {
  db: string;
  name: string;
}
export interface RenameCollectionRequest {
  db: string;
  name: string;
  newDb: string;
  newName: string;
}
export interface AlterCollectionRequest {
  db: string;
  name: string;
  properties: Record<string, string>;
}
export interface PartitionRequest {
  db: string;
  name: string;
  partitionName: string;
}
export interface AliasRequest {
  db: string;
  alias: string;
  collectionName: string;
}

export interface SetLoadRequest {
  db: string;
  name: string;
  loaded: boolean;
  /** Partition names to (un)load; empty = the whole collection. */
  partitionNames?: string[];
}
export interface CreateIndexRequest {
  db: string;
  name: string;
  index: import("../../schemas/collection.ts").IndexDefinition;
}
export interface DropIndexRequest {
  db: string;
  name: string;
  indexName: string;
}
