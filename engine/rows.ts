/**
 * Rows from the API (arrays of plain objects, Milvus REST v2 `data`) to a
 * columnar `RowBatch`, and back to row objects for query/search output.
 *
 * `rowsToBatch` validates the whole batch before returning anything; every
 * error is a `BadInsertData` whose message starts with `row <i>: ` and names
 * the field. Duplicate primary keys inside a batch are NOT checked here.
 */
import {
  DYNAMIC_FIELD,
  MAX_VARCHAR_LENGTH,
  primaryField,
  type CollectionSchema,
  type FieldSchema,
  type ScalarType,
} from "../schemas/collection.ts";
import { BadInsertData, InvalidParameter } from "../schemas/errors.ts";
import { allocColumn, columnValue, declaredFields, hasDynamicField, LITTLE_ENDIAN, type Column, type RowBatch } from "./columns.ts";
import { firstNonFinite } from "./kernels.ts";

export interface RowsOptions {
  mode: "insert" | "upsert";
  /** ids for autoID insert, one per row; called once, after the whole batch validated. */
  allocateIds?: (count: number) => bigint[];
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const INT_RANGES = { Int8: [-128, 127], Int16: [-32768, 32767], Int32: [-2147483648, 2147483647] } as const;
const MAX_JSON_DEPTH = 64;
const INT64_STRING = /^-?\d{1,20}$/;

const fail = (row: number, message: string): never => {
  throw new BadInsertData({ message: `row ${row}: ${message}` });
};

/** Short description of a bad value for error messages. */
export const describeValue = (v: unknown): string => {
  if (v === null) return "null";
  if (v === undefined) return "undefined";
  switch (typeof v) {
    case "string": {
      const s = JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
      return `string ${s}`;
    }
    case "number":
    case "boolean":
      return String(v);
    case "bigint":
      return `${v}n`;
    case "function":
      return "a function";
    case "symbol":
      return "a symbol";
    case "object":
      if (Array.isArray(v)) return "an array";
      {
        const proto = Object.getPrototypeOf(v);
        if (proto === Object.prototype || proto === null) return "an object";
        const name = (v as { constructor?: { name?: unknown } }).constructor?.name;
        return typeof name === "string" && name.length > 0 ? `a ${name}` : "an object";
      }
    default:
      return typeof v;
  }
};

// ---------------------------------------------------------------------------
// Scalar converters (throw BadInsertData naming row and field)

const toInt64 = (v: unknown, row: number, what: string): bigint => {
  let b: bigint;
  if (typeof v === "bigint") b = v;
  else if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) {
      if (Number.isInteger(v))
        return fail(row, `${what} expects an Int64, got ${v} which is beyond 2^53 and not exact; send it as a decimal string`);
      return fail(row, `${what} expects an Int64 (integer or decimal string), got ${describeValue(v)}`);
    }
    b = BigInt(v);
  } else if (typeof v === "string" && INT64_STRING.test(v)) b = BigInt(v);
  else return fail(row, `${what} expects an Int64 (integer or decimal string), got ${describeValue(v)}`);
  if (b < INT64_MIN || b > INT64_MAX) return fail(row, `${what} value ${b} is out of Int64 range`);
  return b;
};

const toSmallInt = (type: "Int8" | "Int16" | "Int32", v: unknown, row: number, what: string): number => {
  const [lo, hi] = INT_RANGES[type];
  if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi)
    return fail(row, `${what} expects an ${type} integer in [${lo}, ${hi}], got ${describeValue(v)}`);
  return v;
};

const toFloat = (v: unknown, row: number, what: string): number => {
  if (typeof v !== "number" || !Number.isFinite(v)) return fail(row, `${what} expects a finite Float, got ${describeValue(v)}`);
  const f = Math.fround(v);
  if (!Number.isFinite(f)) return fail(row, `${what} value ${v} is out of Float (float32) range`);
  return f;
};

const toDouble = (v: unknown, row: number, what: string): number => {
  if (typeof v !== "number" || !Number.isFinite(v)) return fail(row, `${what} expects a finite Double, got ${describeValue(v)}`);
  return v;
};

const toBool = (v: unknown, row: number, what: string): boolean => {
  if (typeof v !== "boolean") return fail(row, `${what} expects a Bool (true or false), got ${describeValue(v)}`);
  return v;
};

const toVarChar = (v: unknown, maxLength: number, row: number, what: string): string => {
  if (typeof v !== "string") return fail(row, `${what} expects a VarChar string, got ${describeValue(v)}`);
  if (v.length * 3 > maxLength) {
    const bytes = Buffer.byteLength(v, "utf8");
    if (bytes > maxLength) return fail(row, `${what} is ${bytes} bytes long (UTF-8), exceeding max_length ${maxLength}`);
  }
  return v;
};

const toScalar = (type: ScalarType, field: FieldSchema, v: unknown, row: number, what: string): unknown => {
  switch (type) {
    case "Bool":
      return toBool(v, row, what);
    case "Int8":
    case "Int16":
    case "Int32":
      return toSmallInt(type, v, row, what);
    case "Int64":
      return toInt64(v, row, what);
    case "Float":
      return toFloat(v, row, what);
    case "Double":
      return toDouble(v, row, what);
    case "VarChar":
      return toVarChar(v, field.maxLength ?? MAX_VARCHAR_LENGTH, row, what);
  }
};

/** First problem making `v` not a plain JSON value (null if fine); `path` gets segments innermost-first. */
const jsonProblem = (v: unknown, depth: number, path: (string | number)[]): string | null => {
  switch (typeof v) {
    case "string":
    case "boolean":
      return null;
    case "number":
      return Number.isFinite(v) ? null : `non-finite number ${v}`;
    case "object": {
      if (v === null) return null;
      if (depth >= MAX_JSON_DEPTH) return `nesting deeper than ${MAX_JSON_DEPTH} levels`;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          const p = jsonProblem(v[i], depth + 1, path);
          if (p !== null) {
            path.push(i);
            return p;
          }
        }
        return null;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) return describeValue(v);
      for (const k of Object.keys(v)) {
        const p = jsonProblem((v as Record<string, unknown>)[k], depth + 1, path);
        if (p !== null) {
          path.push(k);
          return p;
        }
      }
      return null;
    }
    default:
      return describeValue(v);
  }
};

const jsonPath = (path: (string | number)[]): string => {
  let s = "$";
  for (let i = path.length - 1; i >= 0; i--) {
    const p = path[i]!;
    s += typeof p === "number" ? `[${p}]` : /^[A-Za-z_$][\w$]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`;
  }
  return s;
};

const toJson = (v: unknown, row: number, what: string): unknown => {
  const path: (string | number)[] = [];
  const p = jsonProblem(v, 0, path);
  if (p !== null) {
    return path.length === 0
      ? fail(row, `${what} expects a JSON value, got ${p}`)
      : fail(row, `${what} has a non-JSON value at ${jsonPath(path)}: ${p}`);
  }
  return v;
};

const toArray = (field: FieldSchema, v: unknown, row: number, what: string): unknown[] => {
  const et = field.elementType;
  if (et === undefined) return fail(row, `${what} has no element type in the schema`);
  if (!Array.isArray(v)) return fail(row, `${what} expects an Array of ${et}, got ${describeValue(v)}`);
  const cap = field.maxCapacity;
  if (cap !== undefined && v.length > cap) return fail(row, `${what} has ${v.length} elements, exceeding max_capacity ${cap}`);
  const out = new Array<unknown>(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (x === null || x === undefined) return fail(row, `${what} element ${i} is null; Array elements must be ${et} values`);
    out[i] = toScalar(et, field, x, row, `${what} element ${i}`);
  }
  return out;
};

// ---------------------------------------------------------------------------
// Plan

const enum K {
  Bool,
  Int8,
  Int16,
  Int32,
  Int64,
  Float,
  Double,
  VarChar,
  Json,
  Array,
  Vector,
}

interface FieldPlan {
  readonly field: FieldSchema;
  readonly name: string;
  readonly what: string;
  readonly k: K;
  readonly isPk: boolean;
  readonly autoIdInsert: boolean;
  readonly dim: number;
  readonly maxLength: number;
  readonly hasDefault: boolean;
  readonly defaultValue: unknown;
  readonly defaultError: string | undefined;
}

const kindOf = (f: FieldSchema): K => {
  switch (f.dataType) {
    case "Bool":
      return K.Bool;
    case "Int8":
      return K.Int8;
    case "Int16":
      return K.Int16;
    case "Int32":
      return K.Int32;
    case "Int64":
      return K.Int64;
    case "Float":
      return K.Float;
    case "Double":
      return K.Double;
    case "VarChar":
      return K.VarChar;
    case "JSON":
      return K.Json;
    case "Array":
      return K.Array;
    case "FloatVector":
      return K.Vector;
  }
};

const convert = (p: FieldPlan, v: unknown, row: number): unknown => {
  switch (p.k) {
    case K.Bool:
      return toBool(v, row, p.what);
    case K.Int8:
      return toSmallInt("Int8", v, row, p.what);
    case K.Int16:
      return toSmallInt("Int16", v, row, p.what);
    case K.Int32:
      return toSmallInt("Int32", v, row, p.what);
    case K.Int64:
      return toInt64(v, row, p.what);
    case K.Float:
      return toFloat(v, row, p.what);
    case K.Double:
      return toDouble(v, row, p.what);
    case K.VarChar: {
      const s = toVarChar(v, p.maxLength, row, p.what);
      if (p.isPk && s.length === 0) fail(row, `${p.what} (primary key) must not be empty`);
      return s;
    }
    case K.Json:
      return toJson(v, row, p.what);
    case K.Array:
      return toArray(p.field, v, row, p.what);
    case K.Vector:
      throw new Error("vectors are written directly");
  }
};

const planFor = (f: FieldSchema, mode: RowsOptions["mode"]): FieldPlan => {
  const k = kindOf(f);
  const base = {
    field: f,
    name: f.name,
    what: `field '${f.name}'`,
    k,
    isPk: f.isPrimary,
    autoIdInsert: f.isPrimary && f.autoId && mode === "insert",
    dim: f.dim ?? 0,
    maxLength: f.maxLength ?? MAX_VARCHAR_LENGTH,
  };
  let hasDefault = false;
  let defaultValue: unknown = null;
  let defaultError: string | undefined;
  if (f.defaultValue !== undefined && f.defaultValue !== null && !f.isPrimary && k !== K.Vector) {
    hasDefault = true;
    try {
      defaultValue = convert({ ...base, hasDefault: false, defaultValue: null, defaultError: undefined }, f.defaultValue, -1);
    } catch (e) {
      defaultError = e instanceof Error ? e.message.replace(/^row -1: /, "") : String(e);
    }
  }
  return { ...base, hasDefault, defaultValue, defaultError };
};

const isPlainObject = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

const writeVector = (p: FieldPlan, v: unknown, out: Float32Array, row: number): void => {
  const dim = p.dim;
  const off = row * dim;
  let bad = 0;
  if (v instanceof Float32Array) {
    if (v.length !== dim) fail(row, `${p.what} expects dim ${dim}, got ${v.length}`);
    out.set(v, off);
    for (let j = 0; j < dim; j++) bad += v[j]! * 0;
  } else if (Array.isArray(v)) {
    if (v.length !== dim) fail(row, `${p.what} expects dim ${dim}, got ${v.length}`);
    for (let j = 0; j < dim; j++) {
      const x = v[j];
      if (typeof x !== "number") fail(row, `${p.what} has a non-numeric value at position ${j}: ${describeValue(x)}`);
      const f = Math.fround(x as number);
      out[off + j] = f;
      bad += f * 0;
    }
  } else {
    fail(row, `${p.what} expects a FloatVector (array of ${dim} numbers), got ${describeValue(v)}`);
  }
  if (bad !== 0) {
    // NaN: find the first offending position for the message.
    for (let j = 0; j < dim; j++) {
      const x = (v as ArrayLike<number>)[j]!;
      if (!Number.isFinite(x)) fail(row, `${p.what} has a non-finite value at position ${j}`);
      if (!Number.isFinite(Math.fround(x))) fail(row, `${p.what} value ${x} at position ${j} is out of float32 range`);
    }
  }
};

const writeCell = (p: FieldPlan, col: Column, row: number, v: unknown): void => {
  switch (col.kind) {
    case "int64":
      col.data[row] = v as bigint;
      if (col.valid) col.valid[row] = 1;
      return;
    case "number":
      col.data[row] = v as number;
      if (col.valid) col.valid[row] = 1;
      return;
    case "bool":
      col.data[row] = v ? 1 : 0;
      if (col.valid) col.valid[row] = 1;
      return;
    case "values":
      col.data[row] = v;
      return;
    case "vector":
      throw new Error(`writeCell on vector field ${p.name}`);
  }
};

/** Validate `rows` against `schema` and convert them to one columnar batch. */
export const rowsToBatch = (schema: CollectionSchema, rows: unknown, opts: RowsOptions): RowBatch => {
  if (!Array.isArray(rows) || rows.length === 0) throw new BadInsertData({ message: "data must be a non-empty array of rows" });
  const n = rows.length;
  const dynamic = hasDynamicField(schema);
  const plans = declaredFields(schema).map((f) => planFor(f, opts.mode));
  const byName = new Map<string, FieldPlan>();
  for (const p of plans) byName.set(p.name, p);
  const columns: Record<string, Column> = {};
  const cols: Column[] = plans.map((p) => {
    const c = allocColumn(p.field, n);
    columns[p.name] = c;
    return c;
  });
  const meta: unknown[] | undefined = dynamic ? new Array<unknown>(n).fill(null) : undefined;
  if (meta) columns[DYNAMIC_FIELD] = { kind: "values", data: meta };
  const nPlans = plans.length;

  for (let i = 0; i < n; i++) {
    const row: unknown = rows[i];
    if (!isPlainObject(row))
      throw new BadInsertData({ message: `data must be a non-empty array of rows; row ${i} is ${describeValue(row)}, not a plain object` });

    // Keys not declared in the schema: dynamic or an error.
    let dyn: Record<string, unknown> | null = null;
    for (const key in row) {
      if (byName.has(key)) continue;
      if (key === DYNAMIC_FIELD) fail(i, `field '${DYNAMIC_FIELD}' is reserved; put dynamic keys at the top level of the row`);
      const v = row[key];
      if (v === undefined) continue;
      if (!meta) fail(i, `field '${key}' is not in the schema`);
      dyn ??= {};
      dyn[key] = toJson(v, i, `dynamic field '${key}'`);
    }
    if (meta && dyn !== null) meta[i] = dyn;

    for (let fi = 0; fi < nPlans; fi++) {
      const p = plans[fi]!;
      writeField(p, cols[fi]!, i, row[p.name]);
    }
  }
  fillAutoIds(plans, columns, n, opts);
  return { rowCount: n, columns };
};

/** One value of one row into its column: autoID, default, null and type rules of the field. */
const writeField = (p: FieldPlan, col: Column, i: number, v: unknown): void => {
  if (p.autoIdInsert) {
    if (v !== undefined) fail(i, `${p.what} is the autoID primary key and must not be given on insert`);
    return;
  }
  if (v === undefined || v === null) {
    if (p.hasDefault) {
      if (p.defaultError !== undefined) fail(i, `${p.what} has an invalid default value: ${p.defaultError}`);
      writeCell(p, col, i, p.defaultValue);
      return;
    }
    if (p.field.nullable && !p.isPk && p.k !== K.Vector) return; // valid[i] stays 0 / values stays null
    fail(i, v === undefined ? `missing field '${p.name}'` : `${p.what} is not nullable, got null`);
  }
  if (p.k === K.Vector) writeVector(p, v, (col as { data: Float32Array }).data, i);
  else writeCell(p, col, i, convert(p, v, i));
};

const fillAutoIds = (plans: readonly FieldPlan[], columns: Record<string, Column>, n: number, opts: RowsOptions): void => {
  const pkPlan = plans.find((p) => p.autoIdInsert);
  if (!pkPlan) return;
  if (!opts.allocateIds) throw new Error(`rowsToBatch: allocateIds is required to insert into autoID field '${pkPlan.name}'`);
  const ids = opts.allocateIds(n);
  if (ids.length !== n) throw new Error(`rowsToBatch: allocateIds returned ${ids.length} ids for ${n} rows`);
  const data = (columns[pkPlan.name] as { data: BigInt64Array }).data;
  for (let i = 0; i < n; i++) data[i] = ids[i]!;
};

/**
 * The columnar form of insert data (a natsvec extension; the TypeScript client sends it):
 * `fields` maps each field name (declared or dynamic) to one value per row, in row order;
 * a FloatVector field may instead be one Float32Array of `rowCount * dim` floats.
 */
export interface ColumnarRows {
  readonly rowCount: number;
  readonly fields: Record<string, unknown>;
}

/**
 * `rowsToBatch` for the columnar form: the same rules and the same `row <i>: ` errors, without a
 * row object per row; packed vectors are checked in one pass and copied at once.
 */
export const columnsToBatch = (schema: CollectionSchema, input: unknown, opts: RowsOptions): RowBatch => {
  if (!isPlainObject(input) || !isPlainObject(input.fields))
    throw new BadInsertData({ message: "columns must be an object {rowCount, fields: {<field>: <one value per row>}}" });
  const n = input.rowCount;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1)
    throw new BadInsertData({ message: `columns.rowCount must be a positive integer, got ${describeValue(n)}` });
  const fields = input.fields;
  const dynamic = hasDynamicField(schema);
  const plans = declaredFields(schema).map((f) => planFor(f, opts.mode));
  const declared = new Set(plans.map((p) => p.name));
  const columns: Record<string, Column> = {};
  // A packed vector column is checked and adopted as is (no copy); every other column is filled here.
  for (const p of plans) if (!(p.k === K.Vector && input.fields[p.name] instanceof Float32Array)) columns[p.name] = allocColumn(p.field, n);
  const perRow = (name: string, c: unknown): unknown[] => {
    if (!Array.isArray(c) || c.length !== n)
      throw new BadInsertData({ message: `columns.fields.${name} must be an array of ${n} values (one per row), got ${describeValue(c)}${Array.isArray(c) ? ` of ${c.length}` : ""}` });
    return c;
  };

  // Keys not declared in the schema: dynamic or an error (checked before the declared fields, like a row's keys).
  let meta: unknown[] | undefined;
  if (dynamic) columns[DYNAMIC_FIELD] = { kind: "values", data: (meta = new Array<unknown>(n).fill(null)) };
  for (const key of Object.keys(fields)) {
    if (declared.has(key)) continue;
    const values = perRow(key, fields[key]);
    if (key === DYNAMIC_FIELD) fail(Math.max(0, values.findIndex((v) => v !== undefined)), `field '${DYNAMIC_FIELD}' is reserved; put dynamic keys at the top level of the row`);
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (v === undefined) continue;
      if (!meta) fail(i, `field '${key}' is not in the schema`);
      const dyn = (meta![i] ??= {}) as Record<string, unknown>;
      dyn[key] = toJson(v, i, `dynamic field '${key}'`);
    }
  }

  for (const p of plans) {
    const col = columns[p.name]!;
    const c = fields[p.name];
    if (c === undefined) {
      for (let i = 0; i < n; i++) writeField(p, col, i, undefined);
    } else if (p.k === K.Vector && c instanceof Float32Array) {
      checkPackedVectors(p, c, n);
      columns[p.name] = { kind: "vector", dim: p.dim, data: c };
    } else if (c instanceof Float32Array) {
      writeField(p, col, 0, c); // a vector where a scalar belongs: the same error as in row form
    } else {
      const values = perRow(p.name, c);
      if (p.k === K.Int64 && !p.autoIdInsert && col.kind === "int64" && writeSafeIntegers(col, values)) continue;
      for (let i = 0; i < n; i++) writeField(p, col, i, values[i]);
    }
  }
  fillAutoIds(plans, columns, n, opts);
  return { rowCount: n, columns };
};

const TWO32 = 2 ** 32;

/**
 * An Int64 column whose every value is a safe integer (what clients send for ids that fit a JS number),
 * written as two 32-bit words per value: no BigInt per value. False (the caller then writes every cell
 * the general way, with its errors) at the first value that is anything else.
 */
const writeSafeIntegers = (col: Extract<Column, { kind: "int64" }>, values: readonly unknown[]): boolean => {
  if (!LITTLE_ENDIAN) return false;
  const words = new Int32Array(col.data.buffer, col.data.byteOffset, values.length * 2);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== "number" || !Number.isSafeInteger(v)) return false;
    const hi = Math.floor(v / TWO32);
    words[2 * i] = v - hi * TWO32; // low word as unsigned; the store keeps its 32 bits
    words[2 * i + 1] = hi;
  }
  col.valid?.fill(1, 0, values.length);
  return true;
};

/**
 * `n` vectors packed in one Float32Array: length checked, every value finite. The batch adopts the
 * array itself (it comes from a decoded request, which nothing else holds), saving a copy of the
 * largest part of an insert.
 */
const checkPackedVectors = (p: FieldPlan, v: Float32Array, n: number): void => {
  const dim = p.dim;
  if (v.length !== n * dim) {
    // n vectors of another length (what a client packs): the row form's message.
    if (v.length % n === 0) fail(0, `${p.what} expects dim ${dim}, got ${v.length / n}`);
    throw new BadInsertData({ message: `${p.what} expects ${n} vectors of dim ${dim} (${n * dim} floats), got ${v.length} floats` });
  }
  const j = firstNonFinite(v);
  if (j >= 0) fail(Math.floor(j / dim), `${p.what} has a non-finite value at position ${j % dim}`);
};

// ---------------------------------------------------------------------------
// Output

/**
 * Resolve requested output fields. `*` = every declared field (scalar and
 * vector) plus `$meta` when the dynamic field is enabled; `$meta` in the
 * result means "flatten all dynamic keys". A name not in the schema is a
 * dynamic key when the dynamic field is enabled, else InvalidParameter.
 * undefined / [] -> [] (callers add the primary key). Order is the request
 * order (with `*` expanded in place), duplicates removed.
 */
export const resolveOutputFields = (schema: CollectionSchema, requested: readonly string[] | undefined): string[] => {
  if (requested === undefined || requested.length === 0) return [];
  const dynamic = hasDynamicField(schema);
  const declared = declaredFields(schema);
  const declaredNames = new Set(declared.map((f) => f.name));
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (name: string): void => {
    if (!seen.has(name)) {
      seen.add(name);
      out.push(name);
    }
  };
  for (const name of requested) {
    if (typeof name !== "string" || name.length === 0)
      throw new InvalidParameter({ message: `output field names must be non-empty strings, got ${describeValue(name)}` });
    if (name === "*") {
      for (const f of declared) add(f.name);
      if (dynamic) add(DYNAMIC_FIELD);
    } else if (declaredNames.has(name)) add(name);
    else if (dynamic) add(name);
    else throw new InvalidParameter({ message: `output field '${name}' does not exist in the collection schema` });
  }
  return out;
};

/**
 * Row objects for `rows` of `batch` with the given (resolved) output fields.
 * Values are in the in-memory convention (Int64 bigint, vectors Float32Array
 * copies, absent -> null); `$meta` keys are flattened into the top level and a
 * requested dynamic key a row lacks is omitted from that row.
 */
export const batchRowsToObjects = (
  schema: CollectionSchema,
  batch: RowBatch,
  rows: ArrayLike<number>,
  outputFields: readonly string[],
): Record<string, unknown>[] => {
  const declaredNames = new Set(declaredFields(schema).map((f) => f.name));
  const metaCol = batch.columns[DYNAMIC_FIELD];
  const metaData = metaCol?.kind === "values" ? metaCol.data : undefined;
  type Out = { t: 0; name: string; col: Column | undefined } | { t: 1 } | { t: 2; key: string };
  const plan: Out[] = outputFields.map((name) =>
    name === DYNAMIC_FIELD
      ? { t: 1 }
      : declaredNames.has(name)
        ? { t: 0, name, col: batch.columns[name] }
        : { t: 2, key: name },
  );
  const result = new Array<Record<string, unknown>>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (!(r >= 0 && r < batch.rowCount)) throw new RangeError(`row ${r} out of range [0, ${batch.rowCount})`);
    const o: Record<string, unknown> = {};
    const m = metaData?.[r] as Record<string, unknown> | null | undefined;
    for (const p of plan) {
      if (p.t === 0) o[p.name] = p.col === undefined ? null : columnValue(p.col, r);
      else if (p.t === 1) {
        if (m) for (const k of Object.keys(m)) if (!declaredNames.has(k)) o[k] = m[k];
      } else if (m && Object.prototype.hasOwnProperty.call(m, p.key)) o[p.key] = m[p.key];
    }
    result[i] = o;
  }
  return result;
};

/** Primary key values of every row of `batch` (bigint[] for Int64, string[] for VarChar). */
export function pkValues(schema: CollectionSchema, batch: RowBatch): bigint[] | string[] {
  const pk = primaryField(schema);
  const col = batch.columns[pk.name];
  if (col === undefined) throw new Error(`batch has no primary key column '${pk.name}'`);
  if (col.kind === "int64") return Array.from(col.data.subarray(0, batch.rowCount));
  if (col.kind === "values") return col.data.slice(0, batch.rowCount) as string[];
  throw new Error(`primary key column '${pk.name}' has kind ${col.kind}`);
}
