import { describe, expect, it } from "vitest";
import { MALLOC_TUNING, missingMallocTuning } from "./malloc.ts";

describe("malloc tuning", () => {
  // The hint names exactly the settings a Linux process started without; elsewhere they do not apply.
  it("names the missing settings on Linux only", () => {
    expect(missingMallocTuning({}, "linux").sort()).toEqual(Object.keys(MALLOC_TUNING).sort());
    expect(missingMallocTuning({ ...MALLOC_TUNING }, "linux")).toEqual([]);
    expect(missingMallocTuning({ MALLOC_ARENA_MAX: "4" }, "linux")).not.toContain("MALLOC_ARENA_MAX");
    expect(missingMallocTuning({}, "darwin")).toEqual([]);
  });

  // package.json's scripts and bin/natsvec.mjs spell the values out (they cannot import them): they must match.
  it("package.json and the natsvec command use the same values", async () => {
    const { readFileSync } = await import("node:fs");
    const assignments = Object.entries(MALLOC_TUNING).map(([k, v]) => `${k}=${v}`);
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { scripts: Record<string, string> };
    const bin = readFileSync(new URL("../bin/natsvec.mjs", import.meta.url), "utf8").split("\n")[0]!;
    for (const a of assignments) {
      expect(pkg.scripts.start).toContain(a);
      expect(pkg.scripts.natsvec).toContain(a);
      expect(bin).toContain(a);
    }
  });
});
