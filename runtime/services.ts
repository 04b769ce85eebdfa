/**
 * Services every actor gets through Effect's context: configuration and the
 * NATS connection (with its JetStream / KV / Object Store handles). Config is
 * a service, never a global read from inside an actor.
 */
import { Context, Effect, Layer } from "effect";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Objm, setSha256Backend } from "@nats-io/obj";
import { randomBytes } from "node:crypto";
import { totalmem } from "node:os";
import { names, type Names } from "../schemas/names.ts";
import { COMPACT_MAX_BYTES, COMPACT_MAX_ROWS } from "../schemas/segment.ts";
import { log } from "./log.ts";
import { DataWire } from "./wire.ts";

// The Object Store checks a SHA-256 of every object on put and get. nats.js hashes in JavaScript by
// default (browser-safe), which caps reads and writes at ~45 MB/s here and took most of a segment
// load's time; Node's native hash is ~20x faster. Process-wide, set before any Object Store use.
setSha256Backend("native");

export interface NatsvecConfig {
  readonly natsUrl: string;
  readonly root: string;
  /** Unique per process; names this node in heartbeats and leases. */
  readonly nodeId: string;
  /** Default deadline of internal requests. */
  readonly requestTimeoutMs: number;
  /** How long a read waits for its guarantee timestamp before ConsistencyTimeout. */
  readonly consistencyWaitMs: number;
  /** Staleness used by consistencyLevel Bounded. */
  readonly boundedStalenessMs: number;
  /** Heartbeat period; nodes unseen for 3 periods are gone. */
  readonly heartbeatMs: number;
  /** Shard lease time-to-live (the leases bucket's max age). */
  readonly leaseTtlMs: number;
  /** Interval of time ticks an idle shard publishes. */
  readonly timeTickMs: number;
  /** Replicas for streams and buckets (1 for a single server). */
  readonly replicas: number;
  /** Seal policy of growing segments (see actors/streamingnode/sealPolicy.ts). */
  readonly segmentMaxRows: number;
  readonly segmentMaxBytes: number;
  readonly segmentIdleMs: number;
  /** Merge limits of compaction (see actors/datacoord/schedule.ts, DEFAULT_COMPACTION). */
  readonly compactMaxRows: number;
  readonly compactMaxBytes: number;
  /** Memory a query node may fill with loaded segments and indexes (default: 70% of the machine's memory). */
  readonly queryNodeMemoryBytes?: number;
  /**
   * Search threads of a query node's index pool (default: one per core). Segments are spread over
   * them, so a search over several segments runs in parallel; searches are short and batched, so
   * sharing the cores with the event loop costs little.
   */
  readonly searchWorkers?: number;
  /** Requests between actors of one process skip NATS (runtime/localbus.ts); off forces every hop over NATS. */
  readonly localDelivery: boolean;
  /**
   * Carry inserted rows over the data wire (runtime/wire.ts: the proxy's public API and the WAL
   * appends on a minimal NATS connection of their own) where the server allows it; off keeps every
   * byte on nats.js.
   */
  readonly dataWire: boolean;
  /** Credentials for the NATS connection, if the server needs them. */
  readonly natsUser?: string;
  readonly natsPass?: string;
}

export const defaultConfig = (overrides: Partial<NatsvecConfig> = {}): NatsvecConfig => ({
  natsUrl: "nats://127.0.0.1:4222",
  root: "natsvec",
  nodeId: `n${process.pid.toString(36)}${randomBytes(3).toString("hex")}`,
  requestTimeoutMs: 30_000,
  consistencyWaitMs: 10_000,
  boundedStalenessMs: 5_000,
  heartbeatMs: 2_000,
  leaseTtlMs: 10_000,
  timeTickMs: 200,
  replicas: 1,
  segmentMaxRows: 200_000,
  segmentMaxBytes: 128 * 1024 * 1024,
  segmentIdleMs: 60_000,
  compactMaxRows: COMPACT_MAX_ROWS,
  compactMaxBytes: COMPACT_MAX_BYTES,
  queryNodeMemoryBytes: Math.floor(totalmem() * 0.7),
  localDelivery: true,
  dataWire: true,
  ...overrides,
});

export class Config extends Context.Tag("natsvec/Config")<Config, NatsvecConfig>() {}

export interface NatsHandles {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly kvm: Kvm;
  readonly objm: Objm;
  readonly names: Names;
  /** Server's max payload in bytes. */
  readonly maxPayload: number;
  /** The data wire, when this connection opened one (`openNats(..., { dataWire: true })` and a server it can speak to). */
  readonly wire?: DataWire;
}

export class Nats extends Context.Tag("natsvec/Nats")<Nats, NatsHandles>() {}

/**
 * Connect. `dataWire`: also open the data wire (when `config.dataWire` allows it and the server
 * speaks plain NATS); only a process's main connection does, the connections of bulk roles do not.
 */
export const openNats = async (config: NatsvecConfig, name = "natsvec", opts: { dataWire?: boolean } = {}): Promise<NatsHandles> => {
  const nc = await connect({
    servers: config.natsUrl,
    name: `${name}:${config.nodeId}`,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    user: config.natsUser,
    pass: config.natsPass,
    // No Error (stack capture) per request made: every WAL append is a request.
    noAsyncTraces: true,
  });
  const jsm = await jetstreamManager(nc);
  const wire =
    opts.dataWire && config.dataWire
      ? await DataWire.open({ servers: config.natsUrl, user: config.natsUser, pass: config.natsPass, name: `${name}-wire:${config.nodeId}` }, (why) =>
          log.info(`${name}: no data wire (${why}); inserted rows go through nats.js`),
        )
      : undefined;
  return {
    nc,
    wire,
    js: jetstream(nc),
    jsm,
    kvm: new Kvm(nc),
    objm: new Objm(nc),
    names: names(config.root),
    maxPayload: nc.info?.max_payload ?? 1024 * 1024,
  };
};

/** The NATS connection as a scoped layer: drained (pending replies flushed) when the scope closes. */
export const NatsLive = Layer.scoped(
  Nats,
  Effect.gen(function* () {
    const config = yield* Config;
    return yield* Effect.acquireRelease(
      Effect.promise(() => openNats(config, "natsvec", { dataWire: true })),
      (h) => Effect.promise(async () => {
        await h.wire?.close();
        await h.nc.drain().catch(() => undefined);
      }),
    );
  }),
);

export const ConfigLive = (config: NatsvecConfig) => Layer.succeed(Config, config);
