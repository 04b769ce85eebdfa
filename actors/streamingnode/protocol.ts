/**
 * streamingnode's internal protocol. Each shard's single writer serves
 * `<root>.shard.<collectionId>.<shard>.<verb>`; bodies are msgpack.
 */
import type { Metric } from "../../engine/search.ts";
import { packMsgpack, unpackMsgpack } from "../../runtime/codec.ts";

export const SHARD_VERBS = {
  prepare: "prepare",
  abort: "abort",
  write: "write",
  search: "search",
  query: "query",
  get: "get",
  stats: "stats",
  /** WAL position covering every write with a timestamp <= guaranteeTs (for query nodes' waits). */
  position: "position",
  /** Seal now and wait until everything written so far is flushed. */
  flush: "flush",
} as const;

export type Pk = bigint | string;

/** Reserve keys for an insert that spans shards: every shard checks before any appends. */
export interface PrepareRequest {
  collectionId: number;
  txnId: string;
  pks: Pk[];
}

export type WriteOp =
  | { op: "insert"; partitionId: number; batch: Uint8Array /* encodeBatch */; txnId?: string }
  | { op: "upsert"; partitionId: number; batch: Uint8Array }
  | { op: "delete"; pks?: Pk[]; filter?: string; exprParams?: Record<string, unknown>; partitionIds?: number[] };

export interface WriteRequest {
  collectionId: number;
  write: WriteOp;
}
export interface WriteReply {
  commitTs: bigint;
  /** Rows written (insert/upsert) or removed (delete). */
  count: number;
}

export interface ReadCommon {
  collectionId: number;
  /** Sealed segments the caller reads from query nodes: the shard must not read them too. */
  servingSegments?: number[];
  /** Version of the serving view `servingSegments` came from. */
  viewVersion?: number;
  /** Wait until the shard has applied everything up to this timestamp; absent = Eventually. */
  guaranteeTs?: bigint;
  partitionIds?: number[];
  filter?: string;
  exprParams?: Record<string, unknown>;
  outputFields: string[];
}

export interface SearchRequest extends ReadCommon {
  field: string;
  metric: Metric;
  queries: Float32Array[];
  /** limit + offset: the proxy slices the merged result. */
  k: number;
}
export interface SearchHit {
  pk: Pk;
  distance: number;
  fields: Record<string, unknown>;
}
export interface SearchReply {
  results: SearchHit[][];
  /** Segments this shard still holds in memory (growing and sealed), for the proxy's coverage check. */
  held?: number[];
}

export interface QueryRequest extends ReadCommon {
  /** Rows to return, in primary-key order: limit + offset (the proxy slices). */
  k: number;
  countOnly?: boolean;
}
export interface QueryReply {
  /** Segments this shard still holds in memory (see SearchReply). */
  held?: number[];
  rows: Record<string, unknown>[];
  /** Sorted primary keys of `rows`, for the proxy's merge. */
  pks: Pk[];
  count: number;
}

export interface GetRequest extends ReadCommon {
  pks: Pk[];
}

export interface StatsReply {
  rowCount: number;
  serviceableTs: bigint;
  walSeq: number;
  memoryBytes: number;
}

/** One WAL message. A write too large for one message is split into parts of one txn. */
export interface WalEntry {
  ts: bigint;
  ops: WalOp[];
  part?: { txn: string; index: number; count: number };
}

/**
 * A WAL message in the framed layout: 0xC1 (a byte msgpack never uses, so no msgpack entry starts
 * with it), the header's length (u32 little-endian), the entry as msgpack with each insert's
 * `batch` replaced by its byte length, then those batches' bytes in op order. The batches are
 * written as they are (one gathered socket write on the data wire) instead of copied into one more
 * msgpack buffer, and read back as views of the message. Entries written before the layout (one
 * msgpack value) still decode.
 */
const FRAMED = 0xc1;

/** The message parts of `entry` (framing header first, then the insert batches). */
export const packWalEntry = (entry: WalEntry): Uint8Array[] => {
  const batches: Uint8Array[] = [];
  const ops = entry.ops.map((op) => {
    if (op.op !== "insert") return op;
    batches.push(op.batch);
    return { ...op, batch: op.batch.length };
  });
  const head = packMsgpack({ ...entry, ops });
  const frame = new Uint8Array(5 + head.length);
  frame[0] = FRAMED;
  new DataView(frame.buffer).setUint32(1, head.length, true);
  frame.set(head, 5);
  return [frame, ...batches];
};

export const walEntryBytes = (parts: readonly Uint8Array[]): number => parts.reduce((n, p) => n + p.length, 0);

/** Decode a WAL message of either layout; insert batches are views of `bytes`. Throws on corrupt input. */
export const unpackWalEntry = (bytes: Uint8Array): WalEntry => {
  if (bytes[0] !== FRAMED) return unpackMsgpack(bytes) as WalEntry;
  if (bytes.length < 5) throw new Error("WAL entry: truncated frame");
  const headLen = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(1, true);
  if (5 + headLen > bytes.length) throw new Error("WAL entry: header runs past the message");
  const entry = unpackMsgpack(bytes.subarray(5, 5 + headLen)) as WalEntry;
  let at = 5 + headLen;
  for (const op of entry.ops) {
    if (op.op !== "insert") continue;
    const n = op.batch as unknown;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || at + n > bytes.length) throw new Error("WAL entry: bad batch length");
    op.batch = bytes.subarray(at, at + n);
    at += n;
  }
  if (at !== bytes.length) throw new Error(`WAL entry: ${bytes.length - at} bytes after the last batch`);
  return entry;
};
/**
 * WAL operations. An upsert is logged as a delete (of the keys that exist) followed by an
 * insert. A delete names, per key, the segment that held it, so flushes and query nodes can
 * apply it without a key lookup. `seal` marks the position where the shard sealed its growing
 * segments: the flush range ends there.
 */
export type WalOp =
  | { op: "insert"; segmentId: number; partitionId: number; batch: Uint8Array }
  | { op: "delete"; pks: Pk[]; segs: number[] }
  | { op: "seal"; segments: { segmentId: number; partitionId: number }[] };

export interface PositionRequest {
  collectionId: number;
  guaranteeTs?: bigint;
}
export interface PositionReply {
  /** Last WAL sequence of the shard; everything with ts <= guaranteeTs is at or below it. */
  seq: number;
  checkpoint: number;
}
