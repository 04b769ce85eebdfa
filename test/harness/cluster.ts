/**
 * A whole natsvec for a test file: a real nats-server (temp store, free port)
 * plus every role started in this process, and a client. Everything is
 * stopped in afterAll, even when assertions throw.
 */
import { afterAll, beforeAll } from "vitest";
import { randomBytes } from "node:crypto";
import { NatsvecClient } from "../../client/index.ts";
import { defaultConfig, type NatsvecConfig } from "../../runtime/services.ts";
import { setLogLevel } from "../../runtime/log.ts";
import { RUNNABLE_ROLES, startNode, type RunnableRole, type RunningNode } from "../../cluster/node.ts";
import { useNatsServer, type TestNats } from "./nats.ts";

setLogLevel((process.env.NATSVEC_LOG as "error" | undefined) ?? "error");

export interface TestCluster {
  nats: TestNats;
  client: NatsvecClient;
  config: NatsvecConfig;
  node: RunningNode;
  /** A fresh collection name for one test. */
  name(prefix?: string): string;
}

/** Short timings so failover paths finish quickly in tests. */
export const testConfig = (natsUrl: string, overrides: Partial<NatsvecConfig> = {}): NatsvecConfig =>
  defaultConfig({ natsUrl, leaseTtlMs: 3_000, heartbeatMs: 1_000, requestTimeoutMs: 15_000, ...overrides });

export function useCluster(roles: readonly RunnableRole[] = RUNNABLE_ROLES, overrides: Partial<NatsvecConfig> = {}): { get(): TestCluster } {
  const nats = useNatsServer();
  let cluster: TestCluster | undefined;
  beforeAll(async () => {
    const n = nats.get();
    const config = testConfig(n.url, overrides);
    const node = await startNode(config, roles);
    const client = await NatsvecClient.connect({ servers: n.url, timeoutMs: 20_000 });
    let seq = 0;
    cluster = { nats: n, client, config, node, name: (p = "c") => `${p}_${randomBytes(3).toString("hex")}_${++seq}` };
  });
  afterAll(async () => {
    await cluster?.client.close().catch(() => undefined);
    await cluster?.node.stop().catch(() => undefined);
  });
  return {
    get() {
      if (!cluster) throw new Error("cluster not started (useCluster must be called at the top of a describe/file)");
      return cluster;
    },
  };
}

/** Seeded PRNG (mulberry32) for reproducible vectors. */
export const rng = (seed: number) => () => {
  seed |= 0;
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

export const randomVectors = (n: number, dim: number, seed = 1): Float32Array[] => {
  const r = rng(seed);
  return Array.from({ length: n }, () => {
    const v = new Float32Array(dim);
    for (let i = 0; i < dim; i++) v[i] = r() * 2 - 1;
    return v;
  });
};

/** Independent exact top-k (no shared code with the engine): sort all distances. */
export const bruteForce = (
  base: readonly { id: bigint | string; v: Float32Array }[],
  q: Float32Array,
  metric: "L2" | "IP" | "COSINE",
  k: number,
): { id: bigint | string; d: number }[] => {
  const norm = (a: Float32Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0));
  const scored = base.map(({ id, v }) => {
    let d = 0;
    if (metric === "L2") for (let i = 0; i < v.length; i++) d += (v[i]! - q[i]!) ** 2;
    else {
      for (let i = 0; i < v.length; i++) d += v[i]! * q[i]!;
      if (metric === "COSINE") d /= norm(v) * norm(q) || 1;
    }
    return { id, d };
  });
  scored.sort((a, b) => (metric === "L2" ? a.d - b.d : b.d - a.d));
  return scored.slice(0, k);
};
