/**
 * querynode's protocol. Each query node serves `<root>.querynode.<nodeId>.<verb>`;
 * the proxy addresses a node with the sealed segments its serving view puts there.
 */
import type { Metric } from "../../engine/search.ts";
import type { Pk, SearchHit } from "../streamingnode/protocol.ts";

export const QUERYNODE_VERBS = {
  search: "search",
  query: "query",
  stats: "stats",
} as const;

interface SegmentRead {
  collectionId: number;
  /** Sealed segments to read on this node (from the proxy's serving view). */
  segmentIds: number[];
  /** Wait until deletes up to this timestamp are applied; absent = Eventually. */
  guaranteeTs?: bigint;
  partitionIds?: number[];
  filter?: string;
  exprParams?: Record<string, unknown>;
  outputFields: string[];
}

export interface QnSearchRequest extends SegmentRead {
  field: string;
  metric: Metric;
  queries: Float32Array[];
  k: number;
  /** Index search parameters (ef, nprobe). */
  params: Record<string, unknown>;
}
export interface QnSearchReply {
  results: SearchHit[][];
}

export interface QnQueryRequest extends SegmentRead {
  k: number;
  countOnly?: boolean;
  /** Restrict to these primary keys (get by id). */
  pks?: Pk[];
}
export interface QnQueryReply {
  rows: Record<string, unknown>[];
  pks: Pk[];
  count: number;
}

export interface QnStatsReply {
  nodeId: string;
  segments: { segmentId: number; collectionId: number; rowCount: number; liveRows: number; memoryBytes: number; indexed: boolean }[];
  memoryBytes: number;
  memoryBudgetBytes?: number;
  /** Assigned segments still loading. */
  loading?: { segmentId: number; collectionId: number }[];
  /** Assigned segments whose load failed (corrupt object, memory budget, ...); retried at retryAtMs. */
  failed?: { segmentId: number; collectionId: number; error: string; attempts: number; retryAtMs: number }[];
  /** WAL followers: how far each shard's deletes are applied here. */
  shards?: { collectionId: number; shard: number; appliedSeq: number; segments: number }[];
}
