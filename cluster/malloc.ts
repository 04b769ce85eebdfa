/**
 * glibc malloc settings natsvec runs with on Linux. They only take effect in
 * the environment a process starts with (glibc reads them at its first
 * allocation), so `npm start`, the `natsvec` command (bin/natsvec.mjs's
 * shebang), the test harness and the bench set them; a plain
 * `node dist/cli.mjs` logs a hint when they are missing. The same values are
 * spelled out in package.json's scripts and bin/natsvec.mjs (keep in sync).
 *
 * Why: a query node reads every segment and index object through its main
 * thread (hundreds of MB at 1M rows). glibc's defaults serve buffers below a
 * threshold that adapts upward to 32 MB from its arenas, and a freed arena
 * region is given back only when it sits at the top, so after loading 1M
 * rows ~150-250 MiB of freed buffers stayed resident, and each thread's own
 * arena kept more. Measured on the 1M x 128 HNSW bench data after a restart:
 * 1,136 MiB resident with the defaults, 914 MiB with these (bench/README).
 *
 *   MALLOC_MMAP_THRESHOLD_=32768  buffers of 32 KiB and more get their own
 *                                 mapping, unmapped on free (fixed: no
 *                                 upward adaptation)
 *   MALLOC_TRIM_THRESHOLD_=131072 give back free memory at the top of an
 *                                 arena beyond 128 KiB
 *   MALLOC_ARENA_MAX=2            at most two arenas for all threads
 */
export const MALLOC_TUNING: Readonly<Record<string, string>> = Object.freeze({
  MALLOC_ARENA_MAX: "2",
  MALLOC_MMAP_THRESHOLD_: "32768",
  MALLOC_TRIM_THRESHOLD_: "131072",
});

/** The settings missing from `env` (none off Linux, where they do not apply). */
export const missingMallocTuning = (env: NodeJS.ProcessEnv = process.env, platform: string = process.platform): string[] =>
  platform === "linux" ? Object.keys(MALLOC_TUNING).filter((k) => env[k] === undefined) : [];
