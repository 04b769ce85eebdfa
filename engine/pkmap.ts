/**
 * Primary key → number maps without a BigInt or an object per key.
 *
 * Int64 keys are kept as their two 32-bit halves (the little-endian words of
 * a BigInt64Array, read through an Int32Array view of the same bytes), in an
 * open-addressing table of typed arrays: a batch's keys are checked and
 * inserted straight from its key column, and the GC sees a few arrays instead
 * of one Map entry, one BigInt and one object per row. Keys are exact over the
 * whole int64 range (no conversion to a JS number). VarChar keys use a Map.
 *
 * Values are non-negative numbers (a packed row reference, a segment id...);
 * `get` returns -1 for a missing key.
 */
import { LITTLE_ENDIAN, type Column, type RowBatch } from "./columns.ts";

export type Pk = bigint | string;

/** The key column of a batch: int64 words (lo, hi per row) or strings. */
export type KeyColumn = { readonly kind: "int64"; readonly words: Int32Array; readonly n: number } | { readonly kind: "string"; readonly data: readonly string[]; readonly n: number };

/** View a key column without copying (int64: an Int32Array over the same bytes). */
export const keyColumnOf = (col: Column, rowCount: number): KeyColumn => {
  if (col.kind === "int64") {
    const d = col.data;
    if (LITTLE_ENDIAN) return { kind: "int64", words: new Int32Array(d.buffer, d.byteOffset, rowCount * 2), n: rowCount };
    const words = new Int32Array(rowCount * 2);
    for (let i = 0; i < rowCount; i++) {
      words[2 * i] = Number(BigInt.asIntN(32, d[i]!));
      words[2 * i + 1] = Number(d[i]! >> 32n);
    }
    return { kind: "int64", words, n: rowCount };
  }
  if (col.kind === "values") return { kind: "string", data: col.data as string[], n: rowCount };
  throw new Error(`primary key column has kind ${col.kind}`);
};

export const keyColumnOfBatch = (batch: RowBatch, pkName: string): KeyColumn => {
  const col = batch.columns[pkName];
  if (col === undefined) throw new Error(`batch has no primary key column '${pkName}'`);
  return keyColumnOf(col, batch.rowCount);
};

const TWO32 = 4294967296n;

/** The bigint of an int64 given as (lo, hi) int32 words. */
export const int64Of = (lo: number, hi: number): bigint => BigInt(hi) * TWO32 + BigInt(lo >>> 0);

/** The key of row `i` as a Pk value. */
export const keyAt = (k: KeyColumn, i: number): Pk => (k.kind === "int64" ? int64Of(k.words[2 * i]!, k.words[2 * i + 1]!) : k.data[i]!);

const isInt64 = (pk: bigint): boolean => BigInt.asIntN(64, pk) === pk;
export const loOf = (pk: bigint): number => Number(BigInt.asIntN(32, pk));
export const hiOf = (pk: bigint): number => Number(BigInt.asIntN(32, pk >> 32n));

const EMPTY = -1;
const TOMB = -2;

const mix = (lo: number, hi: number): number => {
  let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 15;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
};

/** Open-addressing int64 → non-negative number map (linear probing, tombstones). */
export class Int64Map {
  private cap: number;
  private mask: number;
  private keys: Int32Array; // lo, hi per slot
  private vals: Float64Array; // EMPTY, TOMB or a value >= 0
  private count = 0;
  private used = 0; // live + tombstones

  constructor(initialCapacity = 16) {
    let cap = 16;
    while (cap < initialCapacity * 2) cap *= 2;
    this.cap = cap;
    this.mask = cap - 1;
    this.keys = new Int32Array(cap * 2);
    this.vals = new Float64Array(cap).fill(EMPTY);
  }

  get size(): number {
    return this.count;
  }

  private find(lo: number, hi: number): number {
    const keys = this.keys;
    const vals = this.vals;
    let i = mix(lo, hi) & this.mask;
    for (;;) {
      const v = vals[i]!;
      if (v === EMPTY) return -1;
      if (v !== TOMB && keys[2 * i] === lo && keys[2 * i + 1] === hi) return i;
      i = (i + 1) & this.mask;
    }
  }

  getWords(lo: number, hi: number): number {
    const i = this.find(lo, hi);
    return i < 0 ? -1 : this.vals[i]!;
  }

  /** Set (value >= 0); returns the previous value or -1. */
  setWords(lo: number, hi: number, value: number): number {
    if ((this.used + 1) * 2 > this.cap) this.rehash();
    const keys = this.keys;
    const vals = this.vals;
    let i = mix(lo, hi) & this.mask;
    let tomb = -1;
    for (;;) {
      const v = vals[i]!;
      if (v === EMPTY) break;
      if (v === TOMB) {
        if (tomb < 0) tomb = i;
      } else if (keys[2 * i] === lo && keys[2 * i + 1] === hi) {
        vals[i] = value;
        return v;
      }
      i = (i + 1) & this.mask;
    }
    if (tomb >= 0) i = tomb;
    else this.used++;
    keys[2 * i] = lo;
    keys[2 * i + 1] = hi;
    vals[i] = value;
    this.count++;
    return -1;
  }

  /** Remove; returns the value removed or -1. */
  deleteWords(lo: number, hi: number): number {
    const i = this.find(lo, hi);
    if (i < 0) return -1;
    const v = this.vals[i]!;
    this.vals[i] = TOMB;
    this.count--;
    return v;
  }

  /** Keys outside the int64 range are never present (and cannot be set). */
  get(pk: bigint): number {
    return isInt64(pk) ? this.getWords(loOf(pk), hiOf(pk)) : -1;
  }
  set(pk: bigint, value: number): number {
    if (!isInt64(pk)) throw new RangeError(`key ${pk} is outside the int64 range`);
    return this.setWords(loOf(pk), hiOf(pk), value);
  }
  delete(pk: bigint): number {
    return isInt64(pk) ? this.deleteWords(loOf(pk), hiOf(pk)) : -1;
  }

  /** Every (key, value); the map must not change meanwhile. */
  forEach(fn: (lo: number, hi: number, value: number) => void): void {
    const keys = this.keys;
    const vals = this.vals;
    for (let i = 0; i < this.cap; i++) {
      const v = vals[i]!;
      if (v >= 0) fn(keys[2 * i]!, keys[2 * i + 1]!, v);
    }
  }

  /** Remove every entry whose value matches; returns their keys. */
  takeWhere(pred: (value: number) => boolean): bigint[] {
    const out: bigint[] = [];
    const keys = this.keys;
    const vals = this.vals;
    for (let i = 0; i < this.cap; i++) {
      const v = vals[i]!;
      if (v >= 0 && pred(v)) {
        out.push(int64Of(keys[2 * i]!, keys[2 * i + 1]!));
        vals[i] = TOMB;
        this.count--;
      }
    }
    return out;
  }

  /** Rebuild without tombstones; doubles when more than a quarter is live (amortized O(1) per insert). */
  private rehash() {
    let cap = this.cap;
    if ((this.count + 1) * 4 > cap) cap *= 2;
    const oldKeys = this.keys;
    const oldVals = this.vals;
    const oldCap = this.cap;
    this.cap = cap;
    this.mask = cap - 1;
    this.keys = new Int32Array(cap * 2);
    this.vals = new Float64Array(cap).fill(EMPTY);
    this.used = 0;
    this.count = 0;
    for (let i = 0; i < oldCap; i++) {
      const v = oldVals[i]!;
      if (v >= 0) this.insertFresh(oldKeys[2 * i]!, oldKeys[2 * i + 1]!, v);
    }
  }

  private insertFresh(lo: number, hi: number, value: number) {
    let i = mix(lo, hi) & this.mask;
    while (this.vals[i] !== EMPTY) i = (i + 1) & this.mask;
    this.keys[2 * i] = lo;
    this.keys[2 * i + 1] = hi;
    this.vals[i] = value;
    this.used++;
    this.count++;
  }
}

/** A primary key → non-negative number map for one key type (int64 or VarChar). */
export class PkMap {
  private readonly ints: Int64Map | undefined;
  private readonly strings: Map<string, number> | undefined;

  constructor(readonly kind: "int64" | "string") {
    if (kind === "int64") this.ints = new Int64Map();
    else this.strings = new Map();
  }

  get size(): number {
    return this.ints ? this.ints.size : this.strings!.size;
  }

  /** -1 when absent (or when the key is of the other type). */
  get(pk: Pk): number {
    if (this.ints) return typeof pk === "bigint" ? this.ints.get(pk) : -1;
    return typeof pk === "string" ? (this.strings!.get(pk) ?? -1) : -1;
  }

  /** Returns the previous value or -1. */
  set(pk: Pk, value: number): number {
    if (this.ints) {
      if (typeof pk !== "bigint") throw new Error("int64 key expected");
      return this.ints.set(pk, value);
    }
    if (typeof pk !== "string") throw new Error("string key expected");
    const old = this.strings!.get(pk);
    this.strings!.set(pk, value);
    return old ?? -1;
  }

  /** Returns the value removed or -1. */
  delete(pk: Pk): number {
    if (this.ints) return typeof pk === "bigint" ? this.ints.delete(pk) : -1;
    if (typeof pk !== "string") return -1;
    const old = this.strings!.get(pk);
    if (old === undefined) return -1;
    this.strings!.delete(pk);
    return old;
  }

  /** Value of row i's key of a key column (-1 when absent). */
  getAt(k: KeyColumn, i: number): number {
    if (k.kind === "int64") return this.ints ? this.ints.getWords(k.words[2 * i]!, k.words[2 * i + 1]!) : -1;
    return this.strings ? (this.strings.get(k.data[i]!) ?? -1) : -1;
  }

  /** Set row i's key of a key column; returns the previous value or -1. */
  setAt(k: KeyColumn, i: number, value: number): number {
    if (k.kind === "int64") {
      if (!this.ints) throw new Error("string key expected");
      return this.ints.setWords(k.words[2 * i]!, k.words[2 * i + 1]!, value);
    }
    return this.set(k.data[i]!, value);
  }

  forEach(fn: (pk: Pk, value: number) => void): void {
    if (this.ints) this.ints.forEach((lo, hi, v) => fn(int64Of(lo, hi), v));
    else for (const [k, v] of this.strings!) fn(k, v);
  }

  /** Remove every entry whose value matches; returns their keys. */
  takeWhere(pred: (value: number) => boolean): Pk[] {
    if (this.ints) return this.ints.takeWhere(pred);
    const out: string[] = [];
    for (const [k, v] of this.strings!) {
      if (!pred(v)) continue;
      out.push(k);
      this.strings!.delete(k);
    }
    return out;
  }
}

/** Keys that occur more than once in a key column (each once, as Pk values). */
export const duplicateKeys = (k: KeyColumn): Pk[] => {
  const dups = new PkMap(k.kind);
  const out: Pk[] = [];
  const seen = new PkMap(k.kind);
  for (let i = 0; i < k.n; i++) {
    if (seen.setAt(k, i, 0) >= 0 && dups.setAt(k, i, 0) < 0) out.push(keyAt(k, i));
  }
  return out;
};
