/**
 * The sealed-segment file format: columnar binlogs, a stats object and delta
 * logs, each one self-checking object (see `schemas/names.ts` objectNames for
 * where they live in the Object Store).
 *
 * Every object is an envelope:
 *
 *   offset size  header (32 bytes, little-endian)
 *        0    4  magic "NVB1"
 *        4    2  version (1)
 *        6    1  kind: 1 field insert log, 2 insert-timestamp log, 3 stats, 4 delta log
 *        7    1  data type code (TYPE_CODES; 0 = none)
 *        8    1  payload encoding: 1 raw little-endian fixed width, 2 msgpack
 *        9    1  flags: bit 0 = a validity bitmap follows the raw data
 *       10    2  reserved (0)
 *       12    4  fieldId (int32; 1 for the timestamp log, the pk field for stats, 0 for delta logs)
 *       16    4  dim (uint32; FloatVector only, else 0)
 *       20    4  rowCount (uint32)
 *       24    8  payload length (uint64)
 *       32    …  payload
 *   32 + len  32  SHA-256 of header + payload
 *
 * Payloads. Fixed-width fields (Bool as one byte 0/1, Int8/16/32/64, Float,
 * Double, FloatVector, and the timestamp log as uint64): the typed array's
 * bytes (rowCount × width), then, when the column has a validity array, a
 * bitmap of ceil(rowCount / 8) bytes (bit i%8 of byte i/8 = row i valid;
 * unused bits 0). Variable-width fields (VarChar, JSON, Array, `$meta`): a
 * msgpack array of rowCount values (Int64 / bigint values stay bigint).
 *
 * Decoding verifies length, checksum and header (magic, version, kind, type,
 * fieldId and dim against the expected field, rowCount against the payload)
 * and throws `ChecksumMismatch` on any failure: it never returns corrupt data.
 * Decoded columns never share memory with the input bytes.
 *
 * A segment is one insert log per field (keyed by fieldId, `$meta` included),
 * the insert-timestamp log under `TS_FIELD_ID` (1), and a stats object
 * (row count, pk range, the pks sorted ascending with the row of each, and the
 * insert logs' total size). Primary keys are the pk field's own log.
 * VarChar pks sort by JS string order (UTF-16 code units); equal pks keep row
 * order, so `pkIndexOf` finds the first of them.
 */
import { createHash } from "node:crypto";
import { Packr } from "msgpackr";
import { DYNAMIC_FIELD, primaryField, type CollectionSchema, type DataType, type FieldSchema } from "../schemas/collection.ts";
import { declaredFields, hasDynamicField, LITTLE_ENDIAN, type Column, type NumberArray, type NumberType, type RowBatch } from "./columns.ts";

/** fieldId of the hidden insert-timestamp log (Milvus's reserved Timestamp field id). */
export const TS_FIELD_ID = 1;

/** The object failed verification (length, checksum, header, or consistency with the other objects of its segment). */
export class ChecksumMismatch extends Error {
  override readonly name = "ChecksumMismatch";
  constructor(
    /** What was being decoded: the object name when the caller gave it. */
    readonly object: string,
    readonly reason: string,
  ) {
    super(`corrupt object '${object}': ${reason}`);
  }
}

export interface SegmentStats {
  rowCount: number;
  pkMin: bigint | string;
  pkMax: bigint | string;
  /** All pks, sorted ascending (equal pks in row order). */
  sortedPks: BigInt64Array | string[];
  /** rowOfSorted[i] = row number (in the segment's logs) of sortedPks[i]. */
  rowOfSorted: Int32Array;
  /** Total bytes of the segment's insert logs (all fields + timestamp log). */
  sizeBytes: number;
}

export interface DeltaEntry {
  pk: bigint | string;
  ts: bigint;
}

// ---------------------------------------------------------------------------
// Envelope

const MAGIC = [0x4e, 0x56, 0x42, 0x31]; // "NVB1"
const VERSION = 1;
const HEADER_BYTES = 32;
const DIGEST_BYTES = 32;

const KIND_INSERT = 1;
const KIND_TS = 2;
const KIND_STATS = 3;
const KIND_DELTA = 4;
const KIND_NAMES: Record<number, string> = { 1: "field insert log", 2: "timestamp log", 3: "stats", 4: "delta log" };

const ENC_RAW = 1;
const ENC_MSGPACK = 2;
const FLAG_VALIDITY = 1;

/** Data type codes in the header. */
export const TYPE_CODES: Readonly<Record<DataType | "Timestamp", number>> = {
  Bool: 1,
  Int8: 2,
  Int16: 3,
  Int32: 4,
  Int64: 5,
  Float: 6,
  Double: 7,
  VarChar: 8,
  JSON: 9,
  Array: 10,
  FloatVector: 11,
  Timestamp: 12,
};
const TYPE_BY_CODE = new Map<number, DataType | "Timestamp">(Object.entries(TYPE_CODES).map(([k, v]) => [v, k as DataType | "Timestamp"]));

/** Reverse each `width`-byte group in place (only used on big-endian hosts). */
const swapBytes = (u8: Uint8Array, width: number): void => {
  if (width === 1) return;
  for (let o = 0; o + width <= u8.length; o += width) {
    for (let i = 0, j = width - 1; i < j; i++, j--) {
      const t = u8[o + i]!;
      u8[o + i] = u8[o + j]!;
      u8[o + j] = t;
    }
  }
};

// msgpackr's typings lag its options (useBigInt64 / int64AsType are real).
const packr = new Packr({
  useRecords: false,
  moreTypes: true,
  useBigInt64: true,
  int64AsType: "bigint",
  mapsAsObjects: true,
  useToJSON: false,
} as ConstructorParameters<typeof Packr>[0]);

interface HeaderFields {
  kind: number;
  typeCode: number;
  encoding: number;
  flags: number;
  fieldId: number;
  dim: number;
  rowCount: number;
}

const checkU32 = (what: string, v: number): void => {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${what} ${v} does not fit the binlog header`);
};

/** Build an envelope: header, then `payloadLength` bytes written by `write(out, offset)`, then the digest. */
const seal = (h: HeaderFields, payloadLength: number, write: (out: Uint8Array, offset: number) => void): Uint8Array => {
  checkU32("rowCount", h.rowCount);
  checkU32("dim", h.dim);
  if (!Number.isInteger(h.fieldId) || h.fieldId < -0x80000000 || h.fieldId > 0x7fffffff) throw new RangeError(`fieldId ${h.fieldId} is not an int32`);
  const out = new Uint8Array(HEADER_BYTES + payloadLength + DIGEST_BYTES);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out.set(MAGIC, 0);
  dv.setUint16(4, VERSION, true);
  dv.setUint8(6, h.kind);
  dv.setUint8(7, h.typeCode);
  dv.setUint8(8, h.encoding);
  dv.setUint8(9, h.flags);
  dv.setUint16(10, 0, true);
  dv.setInt32(12, h.fieldId, true);
  dv.setUint32(16, h.dim, true);
  dv.setUint32(20, h.rowCount, true);
  dv.setBigUint64(24, BigInt(payloadLength), true);
  write(out, HEADER_BYTES);
  const end = HEADER_BYTES + payloadLength;
  out.set(createHash("sha256").update(out.subarray(0, end)).digest(), end);
  return out;
};

const sealMsgpack = (h: HeaderFields, value: unknown): Uint8Array => {
  const payload = packr.pack(value);
  return seal({ ...h, encoding: ENC_MSGPACK }, payload.byteLength, (out, o) => out.set(payload, o));
};

interface Opened extends HeaderFields {
  payload: Uint8Array;
}

/** Verify an envelope (length, digest, header) and return its header and payload view. */
const open = (bytes: Uint8Array, what: string, kinds: readonly number[]): Opened => {
  const fail = (reason: string): never => {
    throw new ChecksumMismatch(what, reason);
  };
  if (!(bytes instanceof Uint8Array)) fail("not a byte array");
  if (bytes.byteLength < HEADER_BYTES + DIGEST_BYTES)
    fail(`truncated: ${bytes.byteLength} bytes, shorter than header + checksum (${HEADER_BYTES + DIGEST_BYTES})`);
  for (let i = 0; i < 4; i++) if (bytes[i] !== MAGIC[i]) fail("bad magic (not a natsvec binlog)");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = dv.getBigUint64(24, true);
  const actual = BigInt(bytes.byteLength - HEADER_BYTES - DIGEST_BYTES);
  if (declared !== actual)
    fail(`length mismatch: header declares a ${declared}-byte payload, object holds ${actual} (truncated or extended)`);
  const end = bytes.byteLength - DIGEST_BYTES;
  const digest = createHash("sha256").update(bytes.subarray(0, end)).digest();
  for (let i = 0; i < DIGEST_BYTES; i++) if (digest[i] !== bytes[end + i]) fail("SHA-256 checksum mismatch");
  // Checksum is good: what follows only rejects objects a correct encoder never writes.
  const version = dv.getUint16(4, true);
  if (version !== VERSION) fail(`unsupported version ${version}`);
  const h: Opened = {
    kind: dv.getUint8(6),
    typeCode: dv.getUint8(7),
    encoding: dv.getUint8(8),
    flags: dv.getUint8(9),
    fieldId: dv.getInt32(12, true),
    dim: dv.getUint32(16, true),
    rowCount: dv.getUint32(20, true),
    payload: bytes.subarray(HEADER_BYTES, end),
  };
  if (dv.getUint16(10, true) !== 0) fail("reserved header bytes are not zero");
  if (!kinds.includes(h.kind)) fail(`is a ${KIND_NAMES[h.kind] ?? `kind-${h.kind} object`}, expected ${kinds.map((k) => KIND_NAMES[k]).join(" or ")}`);
  if (h.encoding !== ENC_RAW && h.encoding !== ENC_MSGPACK) fail(`unknown payload encoding ${h.encoding}`);
  if ((h.flags & ~FLAG_VALIDITY) !== 0) fail(`unknown flags ${h.flags}`);
  if (h.typeCode !== 0 && !TYPE_BY_CODE.has(h.typeCode)) fail(`unknown data type code ${h.typeCode}`);
  return h;
};

const unpackPayload = (h: Opened, what: string): unknown => {
  if (h.encoding !== ENC_MSGPACK) throw new ChecksumMismatch(what, "expected a msgpack payload");
  try {
    return packr.unpack(h.payload);
  } catch (e) {
    throw new ChecksumMismatch(what, `undecodable msgpack payload: ${(e as Error).message}`);
  }
};

// ---------------------------------------------------------------------------
// Field logs

type FixedCtor =
  | Uint8ArrayConstructor
  | Int8ArrayConstructor
  | Int16ArrayConstructor
  | Int32ArrayConstructor
  | BigInt64ArrayConstructor
  | BigUint64ArrayConstructor
  | Float32ArrayConstructor
  | Float64ArrayConstructor;
type FixedArray = Uint8Array | NumberArray | BigInt64Array | BigUint64Array;

const FIXED: Partial<Record<DataType | "Timestamp", { ctor: FixedCtor; bytes: number }>> = {
  Bool: { ctor: Uint8Array, bytes: 1 },
  Int8: { ctor: Int8Array, bytes: 1 },
  Int16: { ctor: Int16Array, bytes: 2 },
  Int32: { ctor: Int32Array, bytes: 4 },
  Int64: { ctor: BigInt64Array, bytes: 8 },
  Float: { ctor: Float32Array, bytes: 4 },
  Double: { ctor: Float64Array, bytes: 8 },
  FloatVector: { ctor: Float32Array, bytes: 4 },
  Timestamp: { ctor: BigUint64Array, bytes: 8 },
};

const describeField = (f: FieldSchema | "ts"): string => (f === "ts" ? "timestamp log" : `field '${f.name}' (fieldId ${f.fieldId})`);

/** Does `col` have the shape the field's data type needs? Returns a reason when not. */
const columnMismatch = (field: FieldSchema, col: Column): string | undefined => {
  const t = field.dataType;
  switch (t) {
    case "FloatVector":
      if (col.kind !== "vector") return `is ${col.kind}, expected vector`;
      if (field.dim !== undefined && col.dim !== field.dim) return `has dim ${col.dim}, the field has ${field.dim}`;
      return undefined;
    case "Int64":
      return col.kind === "int64" ? undefined : `is ${col.kind}, expected int64`;
    case "Bool":
      return col.kind === "bool" ? undefined : `is ${col.kind}, expected bool`;
    case "Int8":
    case "Int16":
    case "Int32":
    case "Float":
    case "Double":
      if (col.kind !== "number") return `is ${col.kind}, expected number`;
      return col.type === t ? undefined : `is ${col.type}, expected ${t}`;
    case "VarChar":
    case "JSON":
    case "Array":
      return col.kind === "values" ? undefined : `is ${col.kind}, expected values`;
  }
};

const encodeFixed = (
  h: Omit<HeaderFields, "encoding" | "flags">,
  data: FixedArray,
  count: number,
  elemBytes: number,
  valid: Uint8Array | undefined,
  rowCount: number,
): Uint8Array => {
  if (data.length < count) throw new RangeError(`encodeFieldLog: data has ${data.length} elements, need ${count}`);
  if (valid !== undefined && valid.length < rowCount) throw new RangeError(`encodeFieldLog: validity has ${valid.length} rows, need ${rowCount}`);
  const dataBytes = count * elemBytes;
  const bitmapBytes = valid !== undefined ? Math.ceil(rowCount / 8) : 0;
  return seal({ ...h, encoding: ENC_RAW, flags: valid !== undefined ? FLAG_VALIDITY : 0 }, dataBytes + bitmapBytes, (out, o) => {
    out.set(new Uint8Array(data.buffer, data.byteOffset, dataBytes), o);
    if (!LITTLE_ENDIAN) swapBytes(out.subarray(o, o + dataBytes), elemBytes);
    if (valid !== undefined) {
      const bm = out.subarray(o + dataBytes, o + dataBytes + bitmapBytes);
      for (let i = 0; i < rowCount; i++) if (valid[i] !== 0) bm[i >>> 3] |= 1 << (i & 7);
    }
  });
};

/**
 * One field's insert log (or, with `field = "ts"`, the insert-timestamp log
 * from a BigUint64Array). Only the first `rowCount` rows of the column are
 * written (growing-segment arrays may be longer).
 */
export function encodeFieldLog(field: FieldSchema | "ts", column: Column | BigUint64Array, rowCount: number): Uint8Array {
  checkU32("rowCount", rowCount);
  if (field === "ts") {
    if (!(column instanceof BigUint64Array)) throw new TypeError("encodeFieldLog: the timestamp log takes a BigUint64Array");
    return encodeFixed({ kind: KIND_TS, typeCode: TYPE_CODES.Timestamp, fieldId: TS_FIELD_ID, dim: 0, rowCount }, column, rowCount, 8, undefined, rowCount);
  }
  if (column instanceof BigUint64Array) throw new TypeError(`encodeFieldLog: ${describeField(field)} takes a Column, got a BigUint64Array`);
  if (field.fieldId === TS_FIELD_ID) throw new RangeError(`encodeFieldLog: fieldId ${TS_FIELD_ID} is reserved for the timestamp log`);
  const bad = columnMismatch(field, column);
  if (bad !== undefined) throw new TypeError(`encodeFieldLog: column of ${describeField(field)} ${bad}`);
  const base = { kind: KIND_INSERT, typeCode: TYPE_CODES[field.dataType], fieldId: field.fieldId, rowCount };
  switch (column.kind) {
    case "vector":
      return encodeFixed({ ...base, dim: column.dim }, column.data, rowCount * column.dim, 4, undefined, rowCount);
    case "int64":
    case "number":
    case "bool":
      return encodeFixed({ ...base, dim: 0 }, column.data, rowCount, FIXED[field.dataType]!.bytes, column.valid, rowCount);
    case "values": {
      if (column.data.length < rowCount) throw new RangeError(`encodeFieldLog: column has ${column.data.length} rows, need ${rowCount}`);
      const vals = new Array<unknown>(rowCount);
      for (let i = 0; i < rowCount; i++) {
        const v = column.data[i];
        vals[i] = v === undefined ? null : v;
      }
      return sealMsgpack({ ...base, dim: 0, encoding: ENC_MSGPACK, flags: 0 }, vals);
    }
  }
}

/** Expected shape of an insert log: a field of the schema, "ts" for the timestamp log, or undefined for whatever the header says. */
export interface FieldLogExpectation {
  field?: FieldSchema | "ts";
  /** Names the object in errors (use the object name). */
  what: string;
}

const decodeFieldLogRows = (bytes: Uint8Array, expect: FieldLogExpectation): { value: Column | BigUint64Array; rowCount: number } => {
  const { field, what } = expect;
  const fail = (reason: string): never => {
    throw new ChecksumMismatch(what, reason);
  };
  const h = open(bytes, what, field === "ts" ? [KIND_TS] : field === undefined ? [KIND_INSERT, KIND_TS] : [KIND_INSERT]);
  const type = TYPE_BY_CODE.get(h.typeCode);
  if (type === undefined) return fail("field log without a data type");
  if (h.kind === KIND_TS) {
    if (type !== "Timestamp" || h.fieldId !== TS_FIELD_ID) fail(`timestamp log with type ${type} / fieldId ${h.fieldId}`);
  } else {
    if (type === "Timestamp") fail("field insert log with the timestamp type");
    if (h.fieldId === TS_FIELD_ID) fail(`field insert log under the reserved fieldId ${TS_FIELD_ID}`);
  }
  if (field !== undefined && field !== "ts") {
    if (h.fieldId !== field.fieldId) fail(`holds fieldId ${h.fieldId}, expected ${describeField(field)}`);
    if (type !== field.dataType) fail(`holds ${type} data, ${describeField(field)} is ${field.dataType}`);
    if (type === "FloatVector" && field.dim !== undefined && h.dim !== field.dim) fail(`holds dim ${h.dim}, ${describeField(field)} has dim ${field.dim}`);
  }
  const n = h.rowCount;
  const fixed = FIXED[type];
  if (fixed !== undefined) {
    if (h.encoding !== ENC_RAW) fail(`${type} data must be raw`);
    if (type === "FloatVector") {
      if (h.dim === 0) fail("vector log with dim 0");
      if ((h.flags & FLAG_VALIDITY) !== 0) fail("vector log with a validity bitmap");
    } else if (h.dim !== 0) fail(`${type} log with dim ${h.dim}`);
    if (type === "Timestamp" && (h.flags & FLAG_VALIDITY) !== 0) fail("timestamp log with a validity bitmap");
    const count = type === "FloatVector" ? n * h.dim : n;
    const dataBytes = count * fixed.bytes;
    const hasValid = (h.flags & FLAG_VALIDITY) !== 0;
    const bitmapBytes = hasValid ? Math.ceil(n / 8) : 0;
    if (!Number.isSafeInteger(dataBytes) || h.payload.byteLength !== dataBytes + bitmapBytes)
      fail(`payload is ${h.payload.byteLength} bytes, ${n} rows of ${type}${hasValid ? " + validity bitmap" : ""} need ${dataBytes + bitmapBytes}`);
    // A fresh, aligned copy (ArrayBuffer.slice copies without zero-filling first).
    const buf = h.payload.buffer.slice(h.payload.byteOffset, h.payload.byteOffset + dataBytes) as ArrayBuffer;
    if (!LITTLE_ENDIAN) swapBytes(new Uint8Array(buf), fixed.bytes);
    const data = new fixed.ctor(buf);
    let valid: Uint8Array | undefined;
    if (hasValid) {
      const bm = h.payload.subarray(dataBytes);
      valid = new Uint8Array(n);
      for (let i = 0; i < n; i++) valid[i] = (bm[i >>> 3]! >>> (i & 7)) & 1;
      if (n % 8 !== 0 && bm[bm.length - 1]! >>> (n % 8) !== 0) fail("validity bitmap has bits set past the last row");
    }
    const v = valid !== undefined ? { valid } : {};
    let value: Column | BigUint64Array;
    switch (type) {
      case "Timestamp":
        value = data as BigUint64Array;
        break;
      case "FloatVector":
        value = { kind: "vector", dim: h.dim, data: data as Float32Array };
        break;
      case "Int64":
        value = { kind: "int64", data: data as BigInt64Array, ...v };
        break;
      case "Bool":
        value = { kind: "bool", data: data as Uint8Array, ...v };
        break;
      default:
        value = { kind: "number", type: type as NumberType, data: data as NumberArray, ...v };
    }
    return { value, rowCount: n };
  }
  // Variable width: msgpack array of rowCount values.
  if (h.flags !== 0 || h.dim !== 0) fail(`${type} log with flags ${h.flags} / dim ${h.dim}`);
  const vals = unpackPayload(h, what);
  if (!Array.isArray(vals) || vals.length !== n) return fail(`payload is not an array of ${n} values`);
  for (let i = 0; i < n; i++) {
    const x = vals[i];
    if (x === undefined) vals[i] = null;
    else if (type === "VarChar" && x !== null && typeof x !== "string") fail(`VarChar row ${i} is a ${typeof x}`);
    else if (type === "Array" && x !== null && !Array.isArray(x)) fail(`Array row ${i} is not an array`);
  }
  return { value: { kind: "values", data: vals }, rowCount: n };
};

/**
 * Verify and decode one insert log. Throws ChecksumMismatch (naming
 * `expect.what`) on any corruption or when the object is not the expected
 * field's log.
 */
export function decodeFieldLog(bytes: Uint8Array, expect: FieldLogExpectation): Column | BigUint64Array {
  return decodeFieldLogRows(bytes, expect).value;
}

// ---------------------------------------------------------------------------
// Stats

const pkKind = (pk: FieldSchema): "Int64" | "VarChar" => {
  if (pk.dataType !== "Int64" && pk.dataType !== "VarChar") throw new TypeError(`primary key '${pk.name}' is ${pk.dataType}, expected Int64 or VarChar`);
  return pk.dataType;
};

/** Sort permutation of the pks (stable: equal pks in row order). */
const sortPks = (pks: BigInt64Array | string[], n: number): Int32Array => {
  const order = new Int32Array(n);
  let sorted = true;
  for (let i = 0; i < n; i++) {
    order[i] = i;
    if (i > 0 && pks[i - 1]! > pks[i]!) sorted = false;
  }
  if (!sorted) {
    if (pks instanceof BigInt64Array) order.sort((a, b) => (pks[a]! < pks[b]! ? -1 : pks[a]! > pks[b]! ? 1 : a - b));
    else order.sort((a, b) => (pks[a]! < pks[b]! ? -1 : pks[a]! > pks[b]! ? 1 : a - b));
  }
  return order;
};

const computeStats = (pkField: FieldSchema, col: Column, n: number, sizeBytes: number): SegmentStats => {
  let rowOfSorted: Int32Array;
  let sortedPks: BigInt64Array | string[];
  if (pkKind(pkField) === "Int64") {
    if (col.kind !== "int64") throw new TypeError(`primary key column '${pkField.name}' is ${col.kind}, expected int64`);
    const pks = col.data.subarray(0, n);
    rowOfSorted = sortPks(pks, n);
    const s = new BigInt64Array(n);
    for (let i = 0; i < n; i++) s[i] = pks[rowOfSorted[i]!]!;
    sortedPks = s;
  } else {
    if (col.kind !== "values") throw new TypeError(`primary key column '${pkField.name}' is ${col.kind}, expected values`);
    const pks = col.data.slice(0, n) as string[];
    for (let i = 0; i < n; i++)
      if (typeof pks[i] !== "string") throw new TypeError(`primary key '${pkField.name}' of row ${i} is not a string`);
    rowOfSorted = sortPks(pks, n);
    sortedPks = Array.from(rowOfSorted, (r) => pks[r]!);
  }
  return { rowCount: n, pkMin: sortedPks[0]!, pkMax: sortedPks[n - 1]!, sortedPks, rowOfSorted, sizeBytes };
};

const encodeStats = (pkField: FieldSchema, s: SegmentStats): Uint8Array =>
  sealMsgpack(
    { kind: KIND_STATS, typeCode: TYPE_CODES[pkKind(pkField)], encoding: ENC_MSGPACK, flags: 0, fieldId: pkField.fieldId, dim: 0, rowCount: s.rowCount },
    { rowCount: s.rowCount, pkMin: s.pkMin, pkMax: s.pkMax, sortedPks: s.sortedPks, rowOfSorted: s.rowOfSorted, sizeBytes: s.sizeBytes },
  );

/** Verify and decode a stats object (also checks it is internally consistent: sorted, min/max, a row permutation). */
export function decodeStats(bytes: Uint8Array, what: string): SegmentStats & { pkFieldId: number } {
  const fail = (reason: string): never => {
    throw new ChecksumMismatch(what, reason);
  };
  const h = open(bytes, what, [KIND_STATS]);
  const type = TYPE_BY_CODE.get(h.typeCode);
  if (type !== "Int64" && type !== "VarChar") return fail(`stats for a ${type ?? "missing"} primary key`);
  const v = unpackPayload(h, what) as Partial<Record<string, unknown>> | null;
  if (typeof v !== "object" || v === null) return fail("stats payload is not a map");
  const n = h.rowCount;
  const { sortedPks, rowOfSorted, pkMin, pkMax, sizeBytes } = v;
  if (v.rowCount !== n || n === 0) fail(`stats rowCount ${String(v.rowCount)} vs header ${n}`);
  if (typeof sizeBytes !== "number" || !Number.isSafeInteger(sizeBytes) || sizeBytes < 0) fail("bad sizeBytes");
  if (!(rowOfSorted instanceof Int32Array) || rowOfSorted.length !== n) fail("rowOfSorted is not an Int32Array of rowCount entries");
  const rows = rowOfSorted as Int32Array;
  const seen = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    if (r < 0 || r >= n || seen[r] !== 0) fail("rowOfSorted is not a permutation of the rows");
    seen[r] = 1;
  }
  let pks: BigInt64Array | string[];
  if (type === "Int64") {
    if (!(sortedPks instanceof BigInt64Array) || sortedPks.length !== n) return fail("sortedPks is not a BigInt64Array of rowCount entries");
    pks = sortedPks;
  } else {
    if (!Array.isArray(sortedPks) || sortedPks.length !== n || !sortedPks.every((p) => typeof p === "string"))
      return fail("sortedPks is not an array of rowCount strings");
    pks = sortedPks as string[];
  }
  for (let i = 1; i < n; i++) {
    const a = pks[i - 1]!,
      b = pks[i]!;
    if (a > b || (a === b && rows[i - 1]! > rows[i]!)) fail("sortedPks is not sorted");
  }
  if (pkMin !== pks[0] || pkMax !== pks[n - 1]) fail("pkMin / pkMax do not match sortedPks");
  return { rowCount: n, pkMin: pks[0]!, pkMax: pks[n - 1]!, sortedPks: pks, rowOfSorted: rows, sizeBytes: sizeBytes as number, pkFieldId: h.fieldId };
}

/** Position of `pk` in `stats.sortedPks` (the first, if it repeats), or -1 if absent. `stats.rowOfSorted[pos]` is its row. */
export function pkIndexOf(stats: Pick<SegmentStats, "sortedPks">, pk: bigint | string): number {
  const s = stats.sortedPks;
  if (s instanceof BigInt64Array ? typeof pk !== "bigint" : typeof pk !== "string") return -1;
  let lo = 0,
    hi = s.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (s[mid]! < pk) lo = mid + 1;
    else hi = mid;
  }
  return lo < s.length && s[lo] === pk ? lo : -1;
}

// ---------------------------------------------------------------------------
// Segments

/** The fields stored as insert logs: declared fields, then `$meta` when the dynamic field is enabled. */
export const segmentFields = (schema: CollectionSchema): FieldSchema[] => {
  const out = declaredFields(schema);
  if (hasDynamicField(schema)) {
    const meta = schema.fields.find((f) => f.isDynamic);
    if (meta === undefined) throw new Error(`the dynamic field is enabled but the schema has no '${DYNAMIC_FIELD}' field (with a fieldId)`);
    out.push(meta);
  }
  const ids = new Set<number>([TS_FIELD_ID]);
  for (const f of out) {
    if (ids.has(f.fieldId)) throw new Error(`fieldId ${f.fieldId} of field '${f.name}' is reserved or used twice`);
    ids.add(f.fieldId);
  }
  return out;
};

/** Names the segment's objects in errors: `(fieldId)` for insert logs (TS_FIELD_ID = timestamp log), `"stats"` for stats. */
export type SegmentObjectNamer = (object: number | "stats") => string;

const defaultNamer =
  (schema: CollectionSchema): SegmentObjectNamer =>
  (o) => {
    if (o === "stats") return "segment stats";
    if (o === TS_FIELD_ID) return "segment timestamp log";
    const f = schema.fields.find((x) => x.fieldId === o);
    return `insert log of field '${f?.name ?? "?"}' (fieldId ${o})`;
  };

/**
 * A sealed segment's objects for `batch` (at least one row) inserted at
 * `insertTs` (per row; may be longer than the batch). `segmentStats` is the
 * decoded form of `stats`, for the caller's metadata.
 */
export function encodeSegment(
  schema: CollectionSchema,
  batch: RowBatch,
  insertTs: BigUint64Array,
): { fieldLogs: Map<number, Uint8Array>; stats: Uint8Array; segmentStats: SegmentStats } {
  const n = batch.rowCount;
  if (n === 0) throw new RangeError("encodeSegment: a sealed segment needs at least one row");
  if (insertTs.length < n) throw new RangeError(`encodeSegment: ${insertTs.length} insert timestamps for ${n} rows`);
  const fieldLogs = new Map<number, Uint8Array>();
  let sizeBytes = 0;
  for (const f of segmentFields(schema)) {
    let col = batch.columns[f.isDynamic ? DYNAMIC_FIELD : f.name];
    if (col === undefined && f.isDynamic) col = { kind: "values", data: new Array<unknown>(n).fill(null) };
    if (col === undefined) throw new Error(`encodeSegment: batch has no column '${f.name}'`);
    const log = encodeFieldLog(f, col, n);
    fieldLogs.set(f.fieldId, log);
    sizeBytes += log.byteLength;
  }
  const tsLog = encodeFieldLog("ts", insertTs, n);
  fieldLogs.set(TS_FIELD_ID, tsLog);
  sizeBytes += tsLog.byteLength;
  const pk = primaryField(schema);
  const segmentStats = computeStats(pk, batch.columns[pk.name]!, n, sizeBytes);
  return { fieldLogs, stats: encodeStats(pk, segmentStats), segmentStats };
}

/**
 * Verify and decode a sealed segment. Every log must be present, decode
 * cleanly, hold the stats' row count, and the stats' sorted pks must match the
 * pk log; otherwise ChecksumMismatch (naming the object via `nameOf`).
 */
export function decodeSegment(
  schema: CollectionSchema,
  logs: Map<number, Uint8Array>,
  stats: Uint8Array,
  nameOf: SegmentObjectNamer = defaultNamer(schema),
): { batch: RowBatch; insertTs: BigUint64Array; stats: SegmentStats } {
  const statsName = nameOf("stats");
  const st = decodeStats(stats, statsName);
  const pk = primaryField(schema);
  if (st.pkFieldId !== pk.fieldId) throw new ChecksumMismatch(statsName, `stats of fieldId ${st.pkFieldId}, the primary key is fieldId ${pk.fieldId}`);
  const n = st.rowCount;
  const columns: Record<string, Column> = {};
  const need = (fieldId: number): Uint8Array => {
    const b = logs.get(fieldId);
    if (b === undefined) throw new Error(`decodeSegment: missing object '${nameOf(fieldId)}'`);
    return b;
  };
  let sizeBytes = 0;
  for (const f of segmentFields(schema)) {
    const what = nameOf(f.fieldId);
    const bytes = need(f.fieldId);
    const { value, rowCount } = decodeFieldLogRows(bytes, { field: f, what });
    if (rowCount !== n) throw new ChecksumMismatch(what, `${rowCount} rows, the segment's stats say ${n}`);
    columns[f.isDynamic ? DYNAMIC_FIELD : f.name] = value as Column;
    sizeBytes += bytes.byteLength;
  }
  const tsName = nameOf(TS_FIELD_ID);
  const tsBytes = need(TS_FIELD_ID);
  const ts = decodeFieldLogRows(tsBytes, { field: "ts", what: tsName });
  if (ts.rowCount !== n) throw new ChecksumMismatch(tsName, `${ts.rowCount} rows, the segment's stats say ${n}`);
  sizeBytes += tsBytes.byteLength;
  if (sizeBytes !== st.sizeBytes) throw new ChecksumMismatch(statsName, `insert logs total ${sizeBytes} bytes, stats say ${st.sizeBytes}`);
  const pkCol = columns[pk.name]!;
  const pkData = (pkCol as { data: ArrayLike<unknown> }).data;
  for (let i = 0; i < n; i++)
    if (pkData[st.rowOfSorted[i]!] !== st.sortedPks[i])
      throw new ChecksumMismatch(statsName, `sorted pk ${i} does not match row ${st.rowOfSorted[i]} of '${nameOf(pk.fieldId)}'`);
  const { pkFieldId: _, ...segmentStats } = st;
  return { batch: { rowCount: n, columns }, insertTs: ts.value as BigUint64Array, stats: segmentStats };
}

// ---------------------------------------------------------------------------
// Delta logs

/** A delta log: deleted pks with their delete timestamps (all pks of one type). */
export function encodeDeltaLog(entries: readonly DeltaEntry[]): Uint8Array {
  const n = entries.length;
  const isInt = n > 0 && typeof entries[0]!.pk === "bigint";
  const pks: BigInt64Array | string[] = isInt ? new BigInt64Array(n) : new Array<string>(n);
  const ts = new BigUint64Array(n);
  for (let i = 0; i < n; i++) {
    const e = entries[i]!;
    if (isInt ? typeof e.pk !== "bigint" : typeof e.pk !== "string") throw new TypeError(`encodeDeltaLog: entry ${i} pk is a ${typeof e.pk}, the log holds ${isInt ? "bigint" : "string"} pks`);
    if (typeof e.ts !== "bigint" || e.ts < 0n) throw new TypeError(`encodeDeltaLog: entry ${i} ts is not a non-negative bigint`);
    pks[i] = e.pk as never;
    ts[i] = e.ts;
  }
  return sealMsgpack(
    { kind: KIND_DELTA, typeCode: n === 0 ? 0 : isInt ? TYPE_CODES.Int64 : TYPE_CODES.VarChar, encoding: ENC_MSGPACK, flags: 0, fieldId: 0, dim: 0, rowCount: n },
    { pks, ts },
  );
}

/** Verify and decode a delta log (ChecksumMismatch naming `what` on corruption). */
export function decodeDeltaLog(bytes: Uint8Array, what = "delta log"): DeltaEntry[] {
  const fail = (reason: string): never => {
    throw new ChecksumMismatch(what, reason);
  };
  const h = open(bytes, what, [KIND_DELTA]);
  const n = h.rowCount;
  const type = h.typeCode === 0 ? undefined : TYPE_BY_CODE.get(h.typeCode);
  if (n === 0 ? type !== undefined : type !== "Int64" && type !== "VarChar") fail(`delta log of ${n} ${type ?? "untyped"} pks`);
  const v = unpackPayload(h, what) as { pks?: unknown; ts?: unknown } | null;
  if (typeof v !== "object" || v === null) return fail("payload is not a map");
  const { pks, ts } = v;
  if (!(ts instanceof BigUint64Array) || ts.length !== n) return fail("ts is not a BigUint64Array of rowCount entries");
  if (type === "Int64" && !(pks instanceof BigInt64Array && pks.length === n)) fail("pks is not a BigInt64Array of rowCount entries");
  if (type !== "Int64" && !(Array.isArray(pks) && pks.length === n && pks.every((p) => typeof p === "string")))
    fail("pks is not an array of rowCount strings");
  const p = pks as BigInt64Array | string[];
  const out = new Array<DeltaEntry>(n);
  for (let i = 0; i < n; i++) out[i] = { pk: p[i]!, ts: ts[i]! };
  return out;
}
