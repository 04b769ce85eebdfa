/**
 * One shard of one collection, owned by this streamingnode: the shard's
 * single writer. Writes queue up and are grouped into one fenced WAL append
 * (group commit), applied to the in-memory segments, and only then
 * acknowledged — so a read that starts after an ack always sees the write.
 *
 * Segments: each partition has one growing segment (an id from rootcoord).
 * When the seal policy fires, every growing segment is sealed at one WAL
 * position (a `seal` entry) and a flush of the WAL range (checkpoint, seal]
 * is queued for a datanode. Sealed segments stay in memory and served until
 * a query node serves their flushed copy (handoff); then only their keys are
 * kept, for the uniqueness check and to route deletes.
 *
 * Primary keys: every insert is checked — against in-memory rows, flushed
 * segments' keys, and keys reserved by cross-shard inserts — at append time,
 * by the only process that appends, so a key is never stored twice.
 */
import { randomBytes } from "node:crypto";
import { primaryField, type CollectionSchema } from "../../schemas/collection.ts";
import {
  ConsistencyTimeout,
  InvalidParameter,
  PrimaryKeyConflict,
  ShardUnavailable,
  StaleView,
  Unexpected,
  type ApiError,
} from "../../schemas/errors.ts";
import type { CollectionRecord } from "../../schemas/meta.ts";
import type { FlushTask, ServingView } from "../../schemas/segment.ts";
import { batchOf, encodeBatch, takeRows, type RowBatch } from "../../engine/columns.ts";
import { GrowingSegment } from "../../engine/growing.ts";
import { batchRowsToObjects, pkValues } from "../../engine/rows.ts";
import { keyAt, keyColumnOfBatch, PkMap, type KeyColumn } from "../../engine/pkmap.ts";
import { mergeTopK, searchSegmentFlat, type Hit } from "../../engine/search.ts";
import { compileOptionalFilter, FilterError } from "../../engine/expr/index.ts";
import { WalFenced, type Wal } from "../../runtime/wal.ts";
import { collectGarbage } from "../../runtime/gc.ts";
import { log } from "../../runtime/log.ts";
import { sealReason, type SealPolicyConfig } from "./sealPolicy.ts";
import { packWalEntry, unpackWalEntry, walEntryBytes } from "./protocol.ts";
import type {
  GetRequest,
  Pk,
  PositionReply,
  PrepareRequest,
  QueryReply,
  QueryRequest,
  ReadCommon,
  SearchHit,
  SearchReply,
  SearchRequest,
  StatsReply,
  WalEntry,
  WalOp,
  WriteOp,
  WriteReply,
} from "./protocol.ts";

/** Keys of a flushed segment no longer held in memory, and which of them were deleted since. */
export interface FlushedKeys {
  readonly segmentId: number;
  readonly partitionId: number;
  readonly pks: BigInt64Array | readonly string[];
  readonly deleted: readonly Pk[];
}

export interface ShardDeps {
  readonly wal: Wal;
  readonly walSubject: string;
  /** Timestamps from the TSO. */
  readonly tso: () => Promise<bigint>;
  /** A new, cluster-unique segment id. */
  readonly allocSegmentId: () => Promise<number>;
  /** Queue a flush task for datanodes. */
  readonly publishFlush: (task: FlushTask) => Promise<void>;
  /** The shard's checkpoint and its flushed segments' keys (with deletes from delta logs). */
  readonly loadFlushed: () => Promise<{ checkpoint: number; segments: FlushedKeys[] }>;
  /** Room for one WAL message (max payload less headroom). */
  readonly maxEntryBytes: number;
  readonly consistencyWaitMs: number;
  readonly sealPolicy: SealPolicyConfig;
  readonly onFenced: () => void;
}

/** Rows of one insert op copied into a segment ahead of its commit (see `stageInserts`). */
interface StagedRows {
  readonly mem: MemSegment;
  readonly firstRow: number;
}

interface PendingWrite {
  op: WriteOp;
  resolve: (r: WriteReply) => void;
  reject: (e: ApiError) => void;
  sizeBytes: number;
  pks?: Pk[];
  keys?: KeyColumn;
}

/** A growing or sealed segment held in memory. */
interface MemSegment {
  /** Index in the shard's slot table: row references are slot * 2^32 + row. */
  readonly slot: number;
  readonly segmentId: number;
  readonly partitionId: number;
  readonly seg: GrowingSegment;
  /** WAL seq of the seal entry; undefined while growing. */
  sealedAt?: number;
  lastWriteMs: number;
}

interface RowRef {
  mem: MemSegment;
  row: number;
}

/** Keys of a flushed segment: sorted int64 keys (binary search) or a set of strings. */
export class KeyLookup {
  private readonly sorted: BigInt64Array | undefined;
  private readonly strings: Set<string> | undefined;
  readonly deleted = new Set<Pk>();
  constructor(
    readonly segmentId: number,
    readonly partitionId: number,
    pks: BigInt64Array | readonly string[],
  ) {
    if (pks instanceof BigInt64Array) this.sorted = pks.slice().sort();
    else this.strings = new Set(pks);
  }
  has(pk: Pk): boolean {
    if (this.deleted.has(pk)) return false;
    if (this.strings) return typeof pk === "string" && this.strings.has(pk);
    if (typeof pk !== "bigint") return false;
    const a = this.sorted!;
    let lo = 0;
    let hi = a.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = a[mid]!;
      if (v === pk) return true;
      if (v < pk) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }
  /** `has` for row i of a key column, without a BigInt when nothing was deleted. */
  hasAt(k: KeyColumn, i: number): boolean {
    if (this.deleted.size > 0 || k.kind !== "int64" || !this.sorted) return this.has(keyAt(k, i));
    const lo = k.words[2 * i]!;
    const hi = k.words[2 * i + 1]!;
    const loU = lo >>> 0;
    const w = (this.words ??= new Int32Array(this.sorted.buffer, this.sorted.byteOffset, this.sorted.length * 2));
    let a = 0;
    let b = this.sorted.length - 1;
    while (a <= b) {
      const mid = (a + b) >>> 1;
      const h = w[2 * mid + 1]!;
      const l = w[2 * mid]! >>> 0;
      if (h === hi && l === loU) return true;
      if (h < hi || (h === hi && l < loU)) a = mid + 1;
      else b = mid - 1;
    }
    return false;
  }
  private words: Int32Array | undefined;
  get size(): number {
    return (this.sorted?.length ?? this.strings!.size) - this.deleted.size;
  }
}

/** Reservations from cross-shard inserts expire if the insert never comes. */
const RESERVATION_TTL_MS = 30_000;
/** A group commit carries at most this many bytes of writes. */
const GROUP_MAX_BYTES = 768 * 1024;

const cmpPk = (a: Pk, b: Pk) => (a < b ? -1 : a > b ? 1 : 0);

const TWO32 = 4294967296;

export class Shard {
  private readonly growing = new Map<number, MemSegment>(); // partitionId -> growing
  private readonly memById = new Map<number, MemSegment>(); // growing + sealed
  /** Rows held in memory: pk -> slot * 2^32 + row (see `memSlots`). */
  private readonly pkIndex: PkMap;
  private readonly memSlots: (MemSegment | undefined)[] = [];
  private readonly flushed = new Map<number, KeyLookup>(); // flushed segments not in memory
  /** Segments dropped from memory at handoff, with the view version they became serving at. */
  private readonly handedOff = new Map<number, number>();
  private readonly reservations = new Map<Pk, { txnId: string; expiresAtMs: number }>();
  private readonly queue: PendingWrite[] = [];
  private readonly spareSegmentIds: number[] = [];
  private pumping = false;
  /** The write group being appended; its ts once known. */
  private inFlight: { ts?: bigint; done: Promise<void> } | undefined;
  private lastSeq = 0;
  private checkpoint = 0;
  private lastSealSeq = 0;
  /** The checkpoint the flush this shard queued last starts from; pending until the checkpoint moves. */
  private flushQueuedFrom: number | undefined;
  private appliedTs = 0n;
  /** Highest timestamp below which everything is applied (raised by time ticks when idle). */
  private serviceableTs = 0n;
  private state: "new" | "recovering" | "live" | "stopped" = "new";
  private record: CollectionRecord;
  private readonly pendingParts = new Map<string, WalEntry[]>();
  private readonly flushWaiters: { seq: number; resolve: () => void }[] = [];

  constructor(
    record: CollectionRecord,
    readonly shard: number,
    private readonly deps: ShardDeps,
  ) {
    this.record = record;
    this.pkIndex = new PkMap(primaryField(record.schema).dataType === "VarChar" ? "string" : "int64");
  }

  private refMem(ref: number): MemSegment {
    return this.memSlots[Math.floor(ref / TWO32)]!;
  }

  get schema(): CollectionSchema {
    return this.record.schema;
  }
  get collectionId(): number {
    return this.record.id;
  }
  get live(): boolean {
    return this.state === "live";
  }
  get walSeq(): number {
    return this.lastSeq;
  }

  /** Rebuild from the checkpoint: flushed segments' keys, then the WAL tail. */
  async recover(): Promise<void> {
    this.state = "recovering";
    const started = Date.now();
    const { checkpoint, segments } = await this.deps.loadFlushed();
    this.checkpoint = checkpoint;
    this.lastSealSeq = checkpoint;
    for (const f of segments) {
      const k = new KeyLookup(f.segmentId, f.partitionId, f.pks);
      for (const pk of f.deleted) k.deleted.add(pk);
      this.flushed.set(f.segmentId, k);
    }
    await this.deps.wal.open(this.deps.walSubject);
    const last = await this.deps.wal.lastSeq(this.deps.walSubject);
    let entries = 0;
    await this.deps.wal.read(this.deps.walSubject, checkpoint + 1, last, (seq, bytes) => {
      this.applyEntry(unpackWalEntry(bytes), seq);
      this.lastSeq = seq;
      entries++;
    });
    this.lastSeq = Math.max(this.lastSeq, last, checkpoint);
    this.pendingParts.clear(); // parts of a write that never completed were never acknowledged
    this.serviceableTs = this.appliedTs;
    this.state = "live";
    log.info(
      `shard ${this.collectionId}/${this.shard}: recovered ${this.pkIndex.size} rows in memory and ${this.flushed.size} flushed segments ` +
        `(checkpoint ${checkpoint}, ${entries} WAL entries replayed) in ${Date.now() - started} ms`,
    );
    // Segments sealed before the crash whose flush never completed: ask again.
    void this.maybePublishFlush();
  }

  stop() {
    if (this.state === "stopped") return;
    this.state = "stopped";
    const err = new ShardUnavailable({ message: `shard ${this.collectionId}/${this.shard} is no longer served here` });
    for (const w of this.queue.splice(0)) w.reject(err);
    for (const w of this.flushWaiters.splice(0)) w.resolve();
  }

  updateRecord(record: CollectionRecord) {
    const kept = new Set(record.partitions.map((p) => p.partitionId as number));
    for (const [id, mem] of this.memById) {
      if (kept.has(mem.partitionId)) continue;
      // Partition dropped: its rows are gone.
      this.memById.delete(id);
      if (this.growing.get(mem.partitionId) === mem) this.growing.delete(mem.partitionId);
      this.pkIndex.takeWhere((ref) => this.refMem(ref) === mem);
      this.memSlots[mem.slot] = undefined;
    }
    for (const [id, k] of this.flushed) if (!kept.has(k.partitionId)) this.flushed.delete(id);
    this.record = record;
  }

  private requireLive() {
    if (this.state !== "live") throw new ShardUnavailable({ message: `shard ${this.collectionId}/${this.shard} is ${this.state}` });
  }

  // ---------------------------------------------------------------- apply

  private memSegment(segmentId: number, partitionId: number): MemSegment | undefined {
    let mem = this.memById.get(segmentId);
    if (mem) return mem;
    if (!this.record.partitions.some((p) => p.partitionId === partitionId)) return undefined;
    mem = { slot: this.memSlots.length, segmentId, partitionId, seg: new GrowingSegment(this.schema, partitionId), lastWriteMs: Date.now() };
    this.memSlots.push(mem);
    this.memById.set(segmentId, mem);
    this.growing.set(partitionId, mem);
    return mem;
  }

  /** Which segment holds a live key: in memory, or flushed (-1: nowhere). */
  private locate(pk: Pk): number {
    const ref = this.pkIndex.get(pk);
    if (ref >= 0) return this.refMem(ref).segmentId;
    for (const k of this.flushed.values()) if (k.has(pk)) return k.segmentId;
    return -1;
  }

  /** `locate` for row i of a key column (no BigInt per key on the common path). */
  private locateAt(keys: KeyColumn, i: number): number {
    const ref = this.pkIndex.getAt(keys, i);
    if (ref >= 0) return this.refMem(ref).segmentId;
    if (this.flushed.size === 0) return -1;
    for (const k of this.flushed.values()) if (k.hasAt(keys, i)) return k.segmentId;
    return -1;
  }

  private applyDelete(pk: Pk, segmentId: number, ts: bigint) {
    const ref = this.pkIndex.get(pk);
    if (ref >= 0) {
      const mem = this.refMem(ref);
      if (mem.segmentId === segmentId) {
        mem.seg.markDeleted(ref % TWO32, ts);
        this.pkIndex.delete(pk);
        return;
      }
    }
    this.flushed.get(segmentId)?.deleted.add(pk);
  }

  /**
   * Copy the rows of a group's inserts into their segments ahead of the commit, invisible until
   * `applyOps` makes them visible (run while the group's WAL append is in flight).
   */
  private stageInserts(ops: readonly WalOp[], ts: bigint): Map<WalOp, StagedRows> {
    const staged = new Map<WalOp, StagedRows>();
    for (const op of ops) {
      if (op.op !== "insert") continue;
      const mem = this.memSegment(op.segmentId, op.partitionId);
      if (!mem) continue; // partition dropped since the write: applyInsert skips it too
      staged.set(op, { mem, firstRow: mem.seg.stage(batchOf(op.batch), ts).firstRow });
    }
    return staged;
  }

  private applyInsert(segmentId: number, partitionId: number, batch: RowBatch, ts: bigint, staged?: StagedRows) {
    const mem = staged?.mem ?? this.memSegment(segmentId, partitionId);
    if (!mem) return; // partition dropped since the write
    const keys = keyColumnOfBatch(batch, primaryField(this.schema).name);
    let firstRow: number;
    if (staged) {
      firstRow = staged.firstRow;
      mem.seg.commitStaged(firstRow + batch.rowCount);
    } else firstRow = mem.seg.append(batch, ts).firstRow;
    mem.lastWriteMs = Date.now();
    const base = mem.slot * TWO32 + firstRow;
    for (let i = 0; i < keys.n; i++) {
      // A key present here would be a bug upstream; keep the newest so a key is never served twice.
      const old = this.pkIndex.setAt(keys, i, base + i);
      if (old >= 0) this.refMem(old).seg.markDeleted(old % TWO32, ts);
    }
  }

  private applySeal(segments: readonly { segmentId: number }[], seq: number) {
    for (const { segmentId } of segments) {
      const mem = this.memById.get(segmentId);
      if (!mem) continue;
      mem.sealedAt = seq;
      if (this.growing.get(mem.partitionId) === mem) this.growing.delete(mem.partitionId);
    }
    this.lastSealSeq = seq;
  }

  private applyOps(ops: readonly WalOp[], ts: bigint, seq: number, staged?: Map<WalOp, StagedRows>) {
    for (const op of ops) {
      if (op.op === "delete") op.pks.forEach((pk, i) => this.applyDelete(pk, op.segs[i]!, ts));
      else if (op.op === "insert") this.applyInsert(op.segmentId, op.partitionId, batchOf(op.batch), ts, staged?.get(op));
      else this.applySeal(op.segments, seq);
    }
    if (ts > this.appliedTs) this.appliedTs = ts;
  }

  private applyEntry(entry: WalEntry, seq: number) {
    if (!entry.part) return this.applyOps(entry.ops, entry.ts, seq);
    const parts = this.pendingParts.get(entry.part.txn) ?? [];
    parts.push(entry);
    if (parts.length < entry.part.count) {
      this.pendingParts.set(entry.part.txn, parts);
      return;
    }
    this.pendingParts.delete(entry.part.txn);
    parts.sort((a, b) => a.part!.index - b.part!.index);
    this.applyOps(
      parts.flatMap((p) => p.ops),
      entry.ts,
      seq,
    );
  }

  // ---------------------------------------------------------------- writes

  private exists(pk: Pk, overlay: Map<Pk, number>): boolean {
    const o = overlay.size > 0 ? overlay.get(pk) : undefined;
    return o !== undefined ? o >= 0 : this.locate(pk) >= 0;
  }

  private reservedByOther(pk: Pk, txnId: string | undefined, nowMs: number): boolean {
    if (this.reservations.size === 0) return false;
    const r = this.reservations.get(pk);
    if (!r) return false;
    if (r.expiresAtMs < nowMs) {
      this.reservations.delete(pk);
      return false;
    }
    return r.txnId !== txnId;
  }

  /** Phase one of a cross-shard insert: refuse if any key exists, else reserve them all. */
  prepare(req: PrepareRequest): { reserved: number } {
    this.requireLive();
    const now = Date.now();
    const conflicts: Pk[] = [];
    const pending = new Set<Pk>();
    for (const w of this.queue) for (const pk of this.pendingPks(w)) pending.add(pk);
    for (const pk of req.pks) if (this.locate(pk) >= 0 || pending.has(pk) || this.reservedByOther(pk, req.txnId, now)) conflicts.push(pk);
    if (conflicts.length > 0) throw duplicateError(conflicts);
    for (const pk of req.pks) this.reservations.set(pk, { txnId: req.txnId, expiresAtMs: now + RESERVATION_TTL_MS });
    return { reserved: req.pks.length };
  }

  /** Undo a prepare whose insert will not come (another shard refused it). */
  abort(req: PrepareRequest): { released: number } {
    let released = 0;
    for (const pk of req.pks) {
      if (this.reservations.get(pk)?.txnId === req.txnId) {
        this.reservations.delete(pk);
        released++;
      }
    }
    return { released };
  }

  private pendingPks(w: PendingWrite): Pk[] {
    if (w.op.op === "delete") return [];
    if (!w.pks) w.pks = pkValues(this.schema, batchOf(w.op.batch));
    return w.pks;
  }

  /** The key column of a queued insert or upsert (a view, no BigInt per key). */
  private pendingKeys(w: PendingWrite & { op: { batch: Uint8Array } }): KeyColumn {
    if (!w.keys) w.keys = keyColumnOfBatch(batchOf(w.op.batch), primaryField(this.schema).name);
    return w.keys;
  }

  write(op: WriteOp): Promise<WriteReply> {
    this.requireLive();
    const sizeBytes = op.op === "delete" ? 64 + (op.pks?.length ?? 0) * 16 : op.batch.length;
    if (sizeBytes > this.deps.maxEntryBytes * 64) throw new InvalidParameter({ message: `write of ${sizeBytes} bytes is too large` });
    return new Promise<WriteReply>((resolve, reject) => {
      this.queue.push({ op, resolve, reject, sizeBytes });
      void this.pump();
    });
  }

  private async pump() {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0 && this.state === "live") await this.commitGroup();
    } finally {
      this.pumping = false;
    }
    await this.maybeSeal();
  }

  private async segmentIdFor(partitionId: number): Promise<number> {
    const g = this.growing.get(partitionId);
    if (g) return g.segmentId;
    if (this.spareSegmentIds.length === 0) this.spareSegmentIds.push(await this.deps.allocSegmentId());
    return this.spareSegmentIds.pop()!;
  }

  /** Take writes off the queue, check keys, append them as one WAL entry (or parts of one), apply, ack. */
  private async commitGroup() {
    let markDone!: () => void;
    const flight: { ts?: bigint; done: Promise<void> } = { done: new Promise<void>((r) => (markDone = r)) };
    this.inFlight = flight;
    const group: { w: PendingWrite; ops: WalOp[]; count: number }[] = [];
    try {
      const planStart = Date.now();
      const overlay = new Map<Pk, number>(); // pk -> segment holding it after the group's earlier writes (-1 deleted)
      const now = Date.now();
      const newSegments = new Map<number, number>(); // partition -> segment id for this group
      let bytes = 0;
      while (this.queue.length > 0) {
        const w = this.queue[0]!;
        // A filter delete reads current state, so it goes first in a group of its own.
        if (w.op.op === "delete" && w.op.filter !== undefined && group.length > 0) break;
        if (group.length > 0 && bytes + w.sizeBytes > GROUP_MAX_BYTES) break;
        this.queue.shift();
        try {
          let segmentId = -1;
          if (w.op.op !== "delete") {
            segmentId = newSegments.get(w.op.partitionId) ?? (await this.segmentIdFor(w.op.partitionId));
            newSegments.set(w.op.partitionId, segmentId);
          }
          group.push({ w, ...this.plan(w, overlay, now, segmentId) });
          bytes += w.sizeBytes;
        } catch (e) {
          w.reject(e as ApiError);
        }
        if (w.op.op === "delete" && w.op.filter !== undefined) break;
      }
      if (group.length === 0) return;
      const t0 = Date.now();
      const ts = await this.deps.tso();
      flight.ts = ts;
      const t1 = Date.now();
      const ops = group.flatMap((g) => g.ops);
      const appended = this.appendEntry(ts, ops);
      // The entry is on the socket (data wire) or leaves at nats.js's next flush (a microtask queued
      // by the publish): let it go, then copy the rows in while nats-server stores it. Nothing
      // reads them before applyOps.
      await Promise.resolve();
      let staged: Map<WalOp, StagedRows>;
      try {
        staged = this.stageInserts(ops, ts);
      } catch (e) {
        await appended.catch(() => undefined);
        throw e;
      }
      const seq = await appended;
      const t2 = Date.now();
      if (t2 - t0 > 1_000) log.warn(`shard ${this.collectionId}/${this.shard}: slow commit: tso ${t1 - t0} ms, append ${t2 - t1} ms, planning ${t0 - planStart} ms`);
      this.applyOps(ops, ts, seq, staged);
      for (const g of group) {
        if (g.w.op.op === "insert" && this.reservations.size > 0) for (const pk of this.pendingPks(g.w)) this.reservations.delete(pk);
        g.w.resolve({ commitTs: ts, count: g.count });
      }
    } catch (e) {
      let err: ApiError;
      if (e instanceof WalFenced) {
        err = new ShardUnavailable({ message: `shard ${this.collectionId}/${this.shard} moved to another owner; retry` });
      } else {
        // Outcome unknown (e.g. the append's ack was lost): stop serving so the shard is rebuilt from the WAL.
        err = new Unexpected({ message: `WAL append failed, outcome unknown (${(e as Error).message}); the shard restarts from the WAL` });
        log.error(`shard ${this.collectionId}/${this.shard}: append failed`, e);
      }
      this.stop();
      this.deps.onFenced();
      for (const g of group) g.w.reject(err);
    } finally {
      this.inFlight = undefined;
      markDone();
    }
  }

  /** Turn one queued write into WAL ops, checking keys against the shard and the group so far. */
  private plan(w: PendingWrite, overlay: Map<Pk, number>, nowMs: number, segmentId: number): { ops: WalOp[]; count: number } {
    const op = w.op;
    if (op.op === "insert") {
      const keys = this.pendingKeys(w as PendingWrite & { op: typeof op });
      let conflicts: Pk[] = [];
      if (overlay.size > 0 || this.reservations.size > 0)
        conflicts = this.pendingPks(w).filter((pk) => this.exists(pk, overlay) || this.reservedByOther(pk, op.txnId, nowMs));
      else for (let i = 0; i < keys.n; i++) if (this.locateAt(keys, i) >= 0) conflicts.push(keyAt(keys, i));
      if (conflicts.length > 0) throw duplicateError(conflicts);
      // Later writes of this group check their keys against these; with none queued, the group ends here.
      if (this.queue.length > 0) for (const pk of this.pendingPks(w)) overlay.set(pk, segmentId);
      return { ops: [{ op: "insert", segmentId, partitionId: op.partitionId, batch: op.batch }], count: keys.n };
    }
    if (op.op === "upsert") {
      const pks = this.pendingPks(w);
      const reserved = pks.filter((pk) => this.reservedByOther(pk, undefined, nowMs));
      if (reserved.length > 0) throw duplicateError(reserved, "being inserted by another request");
      const del = this.deleteOp(pks, overlay);
      for (const pk of pks) overlay.set(pk, segmentId);
      const ins: WalOp = { op: "insert", segmentId, partitionId: op.partitionId, batch: op.batch };
      return { ops: del ? [del, ins] : [ins], count: pks.length };
    }
    let pks: Pk[];
    if (op.filter !== undefined) {
      // Rows in memory only: the proxy turns a filter delete into keys when sealed data exists.
      pks = this.matchRows(op.filter, op.exprParams, op.partitionIds).map((r) => r.mem.seg.pk(r.row));
    } else {
      const parts = op.partitionIds ? new Set(op.partitionIds) : undefined;
      pks = (op.pks ?? []).filter((pk) => {
        if (!this.exists(pk, overlay)) return false;
        if (!parts) return true;
        const ref = this.pkIndex.get(pk);
        if (ref >= 0) return parts.has(this.refMem(ref).partitionId);
        const seg = this.locate(pk);
        return seg >= 0 && parts.has(this.flushed.get(seg)?.partitionId ?? -1);
      });
    }
    const del = this.deleteOp(pks, overlay);
    return { ops: del ? [del] : [], count: del?.pks.length ?? 0 };
  }

  /** A delete op naming the segment of each key that exists (after the group's earlier writes). */
  private deleteOp(pks: readonly Pk[], overlay: Map<Pk, number>): Extract<WalOp, { op: "delete" }> | undefined {
    const found: Pk[] = [];
    const segs: number[] = [];
    for (const pk of pks) {
      const o = overlay.get(pk);
      const seg = o !== undefined ? o : this.locate(pk);
      if (seg < 0) continue;
      found.push(pk);
      segs.push(seg);
      overlay.set(pk, -1);
    }
    return found.length > 0 ? { op: "delete", pks: found, segs } : undefined;
  }

  private async appendEntry(ts: bigint, ops: WalOp[]): Promise<number> {
    const whole = packWalEntry({ ts, ops });
    if (walEntryBytes(whole) <= this.deps.maxEntryBytes) {
      this.lastSeq = await this.deps.wal.append(this.deps.walSubject, whole, this.lastSeq);
      return this.lastSeq;
    }
    // Too large for one message: split row batches, write parts of one txn; replay applies only complete txns.
    const pieces: WalOp[] = [];
    for (const op of ops) {
      if (op.op !== "insert" || op.batch.length <= this.deps.maxEntryBytes / 2) {
        pieces.push(op);
        continue;
      }
      const batch = batchOf(op.batch);
      const chunks = Math.ceil(op.batch.length / (this.deps.maxEntryBytes / 2));
      const per = Math.ceil(batch.rowCount / chunks);
      for (let start = 0; start < batch.rowCount; start += per) {
        const rows = Array.from({ length: Math.min(per, batch.rowCount - start) }, (_, i) => start + i);
        pieces.push({ ...op, batch: encodeBatch(takeRows(batch, rows)) });
      }
    }
    const txn = randomBytes(8).toString("hex");
    for (let i = 0; i < pieces.length; i++) {
      const entry: WalEntry = { ts, ops: [pieces[i]!], part: { txn, index: i, count: pieces.length } };
      this.lastSeq = await this.deps.wal.append(this.deps.walSubject, packWalEntry(entry), this.lastSeq);
    }
    return this.lastSeq;
  }

  // ---------------------------------------------------------------- seal, flush, handoff

  private growingState() {
    let rows = 0;
    let bytes = 0;
    let lastWriteMs = 0;
    for (const g of this.growing.values()) {
      rows += g.seg.rowCount;
      bytes += g.seg.memoryBytes();
      lastWriteMs = Math.max(lastWriteMs, g.lastWriteMs);
    }
    return { rows, bytes, lastWriteMs };
  }

  /** Seal if the policy says so (or `force`), then make sure a flush is queued. */
  async maybeSeal(force = false): Promise<void> {
    if (this.state !== "live" || this.pumping || this.inFlight) return;
    const g = this.growingState();
    const reason = force ? (g.rows > 0 ? "requested" : undefined) : sealReason(this.deps.sealPolicy, g, Date.now());
    if (!reason) return;
    const segments = [...this.growing.values()].map((m) => ({ segmentId: m.segmentId, partitionId: m.partitionId }));
    this.pumping = true; // the seal entry is appended like a write: nothing else appends meanwhile
    try {
      const ts = await this.deps.tso();
      const ops: WalOp[] = [{ op: "seal", segments }];
      const seq = await this.appendEntry(ts, ops);
      this.applyOps(ops, ts, seq);
      log.info(`shard ${this.collectionId}/${this.shard}: sealed ${segments.length} segments (${g.rows} rows, ${reason}) at WAL ${seq}`);
    } catch (e) {
      if (!(e instanceof WalFenced)) log.error(`shard ${this.collectionId}/${this.shard}: seal failed`, e);
      this.stop();
      this.deps.onFenced();
      return;
    } finally {
      this.pumping = false;
    }
    await this.maybePublishFlush();
    if (this.queue.length > 0) void this.pump();
  }

  /**
   * One flush in flight per shard, over (checkpoint, last seal]: ranges stay contiguous. A queued
   * flush is pending until the checkpoint moves, whichever flush moves it: after a restart that
   * may be one queued before the crash over a shorter range, which leaves ours unable to apply
   * (the datanode drops it as superseded), so the next flush starts at the new checkpoint.
   */
  private async maybePublishFlush() {
    if (this.state !== "live") return;
    if (this.lastSealSeq <= this.checkpoint || this.flushQueuedFrom === this.checkpoint) return;
    const from = this.checkpoint;
    const to = this.lastSealSeq;
    const segments = [...this.memById.values()]
      .filter((m) => m.sealedAt !== undefined && m.sealedAt > from && m.sealedAt <= to)
      .map((m) => ({ segmentId: m.segmentId, partitionId: m.partitionId }));
    this.flushQueuedFrom = from;
    try {
      await this.deps.publishFlush({ kind: "flush", collectionId: this.collectionId, shard: this.shard, walFrom: from + 1, walTo: to, segments });
    } catch (e) {
      if (this.flushQueuedFrom === from) this.flushQueuedFrom = undefined;
      log.error(`shard ${this.collectionId}/${this.shard}: could not queue flush`, e);
    }
  }

  /** The shard's checkpoint advanced (a flush committed). */
  onCheckpoint(seq: number) {
    if (seq <= this.checkpoint) return;
    this.checkpoint = seq;
    for (const w of [...this.flushWaiters]) {
      if (w.seq <= seq) {
        this.flushWaiters.splice(this.flushWaiters.indexOf(w), 1);
        w.resolve();
      }
    }
    void this.maybePublishFlush();
  }

  /** The serving view changed: drop flushed sealed segments a query node now serves (directly, or through a compaction result). */
  onView(view: ServingView) {
    let handed = 0;
    for (const [id, v] of Object.entries(view.segments)) {
      if (v.state !== "serving") continue;
      const since = v.servingSince ?? view.version;
      for (const covered of [Number(id), ...(v.compactedFrom ?? [])]) if (this.handOff(covered, since)) handed++;
    }
    // A handed-off segment's columns (hundreds of MB at the default seal size) are garbage now: free them at once.
    if (handed > 0) collectGarbage();
  }

  /** Drop a flushed sealed segment a query node serves now; whether it was held here. */
  private handOff(id: number, servingSince: number): boolean {
    const mem = this.memById.get(id);
    if (!mem || mem.sealedAt === undefined || mem.sealedAt > this.checkpoint) return false;
    // Keep only the keys (uniqueness, delete routing) of the rows still live.
    const live = this.pkIndex.takeWhere((ref) => this.refMem(ref) === mem);
    this.memSlots[mem.slot] = undefined;
    const keys = primaryField(this.schema).dataType === "VarChar" ? (live as string[]) : BigInt64Array.from(live as bigint[]);
    this.flushed.set(id, new KeyLookup(id, mem.partitionId, keys));
    this.memById.delete(id);
    this.handedOff.set(id, servingSince);
    return true;
  }

  /** Seal now and wait until everything written so far is flushed (collections/flush). */
  async flush(): Promise<{ checkpoint: number }> {
    this.requireLive();
    while (this.pumping || this.inFlight) await (this.inFlight?.done ?? new Promise((r) => setTimeout(r, 5)));
    await this.maybeSeal(true);
    const target = this.lastSealSeq;
    if (target > this.checkpoint) await new Promise<void>((resolve) => this.flushWaiters.push({ seq: target, resolve }));
    this.requireLive();
    return { checkpoint: this.checkpoint };
  }

  // ---------------------------------------------------------------- reads

  /** Wait until every write with a timestamp <= guaranteeTs is applied here. */
  async waitServiceable(guaranteeTs: bigint | undefined): Promise<void> {
    if (guaranteeTs === undefined) return;
    const deadline = Date.now() + this.deps.consistencyWaitMs;
    for (;;) {
      this.requireLive();
      const f = this.inFlight;
      // Nothing in flight: everything acknowledged is applied, and any later write gets a later timestamp.
      if (!f) return;
      if (f.ts !== undefined && f.ts > guaranteeTs) return;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new ConsistencyTimeout({ message: `shard ${this.collectionId}/${this.shard} did not reach timestamp ${guaranteeTs} in time` });
      await Promise.race([f.done, new Promise((r) => setTimeout(r, left))]);
    }
  }

  async position(guaranteeTs: bigint | undefined): Promise<PositionReply> {
    await this.waitServiceable(guaranteeTs);
    return { seq: this.lastSeq, checkpoint: this.checkpoint };
  }

  /** Raised by time ticks while idle; published so readers know how far the shard is applied. */
  tick(ts: bigint): bigint | undefined {
    if (this.inFlight || this.queue.length > 0 || this.state !== "live") return undefined;
    if (ts > this.serviceableTs) this.serviceableTs = ts;
    void this.maybeSeal();
    return this.serviceableTs;
  }

  private compile(filter: string | undefined, params: Record<string, unknown> | undefined) {
    try {
      return compileOptionalFilter(filter, this.schema, params);
    } catch (e) {
      if (e instanceof FilterError) throw new InvalidParameter({ message: e.message });
      throw e;
    }
  }

  /**
   * In-memory segments this read covers: all but those the caller reads from query nodes.
   * If a segment left memory at a view version newer than the caller's view, the caller would
   * miss it: refuse, so the proxy refreshes its view and retries.
   */
  private segmentsFor(req: Pick<ReadCommon, "partitionIds" | "servingSegments" | "viewVersion">): MemSegment[] {
    const serving = new Set(req.servingSegments ?? []);
    const viewVersion = req.viewVersion ?? Number.MAX_SAFE_INTEGER;
    for (const [id, since] of this.handedOff) {
      if (!serving.has(id) && since > viewVersion)
        throw new StaleView({ message: `serving view ${viewVersion} is older than segment ${id}'s handoff (${since}); refresh and retry` });
    }
    const parts = req.partitionIds ? new Set(req.partitionIds) : undefined;
    return [...this.memById.values()].filter((m) => !serving.has(m.segmentId) && (!parts || parts.has(m.partitionId)));
  }

  private matchRows(
    filter: string | undefined,
    params: Record<string, unknown> | undefined,
    partitionIds?: number[],
    req: Pick<ReadCommon, "servingSegments" | "viewVersion"> = {},
  ): RowRef[] {
    const compiled = this.compile(filter, params);
    const out: RowRef[] = [];
    for (const mem of this.segmentsFor({ partitionIds, ...req })) {
      const pred = compiled?.bind(mem.seg.columnSource());
      const n = mem.seg.rowCount;
      for (let row = 0; row < n; row++) if (!mem.seg.isDeleted(row) && (!pred || pred(row))) out.push({ mem, row });
    }
    return out;
  }

  private rowsOut(refs: readonly RowRef[], outputFields: readonly string[]): Record<string, unknown>[] {
    const out = new Array<Record<string, unknown>>(refs.length);
    if (outputFields.length === 0) {
      for (let i = 0; i < refs.length; i++) out[i] = {};
      return out;
    }
    // Group by segment so each segment copies its rows out once.
    const bySeg = new Map<MemSegment, number[]>();
    refs.forEach((r, i) => {
      const l = bySeg.get(r.mem) ?? [];
      l.push(i);
      bySeg.set(r.mem, l);
    });
    for (const [mem, idx] of bySeg) {
      const batch = mem.seg.takeBatch(idx.map((i) => refs[i]!.row));
      const objs = batchRowsToObjects(this.schema, batch, idx.map((_, j) => j), outputFields);
      idx.forEach((i, j) => (out[i] = objs[j]!));
    }
    return out;
  }

  async search(req: SearchRequest): Promise<SearchReply> {
    await this.waitServiceable(req.guaranteeTs);
    const compiled = this.compile(req.filter, req.exprParams);
    const mems = this.segmentsFor(req);
    const perQuery: Hit[][][] = req.queries.map(() => []);
    mems.forEach((mem, tag) => {
      const lists = searchSegmentFlat({
        segment: mem.seg,
        tag,
        field: req.field,
        queries: req.queries,
        metric: req.metric,
        k: req.k,
        predicate: compiled?.bind(mem.seg.columnSource()),
      });
      lists.forEach((l, q) => perQuery[q]!.push(l));
    });
    const results: SearchHit[][] = perQuery.map((lists) => {
      const hits = mergeTopK(lists, req.metric, req.k);
      const objs = this.rowsOut(
        hits.map((h) => ({ mem: mems[h.segment]!, row: h.row })),
        req.outputFields,
      );
      return hits.map((h, i) => ({ pk: h.pk, distance: h.distance, fields: objs[i]! }));
    });
    return { results, held: this.held() };
  }

  async query(req: QueryRequest): Promise<QueryReply> {
    await this.waitServiceable(req.guaranteeTs);
    const refs = this.matchRows(req.filter, req.exprParams, req.partitionIds, req);
    if (req.countOnly) return { rows: [], pks: [], count: refs.length, held: this.held() };
    const keyed = refs.map((r) => ({ r, pk: r.mem.seg.pk(r.row) }));
    keyed.sort((a, b) => cmpPk(a.pk, b.pk));
    const top = keyed.slice(0, req.k);
    return { rows: this.rowsOut(top.map((t) => t.r), req.outputFields), pks: top.map((t) => t.pk), count: refs.length, held: this.held() };
  }

  async get(req: GetRequest): Promise<QueryReply> {
    await this.waitServiceable(req.guaranteeTs);
    const mems = new Set(this.segmentsFor(req));
    const found: { r: RowRef; pk: Pk }[] = [];
    for (const pk of req.pks) {
      const ref = this.pkIndex.get(pk);
      if (ref < 0) continue;
      const mem = this.refMem(ref);
      if (mems.has(mem)) found.push({ r: { mem, row: ref % TWO32 }, pk });
    }
    return { rows: this.rowsOut(found.map((f) => f.r), req.outputFields), pks: found.map((f) => f.pk), count: found.length, held: this.held() };
  }

  /** Ids of the segments held in memory. */
  held(): number[] {
    return [...this.memById.keys()];
  }

  stats(): StatsReply {
    let memoryBytes = 0;
    for (const m of this.memById.values()) memoryBytes += m.seg.memoryBytes();
    return { rowCount: this.pkIndex.size, serviceableTs: this.serviceableTs, walSeq: this.lastSeq, memoryBytes };
  }

  /** Live rows per partition id held in memory. */
  partitionRowCounts(): Record<number, number> {
    const out: Record<number, number> = {};
    for (const m of this.memById.values()) out[m.partitionId] = (out[m.partitionId] ?? 0) + m.seg.liveCount;
    return out;
  }
}

export const duplicateError = (pks: readonly Pk[], why = "already exist") =>
  new PrimaryKeyConflict({
    message: `primary key${pks.length > 1 ? "s" : ""} ${pks
      .slice(0, 20)
      .map((p) => (typeof p === "string" ? JSON.stringify(p) : p.toString()))
      .join(", ")}${pks.length > 20 ? ` and ${pks.length - 20} more` : ""} ${why}; nothing was written`,
  });
