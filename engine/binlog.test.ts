import { describe, expect, it } from "vitest";
import { DYNAMIC_FIELD, type CollectionSchema } from "../schemas/collection.ts";
import {
  ChecksumMismatch,
  TS_FIELD_ID,
  decodeDeltaLog,
  decodeFieldLog,
  decodeSegment,
  decodeStats,
  encodeDeltaLog,
  encodeFieldLog,
  encodeSegment,
  pkIndexOf,
  segmentFields,
} from "./binlog.ts";
import type { Column, RowBatch } from "./columns.ts";
import { GrowingSegment } from "./growing.ts";
import { fld, makeSchema, rng } from "./testkit.ts";

const BIG = 2n ** 53n;

const allTypes: CollectionSchema = makeSchema(
  [
    fld("id", "Int64", { isPrimary: true }),
    fld("vec", "FloatVector", { dim: 8 }),
    fld("b", "Bool", { nullable: true }),
    fld("i8", "Int8"),
    fld("i16", "Int16", { nullable: true }),
    fld("i32", "Int32", { defaultValue: 7 }),
    fld("i64", "Int64", { nullable: true, defaultValue: -5n }),
    fld("f", "Float"),
    fld("d", "Double", { nullable: true }),
    fld("s", "VarChar", { maxLength: 64, nullable: true, defaultValue: "dflt" }),
    fld("j", "JSON", { nullable: true }),
    fld("as", "Array", { elementType: "VarChar", maxCapacity: 8, maxLength: 16 }),
    fld("ai", "Array", { elementType: "Int64", maxCapacity: 8, nullable: true }),
    fld(DYNAMIC_FIELD, "JSON", { isDynamic: true, nullable: true }),
  ],
  true,
);

/** A batch with every type; 257 rows so validity bitmaps end mid-byte. Defaults appear materialized, as after insert. */
const allTypesBatch = (n = 257, seed = 1): { batch: RowBatch; ts: BigUint64Array } => {
  const r = rng(seed);
  const id = new BigInt64Array(n);
  const vec = new Float32Array(n * 8);
  const b = new Uint8Array(n),
    bValid = new Uint8Array(n);
  const i8 = new Int8Array(n);
  const i16 = new Int16Array(n),
    i16Valid = new Uint8Array(n);
  const i32 = new Int32Array(n);
  const i64 = new BigInt64Array(n),
    i64Valid = new Uint8Array(n);
  const f = new Float32Array(n);
  const d = new Float64Array(n),
    dValid = new Uint8Array(n);
  const s: unknown[] = [],
    j: unknown[] = [],
    as: unknown[] = [],
    ai: unknown[] = [],
    meta: unknown[] = [];
  const ts = new BigUint64Array(n);
  for (let i = 0; i < n; i++) {
    // Shuffled-ish pks spanning the whole int64 range, many beyond 2^53.
    id[i] = i % 3 === 0 ? BIG + BigInt(n - i) * 1_000_003n : i % 3 === 1 ? -(2n ** 63n) + BigInt(i) : BigInt(Math.floor(r() * 1e6)) * 4n + BigInt(i % 4);
    for (let k = 0; k < 8; k++) vec[i * 8 + k] = r() * 2 - 1;
    b[i] = r() < 0.5 ? 1 : 0;
    bValid[i] = i % 5 === 0 ? 0 : 1;
    i8[i] = (i % 256) - 128;
    i16[i] = i * 97 - 20000;
    i16Valid[i] = i % 7 === 0 ? 0 : 1;
    i32[i] = i % 4 === 0 ? 7 : -(2 ** 31) + i;
    i64[i] = i % 4 === 0 ? -5n : 2n ** 62n + BigInt(i);
    i64Valid[i] = i % 11 === 0 ? 0 : 1;
    f[i] = i === 3 ? -0 : i === 4 ? NaN : Math.fround(r() * 1e6);
    d[i] = i === 3 ? -0 : i === 4 ? Infinity : r() * 1e300;
    dValid[i] = i % 13 === 0 ? 0 : 1;
    s.push(i % 6 === 0 ? null : i % 6 === 1 ? "dflt" : `s${i}-é-😀`);
    j.push(i % 9 === 0 ? null : { k: i, nested: { arr: [1, "x", true, null], big: 2 ** 60 }, str: "ü" });
    as.push(i % 3 === 0 ? [] : [`a${i}`, "", "ß"]);
    ai.push(i % 8 === 0 ? null : [BIG + 1n, -(2n ** 63n), BigInt(i)]);
    meta.push(i % 2 === 0 ? null : { extra: i, tag: `t${i}`, deep: [{ x: 1.5 }] });
    ts[i] = 1_700_000_000_000n << 18n | BigInt(i);
  }
  const columns: Record<string, Column> = {
    id: { kind: "int64", data: id },
    vec: { kind: "vector", dim: 8, data: vec },
    b: { kind: "bool", data: b, valid: bValid },
    i8: { kind: "number", type: "Int8", data: i8 },
    i16: { kind: "number", type: "Int16", data: i16, valid: i16Valid },
    i32: { kind: "number", type: "Int32", data: i32 },
    i64: { kind: "int64", data: i64, valid: i64Valid },
    f: { kind: "number", type: "Float", data: f },
    d: { kind: "number", type: "Double", data: d, valid: dValid },
    s: { kind: "values", data: s },
    j: { kind: "values", data: j },
    as: { kind: "values", data: as },
    ai: { kind: "values", data: ai },
    [DYNAMIC_FIELD]: { kind: "values", data: meta },
  };
  return { batch: { rowCount: n, columns }, ts };
};

const bytesOf = (a: ArrayBufferView): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Column equality: typed arrays byte for byte (so -0 and NaN bits count), values deeply (bigint stays bigint). */
const expectSameColumn = (got: Column | undefined, want: Column, name: string): void => {
  expect(got, name).toBeDefined();
  const g = got!;
  expect(g.kind, name).toBe(want.kind);
  if (want.kind === "values") {
    expect((g as typeof want).data, name).toStrictEqual(want.data);
    return;
  }
  const gd = g.data as ArrayBufferView & { length: number };
  expect(gd.constructor, name).toBe(want.data.constructor);
  expect(gd.length, name).toBe(want.data.length);
  expect(bytesOf(gd).equals(bytesOf(want.data)), `${name} data bytes`).toBe(true);
  if (want.kind === "vector") expect((g as typeof want).dim).toBe(want.dim);
  if (want.kind === "number") expect((g as typeof want).type).toBe(want.type);
  if (want.kind !== "vector") {
    const gv = (g as { valid?: Uint8Array }).valid;
    if (want.valid === undefined) expect(gv, `${name} valid`).toBeUndefined();
    else expect(gv !== undefined && bytesOf(gv).equals(bytesOf(want.valid)), `${name} valid`).toBe(true);
  }
};

const expectSameBatch = (got: RowBatch, want: RowBatch): void => {
  expect(got.rowCount).toBe(want.rowCount);
  expect(Object.keys(got.columns).sort()).toEqual(Object.keys(want.columns).sort());
  for (const [name, col] of Object.entries(want.columns)) expectSameColumn(got.columns[name], col, name);
};

const expectCorrupt = (fn: () => unknown, object?: string): void => {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, "decode must throw").toBeInstanceOf(ChecksumMismatch);
  if (object !== undefined) {
    expect((err as ChecksumMismatch).object).toBe(object);
    expect((err as Error).message).toContain(object);
  }
};

describe("binlog field logs and segments", () => {
  // Every data type (nullable, defaults, $meta, int64 beyond 2^53, Array of VarChar / Int64, vectors, -0/NaN) survives encodeSegment/decodeSegment exactly.
  it("round-trips every data type exactly", () => {
    const { batch, ts } = allTypesBatch();
    const enc = encodeSegment(allTypes, batch, ts);
    const ids = segmentFields(allTypes).map((f) => f.fieldId);
    expect([...enc.fieldLogs.keys()].sort((a, b) => a - b)).toEqual([TS_FIELD_ID, ...ids].sort((a, b) => a - b));
    const dec = decodeSegment(allTypes, enc.fieldLogs, enc.stats);
    expectSameBatch(dec.batch, batch);
    expect(bytesOf(dec.insertTs).equals(bytesOf(ts))).toBe(true);
    expect(dec.insertTs).toBeInstanceOf(BigUint64Array);
    expect(dec.stats.rowCount).toBe(257);
    expect(dec.stats.sizeBytes).toBe([...enc.fieldLogs.values()].reduce((s, b) => s + b.byteLength, 0));
    expect(dec.stats).toStrictEqual(enc.segmentStats);
    // Decoded columns own their memory: no views into the object bytes.
    for (const c of Object.values(dec.batch.columns)) if (c.kind !== "values") expect(c.data.buffer).not.toBe(enc.fieldLogs.get(100)!.buffer);
  });

  // A single field log decodes the same with or without the expected field, and the ts log decodes to a BigUint64Array.
  it("decodes one field log with and without a schema", () => {
    const { batch, ts } = allTypesBatch(20);
    for (const f of segmentFields(allTypes)) {
      const col = batch.columns[f.isDynamic ? DYNAMIC_FIELD : f.name]!;
      const bytes = encodeFieldLog(f, col, 20);
      expectSameColumn(decodeFieldLog(bytes, { field: f, what: f.name }) as Column, col, f.name);
      expectSameColumn(decodeFieldLog(bytes, { what: f.name }) as Column, col, `${f.name} (no schema)`);
    }
    const tsLog = encodeFieldLog("ts", ts, 20);
    const back = decodeFieldLog(tsLog, { field: "ts", what: "ts" });
    expect(back).toBeInstanceOf(BigUint64Array);
    expect([...(back as BigUint64Array)]).toEqual([...ts]);
    expect(decodeFieldLog(tsLog, { what: "ts" })).toBeInstanceOf(BigUint64Array);
  });

  // Growing-segment arrays are longer than rowCount: only the first rowCount rows are written, and a segment sealed from a GrowingSegment round-trips.
  it("seals a GrowingSegment (over-allocated arrays)", () => {
    const { batch } = allTypesBatch(100, 3);
    const g = new GrowingSegment(allTypes, 0, 8);
    g.append(batch, 10n);
    g.append(batch, 11n);
    const rows = Array.from({ length: 200 }, (_, i) => i);
    const taken = g.takeBatch(rows);
    expect(g.insertTimestamps().length).toBeGreaterThan(200);
    const enc = encodeSegment(allTypes, taken, g.insertTimestamps());
    const dec = decodeSegment(allTypes, enc.fieldLogs, enc.stats);
    expectSameBatch(dec.batch, taken);
    expect(dec.insertTs.length).toBe(200);
    expect(dec.insertTs[99]).toBe(10n);
    expect(dec.insertTs[100]).toBe(11n);
    // A raw column longer than rowCount is cut to rowCount.
    const long: Column = { kind: "vector", dim: 8, data: new Float32Array(8 * 50).fill(1) };
    const v = decodeFieldLog(encodeFieldLog(allTypes.fields[1]!, long, 10), { field: allTypes.fields[1]!, what: "v" }) as Column;
    expect(v.kind === "vector" && v.data.length).toBe(80);
  });

  // Encoding refuses a column that does not fit its field instead of writing a log that cannot be read back.
  it("rejects mismatched columns at encode", () => {
    const vecField = allTypes.fields[1]!;
    expect(() => encodeFieldLog(vecField, { kind: "vector", dim: 4, data: new Float32Array(40) }, 10)).toThrow(/dim/);
    expect(() => encodeFieldLog(allTypes.fields[3]!, { kind: "number", type: "Int16", data: new Int16Array(4) }, 4)).toThrow(/Int8/);
    expect(() => encodeFieldLog(allTypes.fields[3]!, { kind: "number", type: "Int8", data: new Int8Array(4) }, 5)).toThrow(RangeError);
    expect(() => encodeSegment(allTypes, { rowCount: 0, columns: {} }, new BigUint64Array(0))).toThrow(/at least one row/);
  });
});

describe("segment stats", () => {
  // Int64 pks (negative, beyond 2^53, unsorted) come out sorted, and pkIndexOf + rowOfSorted map every pk back to its row.
  it("sorts Int64 pks and maps them to rows", () => {
    const { batch, ts } = allTypesBatch();
    const { segmentStats: st, stats } = encodeSegment(allTypes, batch, ts);
    const pks = (batch.columns.id as { data: BigInt64Array }).data;
    const sorted = [...pks].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    expect(st.sortedPks).toBeInstanceOf(BigInt64Array);
    expect([...st.sortedPks]).toEqual(sorted);
    expect(st.pkMin).toBe(sorted[0]);
    expect(st.pkMax).toBe(sorted[sorted.length - 1]);
    expect(st.pkMin).toBe(-(2n ** 63n) + 1n);
    for (let row = 0; row < pks.length; row++) {
      const pos = pkIndexOf(st, pks[row]!);
      expect(pos).toBeGreaterThanOrEqual(0);
      expect(st.rowOfSorted[pos]).toBe(row);
    }
    expect(pkIndexOf(st, 123456789012345678n)).toBe(-1);
    expect(pkIndexOf(st, 2n ** 63n - 1n)).toBe(-1);
    expect(pkIndexOf(st, "5")).toBe(-1);
    const back = decodeStats(stats, "stats");
    expect([...back.sortedPks]).toEqual(sorted);
    expect([...back.rowOfSorted]).toEqual([...st.rowOfSorted]);
  });

  // VarChar pks sort by JS string order; duplicates keep row order and pkIndexOf finds the first.
  it("sorts VarChar pks, duplicates in row order", () => {
    const schema = makeSchema([fld("pk", "VarChar", { isPrimary: true, maxLength: 32 }), fld("v", "FloatVector", { dim: 2 })]);
    const pks = ["m", "b", "zz", "😀", "é", "a", "b", "", "Z", "ab"];
    const n = pks.length;
    const batch: RowBatch = {
      rowCount: n,
      columns: { pk: { kind: "values", data: pks }, v: { kind: "vector", dim: 2, data: new Float32Array(2 * n) } },
    };
    const enc = encodeSegment(schema, batch, new BigUint64Array(n).fill(5n));
    const dec = decodeSegment(schema, enc.fieldLogs, enc.stats);
    const st = dec.stats;
    expect(st.sortedPks).toEqual([...pks].sort());
    expect(st.pkMin).toBe("");
    expect(st.pkMax).toBe("😀");
    const firstB = pkIndexOf(st, "b");
    expect(st.rowOfSorted[firstB]).toBe(1);
    expect(st.sortedPks[firstB + 1]).toBe("b");
    expect(st.rowOfSorted[firstB + 1]).toBe(6);
    for (let row = 0; row < n; row++) expect(st.sortedPks[pkIndexOf(st, pks[row]!)]).toBe(pks[row]);
    expect(pkIndexOf(st, "c")).toBe(-1);
    expect(pkIndexOf(st, 1n)).toBe(-1);
    expectSameBatch(dec.batch, batch);
  });
});

describe("corruption", () => {
  const { batch, ts } = allTypesBatch(64, 9);
  const enc = encodeSegment(allTypes, batch, ts);
  const nameOf = (o: number | "stats") => (o === "stats" ? "7/8/9/stats" : `7/8/9/insert/${o}`);

  // Flipping any single byte (300+ random positions over every object of a segment) makes decodeSegment throw ChecksumMismatch naming that object.
  it("detects single-byte flips in every object", () => {
    const r = rng(42);
    const objects: [number | "stats", Uint8Array][] = [...enc.fieldLogs.entries(), ["stats", enc.stats]];
    let tried = 0;
    for (const [id, bytes] of objects) {
      // Always the first and last byte (magic, checksum), then random positions.
      const positions = [0, bytes.length - 1, 24, ...Array.from({ length: 20 }, () => Math.floor(r() * bytes.length))];
      for (const pos of positions) {
        const bad = bytes.slice();
        bad[pos] = bad[pos]! ^ (1 + Math.floor(r() * 255));
        const logs = new Map(enc.fieldLogs);
        let stats = enc.stats;
        if (id === "stats") stats = bad;
        else logs.set(id, bad);
        expectCorrupt(() => decodeSegment(allTypes, logs, stats, nameOf), nameOf(id));
        if (id !== "stats") expectCorrupt(() => decodeFieldLog(bad, { what: "x" }), "x");
        tried++;
      }
    }
    expect(tried).toBeGreaterThanOrEqual(300);
    // Unflipped, everything still decodes.
    expectSameBatch(decodeSegment(allTypes, enc.fieldLogs, enc.stats, nameOf).batch, batch);
  });

  // Truncated (or extended) objects are rejected, whatever the cut.
  it("rejects truncated objects", () => {
    const log = enc.fieldLogs.get(101)!;
    for (const len of [0, 1, 4, 31, 32, 63, 64, log.length - 33, log.length - 32, log.length - 1])
      expectCorrupt(() => decodeFieldLog(log.subarray(0, len), { what: "cut" }), "cut");
    const longer = new Uint8Array(log.length + 1);
    longer.set(log);
    expectCorrupt(() => decodeFieldLog(longer, { what: "long" }), "long");
    expectCorrupt(() => decodeStats(enc.stats.subarray(0, enc.stats.length - 1), "s"), "s");
  });

  // An intact object in the wrong place (another field's log, another segment's stats) is rejected too: decode never returns the wrong data.
  it("rejects intact objects of the wrong field or segment", () => {
    const logs = new Map(enc.fieldLogs);
    logs.set(102, enc.fieldLogs.get(103)!);
    expectCorrupt(() => decodeSegment(allTypes, logs, enc.stats, nameOf), nameOf(102));
    const tsAsField = new Map(enc.fieldLogs);
    tsAsField.set(100, enc.fieldLogs.get(TS_FIELD_ID)!);
    expectCorrupt(() => decodeSegment(allTypes, tsAsField, enc.stats, nameOf), nameOf(100));
    const other = encodeSegment(allTypes, allTypesBatch(64, 10).batch, ts);
    expectCorrupt(() => decodeSegment(allTypes, enc.fieldLogs, other.stats, nameOf), nameOf("stats"));
    const shorter = encodeSegment(allTypes, allTypesBatch(63, 9).batch, ts);
    const mixed = new Map(enc.fieldLogs);
    mixed.set(104, shorter.fieldLogs.get(104)!);
    expectCorrupt(() => decodeSegment(allTypes, mixed, enc.stats, nameOf), nameOf(104));
    expectCorrupt(() => decodeStats(enc.fieldLogs.get(100)!, "not-stats"), "not-stats");
    expectCorrupt(() => decodeDeltaLog(enc.stats, "not-delta"), "not-delta");
    const missing = new Map(enc.fieldLogs);
    missing.delete(105);
    expect(() => decodeSegment(allTypes, missing, enc.stats, nameOf)).toThrow(nameOf(105));
  });
});

describe("delta logs", () => {
  // Delta logs round-trip Int64 pks (beyond 2^53, negative), VarChar pks and the empty log, and detect corruption.
  it("round-trips and verifies", () => {
    const ints = [
      { pk: BIG + 1n, ts: 5n },
      { pk: -(2n ** 63n), ts: 2n ** 64n - 1n },
      { pk: 0n, ts: 0n },
      { pk: BIG + 1n, ts: 9n },
    ];
    expect(decodeDeltaLog(encodeDeltaLog(ints))).toStrictEqual(ints);
    const strs = [
      { pk: "a", ts: 1n },
      { pk: "", ts: 2n },
      { pk: "😀é", ts: 1n << 40n },
    ];
    expect(decodeDeltaLog(encodeDeltaLog(strs))).toStrictEqual(strs);
    expect(decodeDeltaLog(encodeDeltaLog([]))).toStrictEqual([]);
    expect(() => encodeDeltaLog([{ pk: 1n, ts: 1n }, { pk: "x", ts: 1n }])).toThrow(TypeError);
    const bytes = encodeDeltaLog(ints);
    const r = rng(7);
    for (let k = 0; k < 100; k++) {
      const bad = bytes.slice();
      const pos = Math.floor(r() * bad.length);
      bad[pos] = bad[pos]! ^ (1 + Math.floor(r() * 255));
      expectCorrupt(() => decodeDeltaLog(bad, "1/2/3/delta/9"), "1/2/3/delta/9");
    }
    expectCorrupt(() => decodeDeltaLog(bytes.subarray(0, bytes.length - 5), "d"), "d");
  });
});
