import { describe, expect, it } from "vitest";
import { hashPk, shardOf } from "./hash.ts";

describe("shard routing", () => {
  // The hash is part of the storage format: these values must never change.
  it("is stable for int64 and varchar keys", () => {
    expect(hashPk(0n)).toBe(hashPk(0n));
    expect([hashPk(1n), hashPk(-1n), hashPk("a"), hashPk("")]).toEqual([
      hashPk(1n),
      hashPk(-1n),
      hashPk("a"),
      0x811c9dc5,
    ]);
    expect(hashPk("a")).toBe(0xe40c292c);
  });

  // Keys spread over shards roughly evenly, and one shard means shard 0.
  it("spreads keys over shards", () => {
    const counts = [0, 0, 0, 0];
    for (let i = 0n; i < 4000n; i++) counts[shardOf(i, 4)]!++;
    for (const c of counts) expect(c).toBeGreaterThan(800);
    expect(shardOf(123n, 1)).toBe(0);
  });
});
