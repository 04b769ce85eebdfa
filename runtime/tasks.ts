/**
 * Task workers: pull tasks from the NATSVEC_TASKS work-queue stream (one
 * durable consumer per lane, shared by every worker of that lane, so any
 * number can run and none needs to stay up). A task is acknowledged only
 * after its work is done; a crash leaves it unacknowledged and it is
 * redelivered after the ack wait; `retry` outcomes are redelivered after a
 * delay. Long tasks keep their lease with `working()` heartbeats.
 */
import { AckPolicy, DeliverPolicy, type JsMsg } from "@nats-io/jetstream";
import { packMsgpack, unpackMsgpack } from "./codec.ts";
import { log } from "./log.ts";
import type { NatsHandles } from "./services.ts";
import type { Storage } from "./storage.ts";
import type { Task } from "../schemas/segment.ts";

export type TaskOutcome = "ack" | "retry";

const ACK_WAIT_NS = 60_000_000_000;
const HEARTBEAT_MS = 20_000;

export const publishTask = async (h: NatsHandles, task: Task) => {
  const lane = task.kind === "index" ? "index" : "data";
  await h.js.publish(h.names.task(lane, task.kind), packMsgpack(task));
};

export const consumeTasks = async (
  h: NatsHandles,
  storage: Storage,
  lane: "data" | "index",
  worker: string,
  handle: (task: Task) => Promise<TaskOutcome>,
): Promise<{ stop(): Promise<void> }> => {
  const durable = `natsvec-${lane}`;
  try {
    await h.jsm.consumers.info(storage.tasksStream, durable);
  } catch {
    await h.jsm.consumers
      .add(storage.tasksStream, {
        durable_name: durable,
        filter_subject: h.names.taskLane(lane),
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: ACK_WAIT_NS,
        max_deliver: -1,
      })
      .catch((e) => {
        if (!(e as Error).message?.includes("already")) throw e;
      });
  }
  const consumer = await h.js.consumers.get(storage.tasksStream, durable);
  let stopped = false;
  let current: Promise<void> = Promise.resolve();
  const runOne = async (m: JsMsg) => {
    const task = unpackMsgpack(m.data) as Task;
    const beat = setInterval(() => m.working(), HEARTBEAT_MS);
    try {
      const outcome = await handle(task);
      if (outcome === "ack") m.ack();
      else m.nak(1_000);
    } catch (e) {
      log.error(`${worker}: ${task.kind} task failed; it will be retried`, e);
      m.nak(5_000);
    } finally {
      clearInterval(beat);
    }
  };
  const loop = (async () => {
    while (!stopped) {
      try {
        const batch = await consumer.fetch({ max_messages: 1, expires: 1_000 });
        for await (const m of batch) {
          current = runOne(m);
          await current;
        }
      } catch (e) {
        if (!stopped) {
          log.warn(`${worker}: task fetch failed: ${(e as Error).message}`);
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
    },
  };
};
