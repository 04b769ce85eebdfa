/**
 * A sealed segment loaded on a query node: its rows (one RowBatch, decoded
 * from the binlogs), its stats (pks sorted, for key lookups and pk-ordered
 * queries), a deleted flag per row, and the handles of its vector indexes in
 * the index worker pool.
 *
 * Vectors live in the pool only, once: a vector field with an index is never
 * decoded here (its binlog is not even read: the index holds the vectors), and
 * the vectors of an unindexed field move into a FLAT index in the pool as the
 * segment loads. So the batch has no column for vector fields once loaded;
 * whoever needs vectors asks the pool (or, for an index that does not keep
 * the inserted values, reads the binlog for that one request).
 *
 * Rows are immutable; only the deleted flags change (delta logs at load, then
 * WAL deletes). A row once flagged stays flagged: deletes are idempotent, so
 * replaying one twice is harmless.
 */
import { DYNAMIC_FIELD, primaryField, type CollectionSchema } from "../../schemas/collection.ts";
import type { SegmentRecord } from "../../schemas/segment.ts";
import type { Column, RowBatch } from "../../engine/columns.ts";
import {
  ChecksumMismatch,
  decodeFieldLog,
  decodeStats,
  pkIndexOf,
  segmentFields,
  TS_FIELD_ID,
  type SegmentStats,
} from "../../engine/binlog.ts";
import type { ColumnSource } from "../../engine/expr/index.ts";
import type { Pk } from "../streamingnode/protocol.ts";

const EMPTY_META: Readonly<Record<string, unknown>> = Object.freeze({});

/** Let other work run between two slices of a long job. */
export const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A vector index of one field, loaded in the worker pool. */
export interface LoadedIndex<H> {
  readonly handle: H;
  readonly fieldName: string;
  readonly indexType: string;
  readonly metric: string;
  readonly sizeBytes: number;
  /** When the segment record's index was built: a record with another one means a rebuilt index. */
  readonly builtAtMs?: number;
}

export class LoadedSegment<H = unknown> {
  readonly deleted: Uint8Array;
  private deletedRows = 0;
  /** Allowed rows without a filter (the complement of `deleted`), built on demand, dropped on delete. */
  private liveBits: Uint8Array | undefined;
  readonly pkName: string;
  /** Vector indexes by field name. */
  readonly indexes = new Map<string, LoadedIndex<H>>();
  /** FLAT indexes holding the raw vectors, by `field/metric` (fields without an index). */
  readonly flats = new Map<string, Promise<H>>();
  /** FLAT indexes no longer used (their field got an index), unloaded once no read holds the segment. */
  readonly retiredFlats: Promise<H>[] = [];
  /** Indexes replaced by a rebuilt one, unloaded once no read holds the segment. */
  readonly retiredIndexes: H[] = [];
  /** Bytes held in the pool for this segment besides its indexes (its FLATs). */
  extraBytes = 0;
  /** Delta log objects already applied. */
  readonly appliedDeltas = new Set<string>();

  constructor(
    readonly record: SegmentRecord,
    readonly schema: CollectionSchema,
    readonly batch: RowBatch,
    readonly insertTs: BigUint64Array,
    readonly stats: SegmentStats,
  ) {
    this.deleted = new Uint8Array(batch.rowCount);
    this.pkName = primaryField(schema).name;
  }

  get segmentId(): number {
    return this.record.segmentId;
  }
  get rowCount(): number {
    return this.batch.rowCount;
  }
  get liveRows(): number {
    return this.batch.rowCount - this.deletedRows;
  }

  /** Flag every row holding `pk` (inserted at or before `ts`, when given); returns how many rows were newly flagged. */
  deletePk(pk: Pk, ts?: bigint): number {
    let pos = pkIndexOf(this.stats, pk);
    if (pos < 0) return 0;
    let n = 0;
    const sorted = this.stats.sortedPks;
    for (; pos < sorted.length && sorted[pos] === pk; pos++) {
      const row = this.stats.rowOfSorted[pos]!;
      if (ts !== undefined && this.insertTs[row]! > ts) continue;
      if (this.deleted[row] === 0) {
        this.deleted[row] = 1;
        this.deletedRows++;
        this.liveBits = undefined;
        n++;
      }
    }
    return n;
  }

  /**
   * One byte per row, 1 = not deleted; undefined when no row is deleted (every row allowed).
   * Cached until the next delete: an unfiltered search costs no per-row work on this thread.
   */
  liveRowBits(): Uint8Array | undefined {
    if (this.deletedRows === 0) return undefined;
    if (this.liveBits === undefined) {
      const d = this.deleted;
      const bits = new Uint8Array(d.length);
      for (let i = 0; i < d.length; i++) bits[i] = d[i] === 0 ? 1 : 0;
      this.liveBits = bits;
    }
    return this.liveBits;
  }

  /** Row of `pk` if present and not deleted, else -1. */
  rowOf(pk: Pk): number {
    let pos = pkIndexOf(this.stats, pk);
    if (pos < 0) return -1;
    const sorted = this.stats.sortedPks;
    for (; pos < sorted.length && sorted[pos] === pk; pos++) {
      const row = this.stats.rowOfSorted[pos]!;
      if (this.deleted[row] === 0) return row;
    }
    return -1;
  }

  pk(row: number): Pk {
    const col = this.batch.columns[this.pkName]!;
    return col.kind === "int64" ? col.data[row]! : ((col as { data: unknown[] }).data[row] as string);
  }

  /** Accessors for filter predicates, in the conventions of engine/expr. */
  columnSource(): ColumnSource {
    return {
      column: (fieldName: string): ((row: number) => unknown) => {
        const c: Column | undefined = this.batch.columns[fieldName];
        if (c === undefined) {
          if (fieldName === DYNAMIC_FIELD) return () => EMPTY_META;
          throw new Error(`segment ${this.segmentId} has no column '${fieldName}'`);
        }
        if (fieldName === DYNAMIC_FIELD) {
          const d = (c as { data: unknown[] }).data;
          return (row) => d[row] ?? EMPTY_META;
        }
        switch (c.kind) {
          case "int64":
          case "number":
            return c.valid === undefined ? (row) => c.data[row] : (row) => (c.valid![row] === 0 ? null : c.data[row]);
          case "bool":
            return c.valid === undefined ? (row) => c.data[row] !== 0 : (row) => (c.valid![row] === 0 ? null : c.data[row] !== 0);
          case "values":
            return (row) => c.data[row] ?? null;
          case "vector":
            return (row) => c.data.slice(row * c.dim, (row + 1) * c.dim);
        }
      },
    };
  }

  /** Raw vectors of a vector field, while they are still held here (only during the load). */
  vectors(field: string): { data: Float32Array; dim: number } | undefined {
    const c = this.batch.columns[field];
    return c?.kind === "vector" ? { data: c.data, dim: c.dim } : undefined;
  }

  /** Forget the main-thread copy of a vector field (the pool holds it now). */
  dropVectors(field: string): void {
    delete this.batch.columns[field];
  }

  /** Resident bytes: columns, flags, stats, plus the indexes' and FLATs' size in the pool (each vector counted once). */
  memoryBytes(): number {
    let n = this.deleted.byteLength + this.insertTs.byteLength + this.stats.rowOfSorted.byteLength;
    for (const c of Object.values(this.batch.columns)) n += columnBytes(c, this.batch.rowCount);
    n += this.stats.sortedPks instanceof BigInt64Array ? this.stats.sortedPks.byteLength : this.batch.rowCount * 48;
    for (const i of this.indexes.values()) n += i.sizeBytes;
    return n + this.extraBytes;
  }
}

const columnBytes = (c: Column, rows: number): number => {
  switch (c.kind) {
    case "vector":
    case "int64":
    case "number":
    case "bool":
      return c.data.byteLength + ((c as { valid?: Uint8Array }).valid?.byteLength ?? 0);
    case "values":
      // A rough figure: strings and JSON objects live on the JS heap.
      return rows * 64;
  }
};

/** Row count of a decoded column. */
const rowsOf = (c: Column | BigUint64Array): number => {
  if (c instanceof BigUint64Array) return c.length;
  return c.kind === "vector" ? c.data.length / c.dim : c.data.length;
};

/**
 * Size of a FloatVector insert log (engine/binlog: 32-byte header, the raw
 * floats, 32-byte SHA-256; vectors have no validity bitmap).
 */
export const vectorLogBytes = (rows: number, dim: number): number => 32 + rows * dim * 4 + 32;

/**
 * Verify and decode a segment's objects one field at a time, yielding to the
 * event loop between fields so requests keep flowing while a big segment
 * loads. Same checks as engine/binlog's decodeSegment (every log present, row
 * counts, sizes, pks matching the stats); throws ChecksumMismatch naming the
 * object on any corruption. Vector fields in `skip` (those with an index)
 * have no log in `logs` and no column in the batch; their logs' size is
 * taken as what the format dictates for the stats' total.
 */
export const decodeSegmentSliced = async (
  schema: CollectionSchema,
  record: SegmentRecord,
  logs: Map<number, Uint8Array>,
  statsBytes: Uint8Array,
  skip: ReadonlySet<number> = new Set(),
): Promise<{ batch: RowBatch; insertTs: BigUint64Array; stats: SegmentStats }> => {
  const st = decodeStats(statsBytes, record.objects.stats);
  const pk = primaryField(schema);
  if (st.pkFieldId !== pk.fieldId)
    throw new ChecksumMismatch(record.objects.stats, `stats of fieldId ${st.pkFieldId}, the primary key is fieldId ${pk.fieldId}`);
  const n = st.rowCount;
  const columns: Record<string, Column> = {};
  let sizeBytes = 0;
  const need = (fieldId: number): { bytes: Uint8Array; what: string } => {
    const what = record.objects.fields[fieldId] ?? `insert log of fieldId ${fieldId}`;
    const bytes = logs.get(fieldId);
    if (bytes === undefined) throw new ChecksumMismatch(what, `segment ${record.segmentId} has no insert log for fieldId ${fieldId}`);
    return { bytes, what };
  };
  for (const f of segmentFields(schema)) {
    if (skip.has(f.fieldId) && f.dataType === "FloatVector") {
      if (record.objects.fields[f.fieldId] === undefined)
        throw new ChecksumMismatch(`insert log of fieldId ${f.fieldId}`, `segment ${record.segmentId} has no insert log for fieldId ${f.fieldId}`);
      sizeBytes += vectorLogBytes(n, f.dim ?? 0);
      continue;
    }
    await yieldToLoop();
    const { bytes, what } = need(f.fieldId);
    const col = decodeFieldLog(bytes, { field: f, what }) as Column;
    if (rowsOf(col) !== n) throw new ChecksumMismatch(what, `${rowsOf(col)} rows, the segment's stats say ${n}`);
    columns[f.isDynamic ? DYNAMIC_FIELD : f.name] = col;
    sizeBytes += bytes.byteLength;
  }
  await yieldToLoop();
  const tsLog = need(TS_FIELD_ID);
  const insertTs = decodeFieldLog(tsLog.bytes, { field: "ts", what: tsLog.what }) as BigUint64Array;
  if (insertTs.length !== n) throw new ChecksumMismatch(tsLog.what, `${insertTs.length} rows, the segment's stats say ${n}`);
  sizeBytes += tsLog.bytes.byteLength;
  if (sizeBytes !== st.sizeBytes) throw new ChecksumMismatch(record.objects.stats, `insert logs total ${sizeBytes} bytes, stats say ${st.sizeBytes}`);
  const pkData = (columns[pk.name] as { data: ArrayLike<unknown> }).data;
  for (let i = 0; i < n; i++)
    if (pkData[st.rowOfSorted[i]!] !== st.sortedPks[i])
      throw new ChecksumMismatch(record.objects.stats, `sorted pk ${i} does not match row ${st.rowOfSorted[i]} of the primary key log`);
  const { pkFieldId: _, ...stats } = st;
  return { batch: { rowCount: n, columns }, insertTs, stats };
};
