#!/usr/bin/env node
// Builds the runnable natsvec: dist/cli.mjs (the CLI with every role) and dist/worker.mjs (the index
// worker thread), bundled from the TypeScript sources by esbuild, dependencies left as imports.
// `npm start`, `bin/natsvec.mjs`, the tests that spawn natsvec and the bench run these files with
// plain node: no TypeScript loader in the process (it cost ~70 MB of RSS and a helper process).
//
//   node scripts/build.mjs             build (about 0.2 s)
//   node scripts/build.mjs --if-stale  build only when a source file is newer than dist/
//
// Files are written to a temporary directory and renamed into dist/, so a natsvec starting while
// another build runs (parallel test workers) never reads a half-written bundle.
import { build } from "esbuild";
import { mkdirSync, readdirSync, renameSync, rmSync, statSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const DIST = join(ROOT, "dist");
const SOURCES = ["actors", "cluster", "engine", "runtime", "schemas", "client"];
const OUTPUTS = ["cli.mjs", "worker.mjs"];

const newestSource = () => {
  let newest = statSync(join(ROOT, "package.json")).mtimeMs;
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".ts") && !e.name.endsWith(".test.ts")) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  for (const d of SOURCES) if (existsSync(join(ROOT, d))) walk(join(ROOT, d));
  return newest;
};

const isStale = () => {
  const built = OUTPUTS.map((f) => join(DIST, f));
  if (!built.every(existsSync)) return true;
  const oldest = Math.min(...built.map((f) => statSync(f).mtimeMs));
  return newestSource() > oldest;
};

export const buildDist = async ({ ifStale = false, quiet = false } = {}) => {
  if (ifStale && !isStale()) return false;
  const t0 = performance.now();
  const tmp = join(DIST, `.tmp-${process.pid}-${Date.now()}`);
  mkdirSync(tmp, { recursive: true });
  try {
    await build({
      absWorkingDir: ROOT,
      entryPoints: { cli: "cluster/cli.ts", worker: "engine/index/worker.ts" },
      outdir: tmp,
      outExtension: { ".js": ".mjs" },
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      packages: "external",
      sourcemap: "linked",
      // Bundled CommonJS helpers may call require(): give ESM output one.
      banner: { js: "import { createRequire as __natsvecRequire } from 'node:module'; const require = __natsvecRequire(import.meta.url);" },
      logLevel: "warning",
    });
    for (const f of readdirSync(tmp)) renameSync(join(tmp, f), join(DIST, f));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (!quiet) process.stderr.write(`natsvec: built dist/ in ${(performance.now() - t0).toFixed(0)} ms\n`);
  return true;
};

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await buildDist({ ifStale: process.argv.includes("--if-stale") }).catch((e) => {
    process.stderr.write(`natsvec: build failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
