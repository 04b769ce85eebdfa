/**
 * indexnode: builds vector indexes (FLAT, HNSW, IVF_FLAT, IVF_SQ8) for flushed
 * segments in worker threads. Takes tasks from the `index` lane of
 * NATSVEC_TASKS, so any number can run and none needs to stay up; a build
 * that crashes is redelivered.
 */
import { Catalog } from "../../runtime/catalog.ts";
import { ObjectStoreBlobs } from "../../runtime/blob.ts";
import { consumeTasks } from "../../runtime/tasks.ts";
import { log } from "../../runtime/log.ts";
import type { NatsHandles, NatsvecConfig } from "../../runtime/services.ts";
import type { Storage } from "../../runtime/storage.ts";
import { IndexWorkerPool } from "../../engine/index/pool.ts";
import { runIndexBuild } from "./build.ts";

export interface IndexnodeHandle {
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}

export const startIndexnode = (h: NatsHandles, storage: Storage, config: NatsvecConfig): IndexnodeHandle => {
  const catalog = new Catalog(storage.meta);
  const pool = new IndexWorkerPool(1);
  const deps = { meta: storage.meta, blobs: new ObjectStoreBlobs(storage.segments), pool, collection: (id: number) => catalog.collectionById(id) };
  let worker: { stop(): Promise<void> } | undefined;
  const ready = (async () => {
    worker = await consumeTasks(h, storage, "index", `indexnode ${config.nodeId}`, async (task) => {
      if (task.kind !== "index") return "ack";
      const started = Date.now();
      const outcome = await runIndexBuild(task, deps);
      if (outcome === "built") log.info(`indexnode ${config.nodeId}: ${task.indexName} of segment ${task.segmentId} built in ${Date.now() - started} ms`);
      return "ack";
    });
  })();
  return {
    ready,
    async stop() {
      await ready.catch(() => undefined);
      await worker?.stop();
      await pool.close();
    },
  };
};
