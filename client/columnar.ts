/**
 * Rows to the columnar insert form (`columns: {rowCount, fields}`; see engine/rows.ts
 * `columnsToBatch`), as Milvus SDKs send column-based FieldData. One array per key instead of
 * one map per row, and a key whose every row holds a Float32Array of one length is packed
 * into a single Float32Array: the message encodes and decodes as a few large values instead
 * of thousands of small ones. Values are not converted, so the server applies exactly the
 * rules (and errors) of the row form.
 */

const isPlainObject = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

export interface ColumnarRows {
  rowCount: number;
  fields: Record<string, unknown[] | Float32Array>;
}

/** The columnar form of `rows`, or undefined when the row form must be sent (not an array of plain objects). */
export const rowsToColumns = (rows: unknown): ColumnarRows | undefined => {
  if (!Array.isArray(rows) || rows.length === 0) return undefined;
  const n = rows.length;
  const fields: Record<string, unknown[] | Float32Array> = Object.create(null);
  for (let i = 0; i < n; i++) {
    const row: unknown = rows[i];
    if (!isPlainObject(row)) return undefined;
    for (const key of Object.keys(row)) {
      let col = fields[key] as unknown[] | undefined;
      if (col === undefined) fields[key] = col = new Array<unknown>(n).fill(undefined);
      col[i] = row[key];
    }
  }
  for (const key of Object.keys(fields)) {
    const col = fields[key] as unknown[];
    const first = col[0];
    if (!(first instanceof Float32Array) || first.length === 0) continue;
    const dim = first.length;
    let packable = true;
    for (let i = 1; i < n && packable; i++) {
      const v = col[i];
      packable = v instanceof Float32Array && v.length === dim;
    }
    if (!packable) continue;
    const packed = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) packed.set(col[i] as Float32Array, i * dim);
    fields[key] = packed;
  }
  return { rowCount: n, fields };
};
