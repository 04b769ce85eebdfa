import { describe, expect, it } from "vitest";
import { runFlush, type FlushDeps } from "./flush.ts";
import type { CollectionRecord } from "../../schemas/meta.ts";
import type { FlushTask } from "../../schemas/segment.ts";

/** Only what runFlush reads before it decides whether the task applies: the collection and the checkpoint. */
const depsAtCheckpoint = (seq: number) =>
  ({
    collection: async () => ({ id: 1 }) as CollectionRecord,
    meta: { get: async () => ({ value: { seq }, revision: 1 }) },
  }) as unknown as FlushDeps;
const task = (walFrom: number, walTo: number): FlushTask => ({ kind: "flush", collectionId: 1, shard: 0, walFrom, walTo, segments: [] });

describe("flush ordering", () => {
  // A flush waits for the checkpoint to reach its start, is a no-op once it passed its end, and is
  // dropped when a shorter flush (queued before the shard owner restarted) moved it inside its range.
  it("not-ready, already-done and superseded ranges", async () => {
    expect(await runFlush(task(7, 30), depsAtCheckpoint(0))).toBe("not-ready");
    expect(await runFlush(task(1, 30), depsAtCheckpoint(30))).toBe("already-done");
    expect(await runFlush(task(1, 30), depsAtCheckpoint(6))).toBe("superseded");
  });
});
