/**
 * One shard of one collection, owned by this streamingnode: the shard's
 * single writer. Writes queue up and are grouped into one fenced WAL append
 * (group commit), applied to the in-memory growing segments, and only then
 * acknowledged — so a read that starts after an ack always sees the write.
 * The primary-key index makes duplicate keys impossible: every insert is
 * checked against it (and against keys reserved by cross-shard inserts) at
 * append time, by the only process that appends.
 */
import { randomBytes } from "node:crypto";
import { primaryField, type CollectionSchema } from "../../schemas/collection.ts";
import {
  ConsistencyTimeout,
  InvalidParameter,
  PrimaryKeyConflict,
  ShardUnavailable,
  Unexpected,
  type ApiError,
} from "../../schemas/errors.ts";
import type { CollectionRecord } from "../../schemas/meta.ts";
import { decodeBatch, encodeBatch, takeRows, type RowBatch } from "../../engine/columns.ts";
import { GrowingSegment } from "../../engine/growing.ts";
import { batchRowsToObjects, pkValues } from "../../engine/rows.ts";
import { mergeTopK, searchSegmentFlat, type Hit } from "../../engine/search.ts";
import { compileOptionalFilter, FilterError } from "../../engine/expr/index.ts";
import { packMsgpack, unpackMsgpack } from "../../runtime/codec.ts";
import { WalFenced, type Wal } from "../../runtime/wal.ts";
import { log } from "../../runtime/log.ts";
import type {
  GetRequest,
  Pk,
  PrepareRequest,
  QueryReply,
  QueryRequest,
  SearchHit,
  SearchReply,
  SearchRequest,
  StatsReply,
  WalEntry,
  WalOp,
  WriteOp,
  WriteReply,
} from "./protocol.ts";

export interface ShardDeps {
  readonly wal: Wal;
  readonly walSubject: string;
  /** Timestamps from the TSO. */
  readonly tso: () => Promise<bigint>;
  /** Room for one WAL message (max payload less headroom). */
  readonly maxEntryBytes: number;
  readonly consistencyWaitMs: number;
  readonly onFenced: () => void;
}

interface PendingWrite {
  op: WriteOp;
  resolve: (r: WriteReply) => void;
  reject: (e: ApiError) => void;
  sizeBytes: number;
}

interface RowRef {
  seg: GrowingSegment;
  row: number;
}

/** Reservations from cross-shard inserts expire if the insert never comes. */
const RESERVATION_TTL_MS = 30_000;
/** A group commit carries at most this many bytes of writes. */
const GROUP_MAX_BYTES = 768 * 1024;

const cmpPk = (a: Pk, b: Pk) => (a < b ? -1 : a > b ? 1 : 0);

export class Shard {
  private readonly segments = new Map<number, GrowingSegment>();
  private readonly pkIndex = new Map<Pk, RowRef>();
  private readonly reservations = new Map<Pk, { txnId: string; expiresAtMs: number }>();
  private readonly queue: PendingWrite[] = [];
  private pumping = false;
  /** Writes taken from the queue whose append/apply has not finished; their ts, once known. */
  private inFlight: { ts?: bigint; done: Promise<void> } | undefined;
  private lastSeq = 0;
  private appliedTs = 0n;
  /** Highest timestamp below which everything is applied (raised by time ticks when idle). */
  private serviceableTs = 0n;
  private state: "new" | "recovering" | "live" | "stopped" = "new";
  private record: CollectionRecord;
  private readonly pendingParts = new Map<string, WalEntry[]>();

  constructor(
    record: CollectionRecord,
    readonly shard: number,
    private readonly deps: ShardDeps,
  ) {
    this.record = record;
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

  /** Rebuild memory from the WAL, then accept requests. */
  async recover(): Promise<void> {
    this.state = "recovering";
    const started = Date.now();
    const last = await this.deps.wal.lastSeq(this.deps.walSubject);
    let entries = 0;
    await this.deps.wal.read(this.deps.walSubject, 1, last, (seq, bytes) => {
      this.applyEntry(unpackMsgpack(bytes) as WalEntry);
      this.lastSeq = seq;
      entries++;
    });
    this.lastSeq = Math.max(this.lastSeq, last);
    this.pendingParts.clear(); // parts of a write that never completed were never acknowledged
    this.serviceableTs = this.appliedTs;
    this.state = "live";
    log.info(
      `shard ${this.collectionId}/${this.shard}: recovered ${this.pkIndex.size} rows from ${entries} WAL entries in ${Date.now() - started} ms`,
    );
  }

  stop() {
    if (this.state === "stopped") return;
    this.state = "stopped";
    const err = new ShardUnavailable({ message: `shard ${this.collectionId}/${this.shard} is no longer served here` });
    for (const w of this.queue.splice(0)) w.reject(err);
  }

  updateRecord(record: CollectionRecord) {
    const kept = new Set(record.partitions.map((p) => p.partitionId as number));
    for (const [pid, seg] of this.segments) {
      if (kept.has(pid)) continue;
      // Partition dropped: its rows are gone.
      this.segments.delete(pid);
      for (const [pk, ref] of this.pkIndex) if (ref.seg === seg) this.pkIndex.delete(pk);
    }
    this.record = record;
  }

  private requireLive() {
    if (this.state !== "live") throw new ShardUnavailable({ message: `shard ${this.collectionId}/${this.shard} is ${this.state}` });
  }

  // ---------------------------------------------------------------- apply

  private segment(partitionId: number): GrowingSegment | undefined {
    let seg = this.segments.get(partitionId);
    if (!seg) {
      if (!this.record.partitions.some((p) => p.partitionId === partitionId)) return undefined;
      seg = new GrowingSegment(this.schema, partitionId);
      this.segments.set(partitionId, seg);
    }
    return seg;
  }

  private deleteKey(pk: Pk, ts: bigint): boolean {
    const ref = this.pkIndex.get(pk);
    if (!ref) return false;
    ref.seg.markDeleted(ref.row, ts);
    this.pkIndex.delete(pk);
    return true;
  }

  private appendRows(partitionId: number, batch: RowBatch, ts: bigint, replace: boolean) {
    const pks = pkValues(this.schema, batch);
    if (replace) for (const pk of pks) this.deleteKey(pk, ts);
    const seg = this.segment(partitionId);
    if (!seg) return; // partition dropped since the write
    const { firstRow } = seg.append(batch, ts);
    for (let i = 0; i < pks.length; i++) {
      // A key present here would be a bug upstream; keep the newest so a key is never served twice.
      this.deleteKey(pks[i]!, ts);
      this.pkIndex.set(pks[i]!, { seg, row: firstRow + i });
    }
  }

  private applyOps(ops: readonly WalOp[], ts: bigint) {
    for (const op of ops) {
      if (op.op === "delete") for (const pk of op.pks) this.deleteKey(pk, ts);
      else this.appendRows(op.partitionId, decodeBatch(op.batch), ts, op.op === "upsert");
    }
    if (ts > this.appliedTs) this.appliedTs = ts;
  }

  private applyEntry(entry: WalEntry) {
    if (!entry.part) return this.applyOps(entry.ops, entry.ts);
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
    );
  }

  // ---------------------------------------------------------------- writes

  private exists(pk: Pk, overlay: Map<Pk, boolean>): boolean {
    const o = overlay.get(pk);
    return o ?? this.pkIndex.has(pk);
  }

  private reservedByOther(pk: Pk, txnId: string | undefined, nowMs: number): boolean {
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
    const pending = new Map<Pk, boolean>();
    for (const w of this.queue) if (w.op.op !== "delete") for (const pk of this.pendingPks(w)) pending.set(pk, true);
    for (const pk of req.pks) if (this.pkIndex.has(pk) || pending.has(pk) || this.reservedByOther(pk, req.txnId, now)) conflicts.push(pk);
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
    const cached = (w as PendingWrite & { pks?: Pk[] }).pks;
    if (cached) return cached;
    const pks = pkValues(this.schema, decodeBatch(w.op.batch));
    (w as PendingWrite & { pks?: Pk[] }).pks = pks;
    return pks;
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
  }

  /** Take writes off the queue, check keys, append them as one WAL entry (or parts of one), apply, ack. */
  private async commitGroup() {
    const group: { w: PendingWrite; ops: WalOp[]; count: number }[] = [];
    const overlay = new Map<Pk, boolean>(); // pk -> exists after the group's earlier writes
    const now = Date.now();
    let bytes = 0;
    while (this.queue.length > 0) {
      const w = this.queue[0]!;
      // A filter delete reads current state, so it goes first in a group of its own.
      if (w.op.op === "delete" && w.op.filter !== undefined && group.length > 0) break;
      if (group.length > 0 && bytes + w.sizeBytes > GROUP_MAX_BYTES) break;
      this.queue.shift();
      try {
        const planned = this.plan(w, overlay, now);
        group.push({ w, ...planned });
        bytes += w.sizeBytes;
      } catch (e) {
        w.reject(e as ApiError);
      }
      if (w.op.op === "delete" && w.op.filter !== undefined) break;
    }
    if (group.length === 0) return;
    let markDone!: () => void;
    const flight: { ts?: bigint; done: Promise<void> } = { done: new Promise<void>((r) => (markDone = r)) };
    this.inFlight = flight;
    try {
      const ts = await this.deps.tso();
      flight.ts = ts;
      const ops = group.flatMap((g) => g.ops);
      await this.appendEntry(ts, ops);
      this.applyOps(ops, ts);
      for (const g of group) {
        if (g.w.op.op === "insert") for (const pk of this.pendingPks(g.w)) this.reservations.delete(pk);
        g.w.resolve({ commitTs: ts, count: g.count });
      }
    } catch (e) {
      let err: ApiError;
      if (e instanceof WalFenced) {
        err = new ShardUnavailable({ message: `shard ${this.collectionId}/${this.shard} moved to another owner; retry` });
        this.stop();
        this.deps.onFenced();
      } else {
        // Outcome unknown (e.g. the append's ack was lost): stop serving so the shard is rebuilt from the WAL.
        err = new Unexpected({ message: `WAL append failed, outcome unknown (${(e as Error).message}); the shard restarts from the WAL` });
        log.error(`shard ${this.collectionId}/${this.shard}: append failed`, e);
        this.stop();
        this.deps.onFenced();
      }
      for (const g of group) g.w.reject(err);
    } finally {
      this.inFlight = undefined;
      markDone();
    }
  }

  /** Turn one queued write into WAL ops, checking keys against the index and the group so far. */
  private plan(w: PendingWrite, overlay: Map<Pk, boolean>, nowMs: number): { ops: WalOp[]; count: number } {
    const op = w.op;
    if (op.op === "insert") {
      const pks = this.pendingPks(w);
      const conflicts = pks.filter((pk) => this.exists(pk, overlay) || this.reservedByOther(pk, op.txnId, nowMs));
      if (conflicts.length > 0) throw duplicateError(conflicts);
      for (const pk of pks) overlay.set(pk, true);
      return { ops: [{ op: "insert", partitionId: op.partitionId, batch: op.batch }], count: pks.length };
    }
    if (op.op === "upsert") {
      const pks = this.pendingPks(w);
      const reserved = pks.filter((pk) => this.reservedByOther(pk, undefined, nowMs));
      if (reserved.length > 0) throw duplicateError(reserved, "being inserted by another request");
      for (const pk of pks) overlay.set(pk, true);
      return { ops: [{ op: "upsert", partitionId: op.partitionId, batch: op.batch }], count: pks.length };
    }
    let pks: Pk[];
    if (op.filter !== undefined) {
      pks = this.matchRows(op.filter, op.exprParams, op.partitionIds).map((r) => r.seg.pk(r.row));
    } else {
      const parts = op.partitionIds ? new Set(op.partitionIds) : undefined;
      pks = (op.pks ?? []).filter((pk) => {
        if (!this.exists(pk, overlay)) return false;
        if (!parts) return true;
        const ref = this.pkIndex.get(pk);
        return ref !== undefined && parts.has(ref.seg.partitionId);
      });
    }
    for (const pk of pks) overlay.set(pk, false);
    return { ops: pks.length > 0 ? [{ op: "delete", pks }] : [], count: pks.length };
  }

  private async appendEntry(ts: bigint, ops: WalOp[]) {
    const whole = packMsgpack({ ts, ops } satisfies WalEntry);
    if (whole.length <= this.deps.maxEntryBytes) {
      this.lastSeq = await this.deps.wal.append(this.deps.walSubject, whole, this.lastSeq);
      return;
    }
    // Too large for one message: split row batches, write parts of one txn; replay applies only complete txns.
    const pieces: WalOp[] = [];
    for (const op of ops) {
      if (op.op === "delete" || op.batch.length <= this.deps.maxEntryBytes / 2) {
        pieces.push(op);
        continue;
      }
      const batch = decodeBatch(op.batch);
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
      this.lastSeq = await this.deps.wal.append(this.deps.walSubject, packMsgpack(entry), this.lastSeq);
    }
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

  /** Raised by time ticks while idle; published so readers know how far the shard is applied. */
  tick(ts: bigint): bigint | undefined {
    if (this.inFlight || this.queue.length > 0 || this.state !== "live") return undefined;
    if (ts > this.serviceableTs) this.serviceableTs = ts;
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

  private segmentsFor(partitionIds: number[] | undefined): GrowingSegment[] {
    if (!partitionIds) return [...this.segments.values()];
    return partitionIds.map((p) => this.segments.get(p)).filter((s): s is GrowingSegment => s !== undefined);
  }

  private matchRows(filter: string | undefined, params: Record<string, unknown> | undefined, partitionIds?: number[]): RowRef[] {
    const compiled = this.compile(filter, params);
    const out: RowRef[] = [];
    for (const seg of this.segmentsFor(partitionIds)) {
      const pred = compiled?.bind(seg.columnSource());
      const n = seg.rowCount;
      for (let row = 0; row < n; row++) if (!seg.isDeleted(row) && (!pred || pred(row))) out.push({ seg, row });
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
    const bySeg = new Map<GrowingSegment, number[]>();
    refs.forEach((r, i) => {
      const l = bySeg.get(r.seg) ?? [];
      l.push(i);
      bySeg.set(r.seg, l);
    });
    for (const [seg, idx] of bySeg) {
      const batch = seg.takeBatch(idx.map((i) => refs[i]!.row));
      const objs = batchRowsToObjects(this.schema, batch, idx.map((_, j) => j), outputFields);
      idx.forEach((i, j) => (out[i] = objs[j]!));
    }
    return out;
  }

  async search(req: SearchRequest): Promise<SearchReply> {
    await this.waitServiceable(req.guaranteeTs);
    const compiled = this.compile(req.filter, req.exprParams);
    const segs = this.segmentsFor(req.partitionIds);
    const perQuery: Hit[][][] = req.queries.map(() => []);
    segs.forEach((segment, tag) => {
      const lists = searchSegmentFlat({
        segment,
        tag,
        field: req.field,
        queries: req.queries,
        metric: req.metric,
        k: req.k,
        predicate: compiled?.bind(segment.columnSource()),
      });
      lists.forEach((l, q) => perQuery[q]!.push(l));
    });
    const results: SearchHit[][] = perQuery.map((lists) => {
      const hits = mergeTopK(lists, req.metric, req.k);
      const objs = this.rowsOut(
        hits.map((h) => ({ seg: segs[h.segment]!, row: h.row })),
        req.outputFields,
      );
      return hits.map((h, i) => ({ pk: h.pk, distance: h.distance, fields: objs[i]! }));
    });
    return { results };
  }

  async query(req: QueryRequest): Promise<QueryReply> {
    await this.waitServiceable(req.guaranteeTs);
    const refs = this.matchRows(req.filter, req.exprParams, req.partitionIds);
    if (req.countOnly) return { rows: [], pks: [], count: refs.length };
    const keyed = refs.map((r) => ({ r, pk: r.seg.pk(r.row) }));
    keyed.sort((a, b) => cmpPk(a.pk, b.pk));
    const top = keyed.slice(0, req.k);
    return { rows: this.rowsOut(top.map((t) => t.r), req.outputFields), pks: top.map((t) => t.pk), count: refs.length };
  }

  async get(req: GetRequest): Promise<QueryReply> {
    await this.waitServiceable(req.guaranteeTs);
    const parts = req.partitionIds ? new Set(req.partitionIds) : undefined;
    const found: { r: RowRef; pk: Pk }[] = [];
    for (const pk of req.pks) {
      const r = this.pkIndex.get(pk);
      if (r && (!parts || parts.has(r.seg.partitionId))) found.push({ r, pk });
    }
    return { rows: this.rowsOut(found.map((f) => f.r), req.outputFields), pks: found.map((f) => f.pk), count: found.length };
  }

  stats(): StatsReply {
    let memoryBytes = 0;
    for (const s of this.segments.values()) memoryBytes += s.memoryBytes();
    return { rowCount: this.pkIndex.size, serviceableTs: this.serviceableTs, walSeq: this.lastSeq, memoryBytes };
  }

  /** Rows per partition id, for partition stats. */
  partitionRowCounts(): Record<number, number> {
    const out: Record<number, number> = {};
    for (const [pid, seg] of this.segments) out[pid] = seg.liveCount;
    return out;
  }

  get pkFieldName(): string {
    return primaryField(this.schema).name;
  }
}

export const duplicateError = (pks: readonly Pk[], why = "already exist") =>
  new PrimaryKeyConflict({
    message: `primary key${pks.length > 1 ? "s" : ""} ${pks
      .slice(0, 20)
      .map((p) => (typeof p === "string" ? JSON.stringify(p) : p.toString()))
      .join(", ")}${pks.length > 20 ? ` and ${pks.length - 20} more` : ""} ${why}; nothing was written`,
  });
