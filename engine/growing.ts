/**
 * A growing segment: in-memory columnar storage that only grows (rows are
 * appended, and marked deleted, never removed). Numeric, bool, Int64 and
 * vector columns live in typed arrays with amortized doubling; VarChar, JSON,
 * Array and `$meta` in JS arrays. Each vector row keeps a cached inverse norm
 * (Float64Array; 0 for a zero vector) so COSINE search never recomputes base
 * norms. Insert and delete timestamps are kept per row for MVCC reads.
 */
import { DYNAMIC_FIELD, primaryField, type CollectionSchema, type FieldSchema } from "../schemas/collection.ts";
import { InvalidParameter } from "../schemas/errors.ts";
import { declaredFields, hasDynamicField, newNumberArray, type Column, type NumberArray, type NumberType, type RowBatch } from "./columns.ts";
import { inverseNorms } from "./kernels.ts";

type Store =
  | { kind: "vector"; name: string; dim: number; chunks: Float32Array[]; invNorms: Float64Array }
  | { kind: "int64"; name: string; data: BigInt64Array; valid: Uint8Array | undefined }
  | { kind: "number"; name: string; type: NumberType; data: NumberArray; valid: Uint8Array | undefined }
  | { kind: "bool"; name: string; data: Uint8Array; valid: Uint8Array | undefined }
  | { kind: "values"; name: string; data: unknown[] };

const EMPTY_META: Readonly<Record<string, unknown>> = Object.freeze({});

/** Vectors live in chunks of 2^shift rows (about this many bytes), so a growing segment never copies them to grow. */
const VECTOR_CHUNK_BYTES = 4 * 1024 * 1024;
const chunkShiftFor = (dim: number, chunkBytes: number): number => Math.max(0, Math.floor(Math.log2(Math.max(1, chunkBytes / (dim * 4)))));

/** A growing segment's vectors: row r is at chunks[r >>> chunkShift], offset (r & chunkMask) * dim. */
export interface VectorChunks {
  readonly dim: number;
  readonly chunkShift: number;
  readonly chunkMask: number;
  readonly chunks: readonly Float32Array[];
  /** 1/|v| per row (0 for a zero vector), valid for [0, rowCount). */
  readonly invNorms: Float64Array;
}

const grow = <T extends { length: number; set(a: ArrayLike<never>, o?: number): void; subarray(a: number, b: number): T }>(
  old: T,
  make: (n: number) => T,
  used: number,
  n: number,
): T => {
  const out = make(n);
  out.set(old.subarray(0, used) as unknown as ArrayLike<never>, 0);
  return out;
};

/** Rough heap size of a JS value held in a values column. */
const estimateBytes = (v: unknown, depth = 0): number => {
  switch (typeof v) {
    case "string":
      return 16 + v.length * 2;
    case "number":
    case "boolean":
      return 8;
    case "bigint":
      return 24;
    case "object": {
      if (v === null) return 0;
      if (depth > 8) return 64;
      let s = 32;
      if (Array.isArray(v)) for (const x of v) s += 8 + estimateBytes(x, depth + 1);
      else for (const [k, x] of Object.entries(v)) s += 16 + k.length + estimateBytes(x, depth + 1);
      return s;
    }
    default:
      return 8;
  }
};

const storeFor = (f: FieldSchema, cap: number): Store => {
  const valid = f.nullable ? new Uint8Array(cap) : undefined;
  switch (f.dataType) {
    case "FloatVector": {
      const dim = f.dim ?? 0;
      if (!(dim > 0)) throw new Error(`vector field '${f.name}' has no dim`);
      return { kind: "vector", name: f.name, dim, chunks: [], invNorms: new Float64Array(cap) };
    }
    case "Int64":
      return { kind: "int64", name: f.name, data: new BigInt64Array(cap), valid };
    case "Int8":
    case "Int16":
    case "Int32":
    case "Float":
    case "Double":
      return { kind: "number", name: f.name, type: f.dataType, data: newNumberArray(f.dataType, cap), valid };
    case "Bool":
      return { kind: "bool", name: f.name, data: new Uint8Array(cap), valid };
    case "VarChar":
    case "JSON":
    case "Array":
      return { kind: "values", name: f.name, data: [] };
  }
};

const storeValue = (s: Store, row: number, shift: number): unknown => {
  switch (s.kind) {
    case "vector": {
      const o = (row & ((1 << shift) - 1)) * s.dim;
      return s.chunks[row >>> shift]!.slice(o, o + s.dim);
    }
    case "int64":
      return s.valid !== undefined && s.valid[row] === 0 ? null : s.data[row]!;
    case "number":
      return s.valid !== undefined && s.valid[row] === 0 ? null : s.data[row]!;
    case "bool":
      return s.valid !== undefined && s.valid[row] === 0 ? null : s.data[row] !== 0;
    case "values": {
      const v = s.data[row];
      return v === undefined ? null : v;
    }
  }
};

export class GrowingSegment {
  private cap: number;
  /** Visible rows: reads, deletes and flushes see [0, n). */
  private n = 0;
  /** Rows written: [n, end) are staged (written, not yet visible; see `stage`). */
  private end = 0;
  private deletedCount = 0;
  private insertTs: BigUint64Array;
  private deleteTs: BigUint64Array;
  private deleted: Uint8Array;
  private tsMonotonic = true;
  private lastTs = 0n;
  private valuesBytes = 0;
  private readonly stores: Store[];
  private readonly byName = new Map<string, Store>();
  private readonly meta: Store | undefined;
  private readonly pkStore: Store;
  /** Vector chunks hold 2^chunkShift rows (the first one grows by doubling up to that). */
  private readonly chunkShift: number;

  constructor(
    readonly schema: CollectionSchema,
    readonly partitionId: number,
    initialCapacity = 1024,
    vectorChunkBytes = VECTOR_CHUNK_BYTES,
  ) {
    this.cap = Math.max(1, Math.floor(initialCapacity));
    const dims = schema.fields.filter((f) => f.dataType === "FloatVector").map((f) => f.dim ?? 1);
    this.chunkShift = Math.min(30, ...dims.map((d) => chunkShiftFor(d, vectorChunkBytes)));
    this.insertTs = new BigUint64Array(this.cap);
    this.deleteTs = new BigUint64Array(this.cap);
    this.deleted = new Uint8Array(this.cap);
    this.stores = declaredFields(schema).map((f) => storeFor(f, this.cap));
    for (const s of this.stores) this.byName.set(s.name, s);
    if (hasDynamicField(schema)) {
      this.meta = { kind: "values", name: DYNAMIC_FIELD, data: [] };
      this.byName.set(DYNAMIC_FIELD, this.meta);
    }
    const pk = this.byName.get(primaryField(schema).name);
    if (pk === undefined) throw new Error("schema has no primary key column");
    this.pkStore = pk;
  }

  /** Appended rows, including deleted ones. */
  get rowCount(): number {
    return this.n;
  }

  /** Rows not deleted. */
  get liveCount(): number {
    return this.n - this.deletedCount;
  }

  /** True while every append had ts >= the previous one (lets MVCC reads binary-search the visible prefix). */
  get insertTsMonotonic(): boolean {
    return this.tsMonotonic;
  }

  private ensure(need: number): void {
    if (need <= this.cap) return;
    let cap = this.cap;
    while (cap < need) cap *= 2;
    const used = this.end;
    this.insertTs = grow(this.insertTs, (k) => new BigUint64Array(k), used, cap);
    this.deleteTs = grow(this.deleteTs, (k) => new BigUint64Array(k), used, cap);
    this.deleted = grow(this.deleted, (k) => new Uint8Array(k), used, cap);
    for (const s of this.stores) {
      switch (s.kind) {
        case "vector":
          s.invNorms = grow(s.invNorms, (k) => new Float64Array(k), used, cap);
          break;
        case "int64":
          s.data = grow(s.data, (k) => new BigInt64Array(k), used, cap);
          if (s.valid) s.valid = grow(s.valid, (k) => new Uint8Array(k), used, cap);
          break;
        case "number": {
          const t = s.type;
          s.data = grow(s.data as Float64Array, (k) => newNumberArray(t, k) as Float64Array, used, cap);
          if (s.valid) s.valid = grow(s.valid, (k) => new Uint8Array(k), used, cap);
          break;
        }
        case "bool":
          s.data = grow(s.data, (k) => new Uint8Array(k), used, cap);
          if (s.valid) s.valid = grow(s.valid, (k) => new Uint8Array(k), used, cap);
          break;
        case "values":
          break;
      }
    }
    this.cap = cap;
  }

  /** Make room for vector rows [0, need): the first chunk doubles up to full size, later chunks are allocated full. */
  private ensureChunks(s: Extract<Store, { kind: "vector" }>, need: number): void {
    const full = 2 ** this.chunkShift;
    const chunks = s.chunks;
    if (chunks.length === 0) chunks.push(new Float32Array(Math.min(full, Math.max(need, this.cap)) * s.dim));
    if (chunks.length === 1 && chunks[0]!.length < full * s.dim && need > chunks[0]!.length / s.dim) {
      let rows = chunks[0]!.length / s.dim;
      while (rows < need && rows < full) rows *= 2;
      rows = Math.min(rows, full);
      chunks[0] = grow(chunks[0]!, (k) => new Float32Array(k), Math.min(this.end, full) * s.dim, rows * s.dim);
    }
    while (chunks.length * full < need) chunks.push(new Float32Array(full * s.dim));
  }

  /** Append every row of `batch` (inserted at `ts`). The batch must have a column per declared field. */
  append(batch: RowBatch, ts: bigint): { firstRow: number } {
    const staged = this.stage(batch, ts);
    this.commitStaged(this.end);
    return staged;
  }

  /**
   * Write `batch` after every row written so far without making it visible: rows become visible,
   * in order, when `commitStaged` reaches them. Lets a shard copy a batch in while its WAL append
   * is in flight; a shard whose append fails is discarded, staged rows with it.
   */
  stage(batch: RowBatch, ts: bigint): { firstRow: number } {
    const m = batch.rowCount;
    const first = this.end;
    // Check the whole batch first so a mismatch leaves the segment untouched.
    for (const s of this.stores) {
      const c = batch.columns[s.name];
      if (c === undefined) throw new Error(`append: batch has no column '${s.name}'`);
      if (c.kind !== s.kind) throw new Error(`append: column '${s.name}' is ${c.kind}, expected ${s.kind}`);
      if (c.kind === "vector" && (c.dim !== (s as { dim: number }).dim || c.data.length < m * c.dim))
        throw new Error(`append: column '${s.name}' has dim ${c.dim} / length ${c.data.length}`);
      if (c.kind === "number" && c.type !== (s as { type: NumberType }).type)
        throw new Error(`append: column '${s.name}' is ${c.type}, expected ${(s as { type: NumberType }).type}`);
    }
    if (m === 0) return { firstRow: first };
    this.ensure(first + m);
    for (const s of this.stores) {
      const c = batch.columns[s.name]! as Column;
      switch (s.kind) {
        case "vector": {
          const dim = s.dim;
          const src = (c as { data: Float32Array }).data;
          this.ensureChunks(s, first + m);
          const shift = this.chunkShift;
          const mask = 2 ** shift - 1;
          for (let r = 0; r < m; ) {
            const row = first + r;
            const take = Math.min(m - r, mask + 1 - (row & mask));
            const piece = src.subarray(r * dim, (r + take) * dim);
            s.chunks[row >>> shift]!.set(piece, (row & mask) * dim);
            inverseNorms(piece, dim, s.invNorms, row);
            r += take;
          }
          break;
        }
        case "int64":
        case "number":
        case "bool": {
          const cc = c as { data: Uint8Array; valid?: Uint8Array };
          (s.data as Uint8Array).set(cc.data.subarray(0, m), first);
          if (s.valid) {
            if (cc.valid) s.valid.set(cc.valid.subarray(0, m), first);
            else s.valid.fill(1, first, first + m);
          }
          break;
        }
        case "values": {
          const src = (c as { data: unknown[] }).data;
          for (let r = 0; r < m; r++) {
            const v = src[r] === undefined ? null : src[r];
            s.data.push(v);
            this.valuesBytes += 8 + estimateBytes(v);
          }
          break;
        }
      }
    }
    if (this.meta) {
      const c = batch.columns[DYNAMIC_FIELD];
      const src = c?.kind === "values" ? c.data : undefined;
      const dst = (this.meta as { data: unknown[] }).data;
      for (let r = 0; r < m; r++) {
        const v = src?.[r] ?? null;
        dst.push(v);
        this.valuesBytes += 8 + estimateBytes(v);
      }
    }
    this.insertTs.fill(ts, first, first + m);
    if (ts < this.lastTs) this.tsMonotonic = false;
    this.lastTs = ts;
    this.end = first + m;
    return { firstRow: first };
  }

  /** Make the staged rows before `upTo` visible. */
  commitStaged(upTo: number): void {
    if (!(upTo >= this.n && upTo <= this.end)) throw new RangeError(`commitStaged: ${upTo} is outside the staged rows [${this.n}, ${this.end}]`);
    this.n = upTo;
  }

  private check(row: number): void {
    if (!(row >= 0 && row < this.n && Number.isInteger(row))) throw new RangeError(`row ${row} out of range [0, ${this.n})`);
  }

  /** Mark a row deleted at `ts`; deleting an already-deleted row keeps the earlier ts. */
  markDeleted(row: number, ts: bigint): void {
    this.check(row);
    if (this.deleted[row] !== 0) {
      if (ts < this.deleteTs[row]!) this.deleteTs[row] = ts;
      return;
    }
    this.deleted[row] = 1;
    this.deleteTs[row] = ts;
    this.deletedCount++;
  }

  isDeleted(row: number): boolean {
    return this.deleted[row] === 1 && row < this.n;
  }

  /** Delete ts of a deleted row (undefined if not deleted). */
  deleteTsOf(row: number): bigint | undefined {
    return this.isDeleted(row) ? this.deleteTs[row]! : undefined;
  }

  /** Is the row visible to a read at `ts` (inserted at or before, not deleted at or before)? */
  visibleAt(row: number, ts: bigint): boolean {
    if (!(row >= 0 && row < this.n)) return false;
    if (this.insertTs[row]! > ts) return false;
    return this.deleted[row] === 0 || this.deleteTs[row]! > ts;
  }

  /** Number of leading rows with insert ts <= `ts` (exact only when `insertTsMonotonic`). */
  visiblePrefix(ts: bigint): number {
    let lo = 0,
      hi = this.n;
    const t = this.insertTs;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (t[mid]! <= ts) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Deleted flags (1 = deleted), valid for [0, rowCount); may be longer. */
  deletedFlags(): Uint8Array {
    return this.deleted;
  }

  /** Insert ts per row, valid for [0, rowCount); may be longer. */
  insertTimestamps(): BigUint64Array {
    return this.insertTs;
  }

  rowTs(row: number): bigint {
    this.check(row);
    return this.insertTs[row]!;
  }

  pk(row: number): bigint | string {
    const s = this.pkStore;
    return s.kind === "int64" ? s.data[row]! : ((s as { data: unknown[] }).data[row] as string);
  }

  /** Value in the in-memory convention; `$meta` gives the row's dynamic object ({} if none). */
  value(field: string, row: number): unknown {
    this.check(row);
    const s = this.byName.get(field);
    if (s === undefined) throw new InvalidParameter({ message: `field '${field}' does not exist in the collection schema` });
    if (s === this.meta) return (s as { data: unknown[] }).data[row] ?? EMPTY_META;
    return storeValue(s, row, this.chunkShift);
  }

  /** Accessors for filter predicates (read live storage, so stay valid across appends). */
  columnSource(): { column(fieldName: string): (row: number) => unknown } {
    return {
      column: (fieldName: string): ((row: number) => unknown) => {
        const s = this.byName.get(fieldName);
        if (s === undefined) throw new InvalidParameter({ message: `field '${fieldName}' does not exist in the collection schema` });
        if (s === this.meta) {
          const st = s as { data: unknown[] };
          return (row) => st.data[row] ?? EMPTY_META;
        }
        switch (s.kind) {
          case "int64":
            return s.valid === undefined ? (row) => s.data[row] : (row) => (s.valid![row] === 0 ? null : s.data[row]);
          case "number":
            return s.valid === undefined ? (row) => s.data[row] : (row) => (s.valid![row] === 0 ? null : s.data[row]);
          case "bool":
            return s.valid === undefined ? (row) => s.data[row] !== 0 : (row) => (s.valid![row] === 0 ? null : s.data[row] !== 0);
          case "values":
            return (row) => s.data[row] ?? null;
          case "vector":
            return (row) => storeValue(s, row, this.chunkShift);
        }
      },
    };
  }

  /** Raw vector storage for search, in chunks (valid for rows [0, rowCount); see VectorChunks). */
  vectors(field: string): VectorChunks {
    const s = this.byName.get(field);
    if (s === undefined || s.kind !== "vector") throw new InvalidParameter({ message: `field '${field}' is not a vector field of the collection` });
    return { dim: s.dim, chunkShift: this.chunkShift, chunkMask: 2 ** this.chunkShift - 1, chunks: s.chunks, invNorms: s.invNorms };
  }

  /** Copy rows out as a RowBatch (declared fields, plus `$meta` when dynamic; no ts / delete info). */
  takeBatch(rows: ArrayLike<number>): RowBatch {
    const k = rows.length;
    for (let i = 0; i < k; i++) this.check(rows[i]!);
    const columns: Record<string, Column> = {};
    for (const s of this.stores) {
      switch (s.kind) {
        case "vector": {
          const out = new Float32Array(k * s.dim);
          const shift = this.chunkShift;
          const mask = 2 ** shift - 1;
          for (let i = 0; i < k; i++) {
            const r = rows[i]!;
            const o = (r & mask) * s.dim;
            out.set(s.chunks[r >>> shift]!.subarray(o, o + s.dim), i * s.dim);
          }
          columns[s.name] = { kind: "vector", dim: s.dim, data: out };
          break;
        }
        case "int64":
        case "number":
        case "bool": {
          const data = s.kind === "int64" ? new BigInt64Array(k) : s.kind === "number" ? newNumberArray(s.type, k) : new Uint8Array(k);
          const src = s.data;
          for (let i = 0; i < k; i++) (data as Uint8Array)[i] = (src as Uint8Array)[rows[i]!]!;
          let valid: { valid?: Uint8Array } = {};
          if (s.valid) {
            const v = new Uint8Array(k);
            for (let i = 0; i < k; i++) v[i] = s.valid[rows[i]!]!;
            valid = { valid: v };
          }
          if (s.kind === "int64") columns[s.name] = { kind: "int64", data: data as BigInt64Array, ...valid };
          else if (s.kind === "number") columns[s.name] = { kind: "number", type: s.type, data: data as NumberArray, ...valid };
          else columns[s.name] = { kind: "bool", data: data as Uint8Array, ...valid };
          break;
        }
        case "values": {
          const out = new Array<unknown>(k);
          for (let i = 0; i < k; i++) out[i] = s.data[rows[i]!] ?? null;
          columns[s.name] = { kind: "values", data: out };
          break;
        }
      }
    }
    if (this.meta) {
      const src = (this.meta as { data: unknown[] }).data;
      const out = new Array<unknown>(k);
      for (let i = 0; i < k; i++) out[i] = src[rows[i]!] ?? null;
      columns[DYNAMIC_FIELD] = { kind: "values", data: out };
    }
    return { rowCount: k, columns };
  }

  /** Bytes held: typed-array capacity plus an estimate for JS-array values. */
  memoryBytes(): number {
    let b = this.insertTs.byteLength + this.deleteTs.byteLength + this.deleted.byteLength + this.valuesBytes;
    for (const s of this.stores) {
      if (s.kind === "vector") {
        b += s.invNorms.byteLength;
        for (const c of s.chunks) b += c.byteLength;
      }
      else if (s.kind === "values") continue;
      else b += s.data.byteLength + (s.valid?.byteLength ?? 0);
    }
    return b;
  }
}
