import { describe, expect, it } from "vitest";
import { keyColumnOf } from "../../engine/pkmap.ts";
import { KeyLookup } from "./shard.ts";

// Flushed segments' int64 keys are checked straight from a batch's key words: same answers as by bigint.
describe("KeyLookup.hasAt", () => {
  it("agrees with has() over the whole int64 range, before and after deletes", () => {
    const stored = [-(2n ** 63n), -(2n ** 40n), -5n, -1n, 0n, 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n];
    const k = new KeyLookup(1, 2, BigInt64Array.from(stored.slice().reverse()));
    const probes = [...stored, -(2n ** 63n) + 1n, -4n, 2n, 2n ** 31n - 1n, 2n ** 53n + 2n, 2n ** 62n, -(2n ** 32n)];
    const col = keyColumnOf({ kind: "int64", data: BigInt64Array.from(probes) }, probes.length);
    const check = () => probes.forEach((pk, i) => expect([pk, k.hasAt(col, i)]).toEqual([pk, k.has(pk)]));
    check();
    expect(probes.filter((_, i) => k.hasAt(col, i))).toEqual(stored);
    k.deleted.add(2n ** 53n);
    check();
    expect(k.hasAt(col, stored.indexOf(2n ** 53n))).toBe(false);
  });
});
