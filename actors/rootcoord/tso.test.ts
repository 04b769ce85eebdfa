import { beforeAll, describe, expect, it } from "vitest";
import { useStorage } from "../../test/harness/storage.ts";
import type { NatsHandles } from "../../runtime/services.ts";
import type { Storage } from "../../runtime/storage.ts";
import { physicalMsOf } from "../../schemas/ids.ts";
import { Tso, TSO_WINDOW_MS } from "./tso.ts";

const env = useStorage();
let h: NatsHandles;
let storage: Storage;
beforeAll(() => {
  ({ h, storage } = env.get());
});

describe("timestamp oracle", () => {
  // Timestamps strictly increase, also under concurrent callers and batch allocations.
  it("is strictly monotonic", async () => {
    const tso = new Tso(storage.meta);
    await tso.start();
    const all = await Promise.all(Array.from({ length: 2000 }, (_, i) => tso.allocate(1 + (i % 3))));
    const sorted = [...all].sort((a, b) => (a < b ? -1 : 1));
    expect(new Set(all).size).toBe(all.length);
    for (let i = 1; i < all.length; i++) expect(all[i]! > all[i - 1]!).toBe(true);
    expect(sorted).toEqual(all);
  });

  // After a restart with a clock that went back an hour, every new timestamp is above every old one.
  it("never goes backwards across restarts", async () => {
    const first = new Tso(storage.meta);
    await first.start();
    const before = await first.allocate();
    const clockBack = () => Date.now() - 3_600_000;
    const second = new Tso(storage.meta, clockBack);
    await second.start();
    const after = await second.allocate();
    expect(after > before).toBe(true);
    // The physical part is at least the persisted high-water mark.
    expect(physicalMsOf(after)).toBeGreaterThan(physicalMsOf(before));
    expect(physicalMsOf(after) - physicalMsOf(before)).toBeLessThanOrEqual(TSO_WINDOW_MS * 2 + 1000);
  });

  // The logical counter rolls into the next millisecond rather than overflowing 18 bits.
  it("handles more than 2^18 timestamps in one millisecond", async () => {
    const frozen = Date.now() + 10_000;
    const tso = new Tso(storage.meta, () => frozen);
    await tso.start();
    const a = await tso.allocate(200_000);
    const b = await tso.allocate(200_000);
    expect(b - a).toBeGreaterThanOrEqual(200_000n);
  });
});
