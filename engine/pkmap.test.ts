import { describe, expect, it } from "vitest";
import { duplicateKeys, int64Of, Int64Map, keyAt, keyColumnOf, PkMap } from "./pkmap.ts";

const EDGE = [0n, 1n, -1n, 2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n) - 1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 32n, 2n ** 32n - 1n, -(2n ** 32n), 4294967296n * 7n + 3n];

describe("Int64Map / PkMap", () => {
  it("matches a Map under random sets and deletes, exact beyond 2^53", () => {
    let s = 12345;
    const rnd = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
    const ref = new Map<bigint, number>();
    const m = new Int64Map();
    const keys = [...EDGE];
    for (let i = 0; i < 300; i++) keys.push(BigInt.asIntN(64, (BigInt(rnd()) << 32n) | BigInt(rnd())), BigInt(rnd() % 1000), 2n ** 53n + BigInt(rnd() % 50));
    for (let step = 0; step < 20000; step++) {
      const k = keys[rnd() % keys.length]!;
      const op = rnd() % 3;
      if (op === 0) {
        const v = rnd() % 100000;
        expect(m.set(k, v)).toBe(ref.get(k) ?? -1);
        ref.set(k, v);
      } else if (op === 1) {
        expect(m.delete(k)).toBe(ref.get(k) ?? -1);
        ref.delete(k);
      } else expect(m.get(k)).toBe(ref.get(k) ?? -1);
      expect(m.size).toBe(ref.size);
    }
    const big = [...ref].filter(([, v]) => v >= 50000).map(([k]) => k);
    expect(new Set(m.takeWhere((v) => v >= 50000))).toEqual(new Set(big));
    for (const k of big) ref.delete(k);
    expect(m.size).toBe(ref.size);
    const seen = new Map<bigint, number>();
    m.forEach((lo, hi, v) => seen.set(int64Of(lo, hi), v));
    expect(seen).toEqual(ref);
  });

  it("never confuses keys that agree modulo 2^53, 2^32 or 2^64", () => {
    const m = new PkMap("int64");
    m.set(2n ** 53n, 1);
    expect(m.get(2n ** 53n + 1n)).toBe(-1);
    expect(m.get(2n ** 53n)).toBe(1);
    m.set(5n, 2);
    expect(m.get(5n + 2n ** 32n)).toBe(-1);
    expect(m.get(5n + 2n ** 64n)).toBe(-1);
    expect(m.delete(5n - 2n ** 64n)).toBe(-1);
    expect(() => m.set(2n ** 64n, 1)).toThrow();
    expect(m.get("5")).toBe(-1);
  });

  it("reads batch key columns without conversion", () => {
    const data = BigInt64Array.from(EDGE);
    const k = keyColumnOf({ kind: "int64", data }, data.length);
    expect(EDGE.map((_, i) => keyAt(k, i))).toEqual(EDGE);
    const m = new PkMap("int64");
    EDGE.forEach((_, i) => m.setAt(k, i, i));
    EDGE.forEach((pk, i) => expect(m.get(pk)).toBe(i));
    EDGE.forEach((_, i) => expect(m.getAt(k, i)).toBe(i));
    // A view at an offset (a column taken from a larger buffer).
    const sub = data.subarray(3);
    const ks = keyColumnOf({ kind: "int64", data: sub }, sub.length);
    expect(m.getAt(ks, 0)).toBe(3);
  });

  it("finds duplicates in int64 and string key columns", () => {
    const data = BigInt64Array.from([1n, 2n ** 60n, 3n, 1n, 2n ** 60n, 1n]);
    expect(duplicateKeys(keyColumnOf({ kind: "int64", data }, 6))).toEqual([1n, 2n ** 60n]);
    expect(duplicateKeys(keyColumnOf({ kind: "int64", data }, 3))).toEqual([]);
    expect(duplicateKeys(keyColumnOf({ kind: "values", data: ["a", "b", "a"] }, 3))).toEqual(["a"]);
  });

  it("string maps", () => {
    const m = new PkMap("string");
    expect(m.set("a", 3)).toBe(-1);
    expect(m.set("a", 4)).toBe(3);
    expect(m.get(1n)).toBe(-1);
    expect(m.takeWhere((v) => v === 4)).toEqual(["a"]);
    expect(m.size).toBe(0);
  });
});
