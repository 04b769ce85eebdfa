/**
 * An explicit full garbage collection, for the rare moments that free a lot at once (a batch of
 * segment loads, an index unload or build). Big buffers that just died (object reads of index files,
 * decoded binlogs) and native memory held only by dead JS objects (hnswlib graphs) are otherwise
 * freed whenever V8 happens to collect, which can be much later: resident memory stays high meanwhile.
 * (`--expose-gc` is not accepted in a worker's execArgv; enabling it at run time makes `gc`
 * available in new contexts, which works on the main thread and in workers alike.)
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

export const collectGarbage: () => void = (() => {
  try {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as unknown;
    if (typeof gc === "function") return gc as () => void;
  } catch {
    // fall through: no explicit collection on this runtime
  }
  return () => {};
})();
