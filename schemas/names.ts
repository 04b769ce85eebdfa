/**
 * The ONE module that builds subject, stream, bucket, key and object names.
 * No other file writes a subject or bucket name as a string literal.
 */

export const DEFAULT_ROOT = "natsvec";

/** Prefix of the per-shard WAL streams (`NATSVEC_WAL_<collectionId>_<shard>`); earlier versions kept every shard in one stream of this name. */
export const STREAM_WAL = "NATSVEC_WAL";
export const STREAM_TASKS = "NATSVEC_TASKS";
export const BUCKET_META = "natsvec-meta";
export const BUCKET_NODES = "natsvec-nodes";
export const BUCKET_LEASES = "natsvec-leases";
export const BUCKET_SEGMENTS = "natsvec-segments";

export const API_CATEGORIES = [
  "collections",
  "partitions",
  "indexes",
  "entities",
  "aliases",
  "databases",
  "users",
  "roles",
] as const;
export type ApiCategory = (typeof API_CATEGORIES)[number];

export type Role = "proxy" | "rootcoord" | "streamingnode" | "datacoord" | "querycoord" | "datanode" | "indexnode" | "querynode";
export const ROLES: readonly Role[] = ["rootcoord", "streamingnode", "proxy"];

/** Names scoped by a subject root, so several natsvec deployments can share one NATS server. */
export const names = (root: string = DEFAULT_ROOT) => {
  const stream = (base: string) => (root === DEFAULT_ROOT ? base : `${base}_${root.toUpperCase().replace(/[^A-Z0-9_]/g, "_")}`);
  const walPrefix = `${root}.wal.`;
  const walStream = (collectionId: number | string, shard: number | string) => stream(`${STREAM_WAL}_${collectionId}_${shard}`);
  return {
    root,
    /** Public API subject: `<root>.api.v2.<category>.<action>`. */
    api: (category: string, action: string) => `${root}.api.v2.${category}.${action}`,
    /** Wildcard every proxy subscribes to. */
    apiWildcard: () => `${root}.api.v2.>`,
    /** Prefix length of the api subject, to parse category/action back out. */
    parseApi: (subject: string): { category: string; action: string } | undefined => {
      const prefix = `${root}.api.v2.`;
      if (!subject.startsWith(prefix)) return undefined;
      const rest = subject.slice(prefix.length).split(".");
      if (rest.length !== 2) return undefined;
      return { category: rest[0]!, action: rest[1]! };
    },
    /** Internal role subject `<root>.<role>.<nodeId>.<verb>`; nodeId "any" is the role's queue-group subject. */
    role: (role: Role, nodeId: string, verb: string) => `${root}.${role}.${nodeId}.${verb}`,
    /** Subject a shard's current owner (its single writer) serves: `<root>.shard.<collectionId>.<shard>.<verb>`. */
    shard: (collectionId: number, shard: number, verb: string) => `${root}.shard.${collectionId}.${shard}.${verb}`,
    /** WAL subject of one shard: the only subject of the shard's own stream (walStream). */
    wal: (collectionId: number, shard: number) => `${walPrefix}${collectionId}.${shard}`,
    walCollection: (collectionId: number) => `${walPrefix}${collectionId}.*`,
    walAll: () => `${walPrefix}>`,
    /**
     * The stream holding one shard's WAL. One stream per shard, so an append is fenced by the
     * stream's own last sequence (`Nats-Expected-Last-Sequence`, an in-memory compare) instead of
     * the subject's (which nats-server 2.9 answers by loading the subject's last message: 2-8 ms
     * per 540 KB append, growing with the stream).
     */
    walStream: (collectionId: number, shard: number) => walStream(collectionId, shard),
    /** The stream of a WAL subject made by `wal`, or undefined for any other subject. */
    walStreamOf: (subject: string): string | undefined => {
      if (!subject.startsWith(walPrefix)) return undefined;
      const m = /^(\d+)\.(\d+)$/.exec(subject.slice(walPrefix.length));
      return m ? walStream(m[1]!, m[2]!) : undefined;
    },
    tasksAll: () => `${root}.tasks.>`,
    /** Work-queue subject of a task: lane "data" (flush, compact: datanodes) or "index" (indexnodes). */
    task: (lane: "data" | "index", kind: string) => `${root}.tasks.${lane}.${kind}`,
    taskLane: (lane: "data" | "index") => `${root}.tasks.${lane}.>`,
    /** Time ticks of a shard: serviceable timestamp announcements. */
    timeTick: (collectionId: number, shard: number) => `${root}.tt.${collectionId}.${shard}`,
    /** Change events of a collection. */
    event: (db: string, collection: string) => `${root}.evt.${db}.${collection}`,
    /** Stream and bucket names carry the root when it is not the default, so deployments don't collide. */
    stream,
    bucket: (base: string) => (root === DEFAULT_ROOT ? base : `${base}-${root.replace(/[^a-zA-Z0-9_-]/g, "_")}`),
  };
};
export type Names = ReturnType<typeof names>;

/** Keys in the meta KV bucket. KV keys allow [-/_=.a-zA-Z0-9]; user names are validated to fit. */
export const metaKeys = {
  database: (db: string) => `db.${db}`,
  databasePrefix: () => `db.>`,
  collection: (db: string, name: string) => `coll.${db}.${name}`,
  collectionsOf: (db: string) => `coll.${db}.>`,
  collectionPrefix: () => `coll.>`,
  /** id -> (db, name), so actors that know only an id can find the record. */
  collectionById: (id: number) => `collid.${id}`,
  alias: (db: string, alias: string) => `alias.${db}.${alias}`,
  aliasesOf: (db: string) => `alias.${db}.>`,
  aliasPrefix: () => `alias.>`,
  /** Id allocators (collections, partitions, fields, row ids). */
  counter: (what: string) => `counter.${what}`,
  /** Sealed segments (schemas/segment.ts). */
  segment: (collectionId: number, segmentId: number) => `seg.${collectionId}.${segmentId}`,
  segmentsOf: (collectionId: number) => `seg.${collectionId}.>`,
  segmentPrefix: () => `seg.>`,
  /** Shard checkpoints: the flushed WAL position. */
  checkpoint: (collectionId: number, shard: number) => `ckpt.${collectionId}.${shard}`,
  checkpointsOf: (collectionId: number) => `ckpt.${collectionId}.>`,
  checkpointPrefix: () => `ckpt.>`,
  /** Load state (collections/load, release). */
  load: (collectionId: number) => `load.${collectionId}`,
  loadPrefix: () => `load.>`,
  /** Serving view: which query node serves which sealed segment. */
  view: (collectionId: number) => `view.${collectionId}`,
  viewPrefix: () => `view.>`,
  tsoHighWater: () => `tso.highwater`,
};

export const leaseKeys = {
  shard: (collectionId: number, shard: number) => `shard.${collectionId}.${shard}`,
};

export const nodeKeys = {
  node: (role: Role, nodeId: string) => `${role}.${nodeId}`,
};

/** Header names used on the wire. */
export const HEADERS = {
  contentType: "Content-Type",
  authorization: "Authorization",
  allowInt64: "Accept-Type-Allow-Int64",
  /** Set by clients that reassemble replies larger than the max payload. */
  acceptChunks: "Natsvec-Accept-Chunks",
  /** On a chunked reply: `<index>/<count>`. */
  chunk: "Natsvec-Chunk",
  /** Deadline of the request, epoch ms; servers stop waiting past it. */
  deadline: "Natsvec-Deadline",
} as const;

export const MSGPACK = "application/msgpack";

/**
 * Object names in the segments Object Store. Every object of a sealed segment
 * lives under `<collectionId>/<partitionId>/<segmentId>/`, so a segment (or a
 * whole collection) is listed and dropped by prefix.
 */
export const objectNames = {
  segmentPrefix: (collectionId: number, partitionId: number, segmentId: number) => `${collectionId}/${partitionId}/${segmentId}/`,
  /** Columnar binlog of one field (fieldId 1 = the hidden insert-timestamp log). */
  insertLog: (collectionId: number, partitionId: number, segmentId: number, fieldId: number) =>
    `${collectionId}/${partitionId}/${segmentId}/insert/${fieldId}`,
  stats: (collectionId: number, partitionId: number, segmentId: number) => `${collectionId}/${partitionId}/${segmentId}/stats`,
  deltaLog: (collectionId: number, partitionId: number, segmentId: number, ts: bigint) =>
    `${collectionId}/${partitionId}/${segmentId}/delta/${ts}`,
  /** A delta log copied onto a compaction result from one of its sources. */
  deltaLogFrom: (collectionId: number, partitionId: number, segmentId: number, walTo: number, sourceSegmentId: number) =>
    `${collectionId}/${partitionId}/${segmentId}/delta/${walTo}-${sourceSegmentId}`,
  index: (collectionId: number, partitionId: number, segmentId: number, indexId: number) =>
    `${collectionId}/${partitionId}/${segmentId}/index/${indexId}`,
  collectionPrefix: (collectionId: number) => `${collectionId}/`,
};
