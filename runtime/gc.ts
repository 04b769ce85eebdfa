/**
 * An explicit full garbage collection, for the rare moments that free a lot at once (a batch of
 * segment loads, an index unload or build). Big buffers that just died (object reads of index files,
 * decoded binlogs) and native memory held only by dead JS objects (hnswlib graphs) are otherwise
 * freed whenever V8 happens to collect, which can be much later: resident memory stays high meanwhile.
 * (`--expose-gc` is not accepted in a worker's execArgv; enabling it at run time makes `gc`
 * available in new contexts, which works on the main thread and in workers alike.)
 *
 * After collecting, the C heap gives its free pages back to the OS (native/heap.c, malloc_trim):
 * without that, glibc keeps the freed buffers of a load burst resident (~250 MiB at 1M x 128).
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

const gc: () => void = (() => {
  try {
    setFlagsFromString("--expose-gc");
    const fn = runInNewContext("gc") as unknown;
    if (typeof fn === "function") return fn as () => void;
  } catch {
    // fall through: no explicit collection on this runtime
  }
  return () => {};
})();

interface HeapAddon {
  /** Whether trim can release memory here (glibc). */
  supported(): boolean;
  /** malloc_trim(0): true when some memory was released. */
  trim(): boolean;
  /** Raise the calling thread's nice value by `by` (max 19); its new nice, or null where unsupported. */
  lowerThreadPriority(by: number): number | null;
}

/** Where `npm install` builds native/heap.c (binding.gyp); this file and dist/ both sit one level below the root. */
export const HEAP_ADDON_PATH = join(dirname(fileURLToPath(import.meta.url)), "..", "build", "Release", "natsvec_heap.node");

/** The addon, or the reason it is not available (then nothing is trimmed). */
export const heapAddon: { addon: HeapAddon } | { missing: string } = (() => {
  try {
    return { addon: createRequire(import.meta.url)(HEAP_ADDON_PATH) as HeapAddon };
  } catch (e) {
    return { missing: e instanceof Error ? e.message : String(e) };
  }
})();

/**
 * Run the calling thread, and the threads it starts from now on, behind the process's other
 * threads when CPUs are contended (Linux: nice + `by`). The new nice value, or null where not
 * supported (other systems, addon missing).
 */
export const lowerThreadPriority = (by: number): number | null => ("addon" in heapAddon ? heapAddon.addon.lowerThreadPriority(by) : null);

/** Give the C heap's free pages back to the OS; false when nothing was released or the addon is missing. */
export const trimNativeHeap = (): boolean => ("addon" in heapAddon ? heapAddon.addon.trim() : false);

/**
 * V8 frees the backing stores of dead ArrayBuffers on a background sweeper task after the
 * collection, so a trim right after gc() misses most of a load burst's buffers: trim again once
 * they are gone. Measured at 1M x 128 (one 1M-row segment loaded after a restart): 1.16-1.43 GiB
 * resident with the immediate trim alone, ~870 MiB after a late one.
 */
export const LATE_TRIM_MS = 1_000;
let lateTrim: NodeJS.Timeout | undefined;

/** Whether a late trim is still to run (tests). */
export const lateTrimPending = (): boolean => lateTrim !== undefined;

export const collectGarbage = (): void => {
  gc();
  trimNativeHeap();
  if (lateTrim) clearTimeout(lateTrim);
  lateTrim = setTimeout(() => {
    lateTrim = undefined;
    trimNativeHeap();
  }, LATE_TRIM_MS);
  lateTrim.unref();
};

/**
 * How far V8 lets the old generation grow past what survived the last full collection before it
 * starts the next one: 300% (limit = 4x live). V8's own factor adapts between 1.1x and 4x and,
 * with natsvec's small JS heap (~25 MB; vectors and graphs live outside it), settles low: an
 * insert stream of 540 KB batches then runs a full mark-compact every ~8 batches, whose concurrent
 * marking cost more CPU than the rest of the insert path (natsvec CPU 9.7 -> 6.6 ms per batch,
 * 11 -> 3-4 full GCs per 100 batches, memory after a 1M restart unchanged; see
 * bench/repro/ingest-floor.ts). The flag is read whenever V8 computes the next limit, so setting
 * it at start-up is enough (no node command-line flag needed).
 */
export const HEAP_GROWING_PERCENT = 300;

export const tuneHeapGrowth = (): void => {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
};
