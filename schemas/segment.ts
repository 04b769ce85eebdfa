/**
 * The sealed-segment lifecycle: records in the meta KV, tasks on the
 * NATSVEC_TASKS work queue, and the serving view. See docs/ARCHITECTURE.md
 * ("Segments") for the flow.
 *
 * Flushing is per shard: the shard's owner seals all its growing segments at
 * one WAL position P and asks for a flush of the WAL range (checkpoint, P].
 * A datanode rebuilds the sealed segments from exactly that range, writes
 * them (and delta logs for deletes that hit older segments) to the Object
 * Store, records them, and finally advances the shard's checkpoint to P —
 * the commit point: readers consider a segment or delta log only once the
 * checkpoint has reached its `walTo`.
 */
import type { Pk } from "../actors/streamingnode/protocol.ts";
import type { IndexDefinition } from "./collection.ts";

export type SegmentState = "Flushed" | "Indexed" | "Dropped";

export interface SegmentIndexInfo {
  readonly indexName: string;
  readonly fieldName: string;
  readonly indexType: string;
  readonly metricType: string;
  readonly params: Readonly<Record<string, string | number | boolean>>;
  readonly object: string;
  readonly sizeBytes: number;
  readonly builtAtMs: number;
}

/**
 * Default size compaction merges sealed segments up to (Milvus' default segment size is 1 GiB): a
 * search walks one graph per segment, so fewer, bigger segments answer faster
 * (actors/datacoord/schedule.ts; `--compact-max-rows`, `--compact-max-mb`).
 */
export const COMPACT_MAX_ROWS = 1_000_000;
export const COMPACT_MAX_BYTES = 1024 * 1024 * 1024;

export interface SegmentRecord {
  readonly segmentId: number;
  readonly collectionId: number;
  readonly partitionId: number;
  readonly shard: number;
  readonly state: SegmentState;
  /** Rows stored in the binlogs (rows deleted inside the flushed range are not stored). */
  readonly rowCount: number;
  readonly sizeBytes: number;
  /** WAL range of the shard this segment was built from. */
  readonly walFrom: number;
  readonly walTo: number;
  /** Largest insert timestamp in the segment. */
  readonly maxTs: bigint;
  readonly objects: {
    /** fieldId -> object name; fieldId 1 is the row-timestamp log. */
    readonly fields: Readonly<Record<number, string>>;
    readonly stats: string;
  };
  /** Delta logs (deletes of this segment's rows recorded after its own flush). */
  readonly deltas: readonly { readonly object: string; readonly walTo: number; readonly count: number }[];
  /** Vector indexes built for this segment, by vector field name. */
  readonly indexes: Readonly<Record<string, SegmentIndexInfo>>;
  /** Set on a segment written by compaction. */
  readonly compactedFrom?: readonly number[];
  readonly createdAtMs: number;
  readonly droppedAtMs?: number;
}

/**
 * Is a segment's built index the one `def` defines? Name, type, metric and params (in any key
 * order) must all match: an index dropped and created again differently is built again.
 */
export const indexBuiltAs = (have: SegmentIndexInfo | undefined, def: IndexDefinition): boolean =>
  have !== undefined &&
  have.indexName === def.indexName &&
  have.indexType === def.indexType &&
  have.metricType === def.metricType &&
  canonicalIndexParams(have.params) === canonicalIndexParams(def.params);

/** Index params as a string that ignores key order. */
export const canonicalIndexParams = (p: Readonly<Record<string, unknown>> | undefined): string =>
  JSON.stringify(Object.entries(p ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/** Everything in the shard's WAL up to `seq` is in flushed segments and delta logs. */
export interface ShardCheckpoint {
  readonly collectionId: number;
  readonly shard: number;
  readonly seq: number;
  readonly ts: bigint;
  readonly updatedAtMs: number;
}

/** WAL range and segments of one flush. Published by the shard owner, done by a datanode. */
export interface FlushTask {
  readonly kind: "flush";
  readonly collectionId: number;
  readonly shard: number;
  readonly walFrom: number;
  readonly walTo: number;
  /** Growing segments sealed at walTo: id and partition. */
  readonly segments: readonly { readonly segmentId: number; readonly partitionId: number }[];
}

export interface IndexTask {
  readonly kind: "index";
  readonly collectionId: number;
  readonly segmentId: number;
  readonly fieldName: string;
  readonly indexName: string;
}

export interface CompactTask {
  readonly kind: "compact";
  readonly collectionId: number;
  readonly shard: number;
  readonly partitionId: number;
  readonly segmentIds: readonly number[];
  readonly targetSegmentId: number;
}

export type Task = FlushTask | IndexTask | CompactTask;

/** Whether a collection should be served by query nodes (`collections/load`). */
export interface LoadRecord {
  readonly collectionId: number;
  readonly loaded: boolean;
  /** Partition ids to load; empty = all. */
  readonly partitionIds: readonly number[];
  readonly updatedAtMs: number;
}

export interface ViewSegment {
  readonly node: string;
  /** loading: assigned, not yet searchable there; serving: the node answers for it. */
  readonly state: "loading" | "serving";
  /** View version at which it became serving. */
  readonly servingSince?: number;
  readonly rowCount: number;
  readonly shard: number;
  readonly partitionId: number;
  /**
   * For a compaction result: the segments whose rows it holds. Once it serves, readers skip them
   * wherever else they may still be held (the shard's memory, a not-yet-swapped view entry).
   */
  readonly compactedFrom?: readonly number[];
}

/** Which query node serves which sealed segment of one collection. */
export interface ServingView {
  readonly collectionId: number;
  readonly version: number;
  readonly segments: Readonly<Record<number, ViewSegment>>;
}

/** A delete as the WAL carries it: the key and the segment that held it (-1: not found). */
export interface DeleteTarget {
  readonly pk: Pk;
  readonly segmentId: number;
}
