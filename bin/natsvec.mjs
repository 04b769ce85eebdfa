#!/usr/bin/env node
// The natsvec CLI: builds dist/ from the TypeScript sources when they changed (scripts/build.mjs,
// ~0.2 s), then runs dist/cli.mjs in this process (no wrapper process, no TypeScript loader).
import { buildDist } from "../scripts/build.mjs";

try {
  await buildDist({ ifStale: true });
} catch (e) {
  process.stderr.write(`natsvec: could not build dist/: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
await import("../dist/cli.mjs");
