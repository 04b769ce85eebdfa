/**
 * Creates natsvec's streams and buckets if they are missing (idempotent, safe
 * to run from every process at start-up) and opens them.
 */
import { RetentionPolicy, StorageType } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { ObjectStore } from "@nats-io/obj";
import {
  BUCKET_LEASES,
  BUCKET_META,
  BUCKET_NODES,
  BUCKET_SEGMENTS,
  STREAM_TASKS,
  STREAM_WAL,
} from "../schemas/names.ts";
import type { NatsHandles, NatsvecConfig } from "./services.ts";
import { KvMetaStore, type MetaStore } from "./meta.ts";
import { isStreamNotFound, JetStreamWal, type Wal } from "./wal.ts";

export interface Storage {
  readonly meta: MetaStore;
  readonly metaKv: KV;
  readonly nodes: KV;
  readonly leases: KV;
  readonly segments: ObjectStore;
  readonly wal: Wal;
  readonly tasksStream: string;
}

const ensureStream = async (h: NatsHandles, name: string, subjects: string[], config: NatsvecConfig, workQueue: boolean) => {
  try {
    await h.jsm.streams.info(name);
  } catch {
    try {
      await h.jsm.streams.add({
        name,
        subjects,
        storage: StorageType.File,
        retention: workQueue ? RetentionPolicy.Workqueue : RetentionPolicy.Limits,
        num_replicas: config.replicas,
        max_msg_size: h.maxPayload,
        // Lets retried publishes with the same Nats-Msg-Id be stored once.
        duplicate_window: 120_000_000_000,
      });
    } catch (e) {
      // Another process created it between our info and add.
      if (!(e as Error).message?.includes("already in use")) throw e;
    }
  }
};

/**
 * Earlier versions kept every shard's WAL in one stream (`NATSVEC_WAL`, subjects `<root>.wal.>`),
 * whose subjects overlap every per-shard stream's. An empty one is removed; one holding entries
 * is data of that layout, which this version cannot replay: refuse to start rather than lose it.
 */
const retireSharedWalStream = async (h: NatsHandles) => {
  const name = h.names.stream(STREAM_WAL);
  let messages: number;
  try {
    messages = (await h.jsm.streams.info(name)).state.messages;
  } catch (e) {
    if (isStreamNotFound(e)) return;
    throw e;
  }
  if (messages > 0)
    throw new Error(
      `stream ${name} holds ${messages} WAL entries written by an earlier natsvec (one WAL stream for every shard); ` +
        `this version keeps one stream per shard and cannot replay it. Start this version on a new data directory (or another --root), ` +
        `or flush every collection with the earlier version and delete the stream (nats stream rm ${name}).`,
    );
  await h.jsm.streams.delete(name).catch((e) => {
    if (!isStreamNotFound(e)) throw e;
  });
};

export const openStorage = async (h: NatsHandles, config: NatsvecConfig): Promise<Storage> => {
  const tasksStream = h.names.stream(STREAM_TASKS);
  await retireSharedWalStream(h);
  await ensureStream(h, tasksStream, [h.names.tasksAll()], config, true);
  const metaKv = await h.kvm.create(h.names.bucket(BUCKET_META), { history: 5, replicas: config.replicas });
  const nodes = await h.kvm.create(h.names.bucket(BUCKET_NODES), {
    history: 1,
    replicas: config.replicas,
    ttl: config.heartbeatMs * 3,
  });
  const leases = await h.kvm.create(h.names.bucket(BUCKET_LEASES), {
    history: 1,
    replicas: config.replicas,
    ttl: config.leaseTtlMs,
  });
  const segments = await h.objm.create(h.names.bucket(BUCKET_SEGMENTS), { replicas: config.replicas });
  return {
    meta: new KvMetaStore(metaKv),
    metaKv,
    nodes,
    leases,
    segments,
    wal: new JetStreamWal(h.js, h.jsm, h.names.walStreamOf, (stream, subject) => ensureStream(h, stream, [subject], config, false), h.wire),
    tasksStream,
  };
};
