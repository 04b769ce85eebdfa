import { beforeAll, describe, expect, it } from "vitest";
import { useStorage } from "../test/harness/storage.ts";
import type { NatsHandles } from "./services.ts";
import type { Storage } from "./storage.ts";
import { WalFenced } from "./wal.ts";

const env = useStorage();
let h: NatsHandles;
let storage: Storage;
beforeAll(() => {
  ({ h, storage } = env.get());
});

describe("JetStream WAL", () => {
  // Appends are fenced by the expected last sequence: a writer with a stale view cannot append (invariant 5).
  it("fences a stale writer", async () => {
    const subject = h.names.wal(900, 0);
    expect(await storage.wal.lastSeq(subject)).toBe(0);
    const s1 = await storage.wal.append(subject, new Uint8Array([1]), 0);
    const s2 = await storage.wal.append(subject, new Uint8Array([2]), s1);
    await expect(storage.wal.append(subject, new Uint8Array([3]), s1)).rejects.toBeInstanceOf(WalFenced);
    await expect(storage.wal.append(subject, new Uint8Array([3]), 0)).rejects.toBeInstanceOf(WalFenced);
    expect(await storage.wal.lastSeq(subject)).toBe(s2);
  });

  // Reads return exactly the shard's entries in order, from any start, ignoring other shards' subjects.
  it("reads one subject in order from a position", async () => {
    const a = h.names.wal(901, 0);
    const b = h.names.wal(901, 1);
    let la = 0;
    let lb = 0;
    for (let i = 0; i < 600; i++) {
      la = await storage.wal.append(a, new Uint8Array([i % 256, 0]), la);
      if (i % 3 === 0) lb = await storage.wal.append(b, new Uint8Array([i % 256, 1]), lb);
    }
    const seen: number[] = [];
    await storage.wal.read(a, 1, la, (_seq, bytes) => seen.push(bytes[0]!));
    expect(seen).toEqual(Array.from({ length: 600 }, (_, i) => i % 256));
    const tail: number[] = [];
    const seqs: number[] = [];
    await storage.wal.read(a, 1, la, (seq) => seqs.push(seq));
    await storage.wal.read(a, seqs[590]!, la, (_s, bytes) => tail.push(bytes[0]!));
    expect(tail).toEqual(Array.from({ length: 10 }, (_, i) => (590 + i) % 256));
    const other: number[] = [];
    await storage.wal.read(b, 1, lb, (_s, bytes) => other.push(bytes[1]!));
    expect(other).toEqual(new Array(200).fill(1));
  });

  // Purging a collection removes its shards' entries and nothing else.
  it("purges one collection", async () => {
    const keep = h.names.wal(902, 0);
    const drop = h.names.wal(903, 0);
    await storage.wal.append(keep, new Uint8Array([1]), 0);
    await storage.wal.append(drop, new Uint8Array([1]), 0);
    await storage.wal.purge(h.names.walCollection(903));
    expect(await storage.wal.lastSeq(drop)).toBe(0);
    expect(await storage.wal.lastSeq(keep)).toBeGreaterThan(0);
  });
});
