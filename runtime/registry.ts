/**
 * Node registration: each process writes a heartbeat per role into the
 * `natsvec-nodes` bucket (max-age = 3 heartbeats, so a dead node vanishes on
 * its own) and answers health probes on `<root>.<role>.<nodeId>.health`.
 */
import { hostname } from "node:os";
import type { Role } from "../schemas/names.ts";
import { nodeKeys } from "../schemas/names.ts";
import type { NodeRecord } from "../schemas/meta.ts";
import { serveEndpoints } from "./host.ts";
import type { NatsHandles, NatsvecConfig } from "./services.ts";
import type { Storage } from "./storage.ts";

export const registerNode = (h: NatsHandles, storage: Storage, config: NatsvecConfig, roles: readonly Role[]) => {
  const startedAtMs = Date.now();
  const beat = async () => {
    for (const role of roles) {
      const rec: NodeRecord = { nodeId: config.nodeId, role, pid: process.pid, host: hostname(), startedAtMs, lastSeenMs: Date.now() };
      await storage.nodes.put(nodeKeys.node(role, config.nodeId), JSON.stringify(rec)).catch(() => undefined);
    }
  };
  void beat();
  const timer = setInterval(() => void beat(), config.heartbeatMs);
  timer.unref();
  const health = serveEndpoints(
    h,
    roles.map((role) => ({
      subject: h.names.role(role, config.nodeId, "health"),
      handle: async () => ({ data: { nodeId: config.nodeId, role, uptimeMs: Date.now() - startedAtMs } }),
    })),
    "registry",
  );
  return {
    async stop() {
      clearInterval(timer);
      await health.stop();
      for (const role of roles) await storage.nodes.delete(nodeKeys.node(role, config.nodeId)).catch(() => undefined);
    },
  };
};

/** Nodes seen recently, from the heartbeat bucket. */
export const listNodes = async (storage: Storage): Promise<NodeRecord[]> => {
  const out: NodeRecord[] = [];
  // A key updated by a heartbeat while the listing runs can be delivered twice.
  const keys = new Set<string>();
  for await (const k of await storage.nodes.keys()) keys.add(k);
  for (const k of keys) {
    const e = await storage.nodes.get(k);
    if (e && e.operation === "PUT" && e.value.length > 0) out.push(JSON.parse(new TextDecoder().decode(e.value)) as NodeRecord);
  }
  return out;
};
