/**
 * In-process delivery for actors that share a process and a NATS server: a
 * request to an exact subject served in this process skips encoding and the
 * network and calls the serving actor's handler directly. Semantics stay
 * those of a message: the caller sees the same envelope and the same typed
 * errors; an endpoint that stops serving unregisters at once, so requests go
 * back to NATS (and to whichever process serves the subject then).
 * Wildcard and queue-group-shared public subjects are never short-circuited:
 * the public API always goes through NATS.
 */
import type { ReplyBody, RequestContext } from "./host.ts";

export type LocalHandler = (body: unknown, ctx: RequestContext) => Promise<ReplyBody>;

const handlers = new Map<string, LocalHandler[]>();
let turn = 0;

const key = (serverId: string, subject: string) => `${serverId}|${subject}`;

export const registerLocal = (serverId: string | undefined, subject: string, handler: LocalHandler): (() => void) => {
  if (!serverId || subject.includes("*") || subject.includes(">")) return () => undefined;
  const k = key(serverId, subject);
  const list = handlers.get(k) ?? [];
  list.push(handler);
  handlers.set(k, list);
  return () => {
    const l = handlers.get(k);
    if (!l) return;
    const i = l.indexOf(handler);
    if (i >= 0) l.splice(i, 1);
    if (l.length === 0) handlers.delete(k);
  };
};

/** A local handler for the subject, if any (round robin when several, like a queue group). */
export const localHandler = (serverId: string | undefined, subject: string): LocalHandler | undefined => {
  if (!serverId) return undefined;
  const l = handlers.get(key(serverId, subject));
  if (!l || l.length === 0) return undefined;
  return l[turn++ % l.length];
};
