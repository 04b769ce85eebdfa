import { describe, expect, it } from "vitest";
import { sealReason } from "./sealPolicy.ts";

const p = { maxRows: 100, maxBytes: 1000, idleMs: 5000 };

describe("seal policy", () => {
  // Nothing to seal when there are no growing rows, however old.
  it("never seals an empty shard", () => {
    expect(sealReason(p, { rows: 0, bytes: 0, lastWriteMs: 0 }, 1e9)).toBeUndefined();
  });
  // Each limit seals on its own, rows first.
  it("seals on rows, bytes, idle time", () => {
    expect(sealReason(p, { rows: 100, bytes: 5000, lastWriteMs: 0 }, 1)).toBe("rows");
    expect(sealReason(p, { rows: 99, bytes: 1000, lastWriteMs: 0 }, 1)).toBe("bytes");
    expect(sealReason(p, { rows: 1, bytes: 1, lastWriteMs: 1000 }, 6000)).toBe("idle");
    expect(sealReason(p, { rows: 1, bytes: 1, lastWriteMs: 1000 }, 5999)).toBeUndefined();
  });
});
