/**
 * Columnar row batches: the shape written to the WAL and kept in memory.
 *
 * One column per declared field (keyed by field name) plus `$meta` (a values
 * column of per-row dynamic objects, `null` when a row has no dynamic keys)
 * when the dynamic field is enabled. Values follow the in-memory conventions
 * of `schemas/collection.ts`; Float columns hold float32-rounded numbers.
 *
 * Wire form: `encodeBatch` / `decodeBatch` (msgpackr with `moreTypes`, which
 * round-trips every typed array used here exactly; verified in
 * columns.test.ts). Callers embed the bytes; they need no msgpack options.
 */
import { Packr } from "msgpackr";
import { DYNAMIC_FIELD, type CollectionSchema, type FieldSchema } from "../schemas/collection.ts";

/** Whether this host stores multi-byte numbers little-endian (typed arrays use the host's order). */
export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export type NumberType = "Int8" | "Int16" | "Int32" | "Float" | "Double";
export type NumberArray = Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export type Column =
  | { kind: "vector"; dim: number; data: Float32Array }
  | { kind: "int64"; data: BigInt64Array; valid?: Uint8Array }
  | { kind: "number"; type: NumberType; data: NumberArray; valid?: Uint8Array }
  | { kind: "bool"; data: Uint8Array; valid?: Uint8Array }
  | { kind: "values"; data: unknown[] };

export interface RowBatch {
  rowCount: number;
  columns: Record<string, Column>;
}

/** Is the dynamic field (`$meta`) enabled for this schema? */
export const hasDynamicField = (schema: CollectionSchema): boolean =>
  schema.enableDynamicField || schema.fields.some((f) => f.isDynamic);

/** Declared (non-dynamic) fields, in schema order. */
export const declaredFields = (schema: CollectionSchema): FieldSchema[] => schema.fields.filter((f) => !f.isDynamic);

export const newNumberArray = (type: NumberType, n: number): NumberArray => {
  switch (type) {
    case "Int8":
      return new Int8Array(n);
    case "Int16":
      return new Int16Array(n);
    case "Int32":
      return new Int32Array(n);
    case "Float":
      return new Float32Array(n);
    case "Double":
      return new Float64Array(n);
  }
};

/** A zero-filled column for `field` with room for `n` rows (nullable fields get a `valid` array, all 0). */
export const allocColumn = (field: FieldSchema, n: number): Column => {
  const valid = field.nullable ? { valid: new Uint8Array(n) } : {};
  switch (field.dataType) {
    case "FloatVector": {
      const dim = field.dim ?? 0;
      return { kind: "vector", dim, data: new Float32Array(n * dim) };
    }
    case "Int64":
      return { kind: "int64", data: new BigInt64Array(n), ...valid };
    case "Int8":
    case "Int16":
    case "Int32":
    case "Float":
    case "Double":
      return { kind: "number", type: field.dataType, data: newNumberArray(field.dataType, n), ...valid };
    case "Bool":
      return { kind: "bool", data: new Uint8Array(n), ...valid };
    case "VarChar":
    case "JSON":
    case "Array":
      return { kind: "values", data: new Array<unknown>(n).fill(null) };
  }
};

/** Value of one cell in the in-memory convention; vectors are returned as a copy. */
export const columnValue = (col: Column, row: number): unknown => {
  switch (col.kind) {
    case "vector":
      return col.data.slice(row * col.dim, (row + 1) * col.dim);
    case "int64":
      return col.valid !== undefined && col.valid[row] === 0 ? null : col.data[row];
    case "number":
      return col.valid !== undefined && col.valid[row] === 0 ? null : col.data[row];
    case "bool":
      return col.valid !== undefined && col.valid[row] === 0 ? null : col.data[row] !== 0;
    case "values": {
      const v = col.data[row];
      return v === undefined ? null : v;
    }
  }
};

const checkRows = (rowCount: number, rows: ArrayLike<number>): void => {
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (!Number.isInteger(r) || r < 0 || r >= rowCount) throw new RangeError(`row ${r} out of range [0, ${rowCount})`);
  }
};

const takeColumn = (col: Column, rows: ArrayLike<number>): Column => {
  const n = rows.length;
  const takeValid = (valid: Uint8Array | undefined): { valid?: Uint8Array } => {
    if (valid === undefined) return {};
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = valid[rows[i]!]!;
    return { valid: out };
  };
  switch (col.kind) {
    case "vector": {
      const { dim } = col;
      const out = new Float32Array(n * dim);
      for (let i = 0; i < n; i++) {
        const s = rows[i]! * dim;
        out.set(col.data.subarray(s, s + dim), i * dim);
      }
      return { kind: "vector", dim, data: out };
    }
    case "int64": {
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) out[i] = col.data[rows[i]!]!;
      return { kind: "int64", data: out, ...takeValid(col.valid) };
    }
    case "number": {
      const out = newNumberArray(col.type, n);
      for (let i = 0; i < n; i++) out[i] = col.data[rows[i]!]!;
      return { kind: "number", type: col.type, data: out, ...takeValid(col.valid) };
    }
    case "bool": {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = col.data[rows[i]!]!;
      return { kind: "bool", data: out, ...takeValid(col.valid) };
    }
    case "values": {
      const out = new Array<unknown>(n);
      for (let i = 0; i < n; i++) {
        const v = col.data[rows[i]!];
        out[i] = v === undefined ? null : v;
      }
      return { kind: "values", data: out };
    }
  }
};

/** The given rows of `batch`, in the given order (used to split a batch by shard). */
export const takeRows = (batch: RowBatch, rows: ArrayLike<number>): RowBatch => {
  checkRows(batch.rowCount, rows);
  const columns: Record<string, Column> = {};
  for (const name of Object.keys(batch.columns)) columns[name] = takeColumn(batch.columns[name]!, rows);
  return { rowCount: rows.length, columns };
};

/** Empty (0-row) batch with one column per declared field, plus `$meta` when dynamic. */
export const emptyBatch = (schema: CollectionSchema): RowBatch => {
  const columns: Record<string, Column> = {};
  for (const f of declaredFields(schema)) columns[f.name] = allocColumn(f, 0);
  if (hasDynamicField(schema)) columns[DYNAMIC_FIELD] = { kind: "values", data: [] };
  return { rowCount: 0, columns };
};

const sameShape = (a: Column, b: Column): boolean =>
  a.kind === b.kind &&
  (a.kind !== "vector" || a.dim === (b as typeof a).dim) &&
  (a.kind !== "number" || a.type === (b as typeof a).type);

/**
 * Concatenate batches (all with the same columns). A `valid` array present in
 * some inputs but not others is treated as all-valid where absent. With no
 * batches, returns `emptyBatch(schema)`.
 */
export const concatBatches = (schema: CollectionSchema, batches: readonly RowBatch[]): RowBatch => {
  if (batches.length === 0) return emptyBatch(schema);
  if (batches.length === 1) return batches[0]!;
  const names = Object.keys(batches[0]!.columns);
  let total = 0;
  for (const b of batches) {
    total += b.rowCount;
    const keys = Object.keys(b.columns);
    if (keys.length !== names.length || names.some((n) => b.columns[n] === undefined))
      throw new Error(`concatBatches: batches have different columns (${names.join(",")} vs ${keys.join(",")})`);
  }
  const columns: Record<string, Column> = {};
  for (const name of names) {
    const first = batches[0]!.columns[name]!;
    const cols = batches.map((b) => b.columns[name]!);
    for (const c of cols) if (!sameShape(first, c)) throw new Error(`concatBatches: column '${name}' differs in kind`);
    if (first.kind === "values") {
      const out = new Array<unknown>(total);
      let o = 0;
      for (let bi = 0; bi < batches.length; bi++) {
        const d = (cols[bi] as { data: unknown[] }).data;
        for (let i = 0; i < batches[bi]!.rowCount; i++) out[o++] = d[i] === undefined ? null : d[i];
      }
      columns[name] = { kind: "values", data: out };
      continue;
    }
    const width = first.kind === "vector" ? first.dim : 1;
    const data: Float32Array | BigInt64Array | NumberArray | Uint8Array =
      first.kind === "vector"
        ? new Float32Array(total * width)
        : first.kind === "int64"
          ? new BigInt64Array(total)
          : first.kind === "number"
            ? newNumberArray(first.type, total)
            : new Uint8Array(total);
    const anyValid = first.kind !== "vector" && cols.some((c) => (c as { valid?: Uint8Array }).valid !== undefined);
    const valid = anyValid ? new Uint8Array(total) : undefined;
    let o = 0;
    for (let bi = 0; bi < batches.length; bi++) {
      const n = batches[bi]!.rowCount;
      const c = cols[bi] as { data: typeof data; valid?: Uint8Array };
      (data as Uint8Array).set((c.data as Uint8Array).subarray(0, n * width), o * width);
      if (valid !== undefined) {
        if (c.valid !== undefined) valid.set(c.valid.subarray(0, n), o);
        else valid.fill(1, o, o + n);
      }
      o += n;
    }
    const v = valid !== undefined ? { valid } : {};
    switch (first.kind) {
      case "vector":
        columns[name] = { kind: "vector", dim: first.dim, data: data as Float32Array };
        break;
      case "int64":
        columns[name] = { kind: "int64", data: data as BigInt64Array, ...v };
        break;
      case "number":
        columns[name] = { kind: "number", type: first.type, data: data as NumberArray, ...v };
        break;
      case "bool":
        columns[name] = { kind: "bool", data: data as Uint8Array, ...v };
        break;
    }
  }
  return { rowCount: total, columns };
};

// ---------------------------------------------------------------------------
// Wire encoding

const packr = new Packr({
  moreTypes: true,
  int64AsType: "bigint",
  useRecords: false,
  mapsAsObjects: true,
  useToJSON: false,
});

const ENCODING_VERSION = 1;

/**
 * Batches by the bytes they were encoded to (or decoded from) in this process. A write handed
 * to an actor in the same process (local delivery) keeps its bytes object, so the receiver gets
 * the batch back without decoding it again. Batches are never mutated once encoded.
 */
const batchByBytes = new WeakMap<Uint8Array, RowBatch>();

/** Bytes for a batch (msgpack: `[1, rowCount, columns]`, typed arrays via msgpackr's typed-array extension). */
export const encodeBatch = (batch: RowBatch): Uint8Array => {
  const bytes = packr.pack([ENCODING_VERSION, batch.rowCount, batch.columns]);
  batchByBytes.set(bytes, batch);
  return bytes;
};

/** `decodeBatch`, once per bytes object: free for bytes encoded (or already decoded) in this process. */
export const batchOf = (bytes: Uint8Array): RowBatch => {
  let batch = batchByBytes.get(bytes);
  if (!batch) {
    batch = decodeBatch(bytes);
    batchByBytes.set(bytes, batch);
  }
  return batch;
};

const bad = (why: string): never => {
  throw new Error(`decodeBatch: ${why}`);
};

/** Inverse of `encodeBatch`; checks the structure and array lengths (throws Error on corrupt input). */
export const decodeBatch = (bytes: Uint8Array): RowBatch => {
  const v: unknown = packr.unpack(bytes);
  if (!Array.isArray(v) || v.length !== 3 || v[0] !== ENCODING_VERSION) return bad("not a version-1 row batch");
  const rowCount = v[1] as unknown;
  const columns = v[2] as unknown;
  if (typeof rowCount !== "number" || !Number.isInteger(rowCount) || rowCount < 0) return bad("bad rowCount");
  if (typeof columns !== "object" || columns === null || Array.isArray(columns)) return bad("bad columns");
  for (const [name, c] of Object.entries(columns as Record<string, unknown>)) {
    const col = c as Partial<Record<string, unknown>>;
    const n = (x: unknown, ctor: Function, len: number): void => {
      if (!(x instanceof ctor) || (x as ArrayLike<unknown>).length !== len) bad(`column '${name}': bad data`);
    };
    const checkValid = (): void => {
      if (col.valid !== undefined) n(col.valid, Uint8Array, rowCount);
    };
    switch (col?.kind) {
      case "vector":
        if (typeof col.dim !== "number") bad(`column '${name}': bad dim`);
        n(col.data, Float32Array, rowCount * (col.dim as number));
        break;
      case "int64":
        n(col.data, BigInt64Array, rowCount);
        checkValid();
        break;
      case "number": {
        const ctors = { Int8: Int8Array, Int16: Int16Array, Int32: Int32Array, Float: Float32Array, Double: Float64Array };
        const ctor = ctors[col.type as NumberType];
        if (ctor === undefined) bad(`column '${name}': bad number type`);
        n(col.data, ctor, rowCount);
        checkValid();
        break;
      }
      case "bool":
        n(col.data, Uint8Array, rowCount);
        checkValid();
        break;
      case "values":
        n(col.data, Array, rowCount);
        break;
      default:
        bad(`column '${name}': unknown kind`);
    }
  }
  return { rowCount, columns: columns as Record<string, Column> };
};
