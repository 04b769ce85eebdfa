import { describe, expect, it } from "vitest";
import { localHandler, registerLocal } from "./localbus.ts";

const h = (tag: string) => async () => ({ data: tag });

describe("local delivery", () => {
  // Handlers are found only for the same NATS server and the exact subject; wildcards are never local.
  it("scopes by server and exact subject", () => {
    const off = registerLocal("srv1", "natsvec.shard.1.0.write", h("a"));
    expect(localHandler("srv1", "natsvec.shard.1.0.write")).toBeDefined();
    expect(localHandler("srv2", "natsvec.shard.1.0.write")).toBeUndefined();
    expect(localHandler("srv1", "natsvec.shard.1.0.search")).toBeUndefined();
    const offWild = registerLocal("srv1", "natsvec.api.v2.>", h("b"));
    expect(localHandler("srv1", "natsvec.api.v2.>")).toBeUndefined();
    offWild();
    off();
    expect(localHandler("srv1", "natsvec.shard.1.0.write")).toBeUndefined();
    expect(localHandler(undefined, "x")).toBeUndefined();
  });

  // Several local servers of one subject share requests round robin, like a queue group.
  it("round-robins between local servers", async () => {
    const offA = registerLocal("s", "natsvec.rootcoord.any.tso", h("a"));
    const offB = registerLocal("s", "natsvec.rootcoord.any.tso", h("b"));
    const seen = new Set<unknown>();
    for (let i = 0; i < 4; i++) seen.add((await localHandler("s", "natsvec.rootcoord.any.tso")!(undefined, undefined as never)).data);
    expect([...seen].sort()).toEqual(["a", "b"]);
    offA();
    offB();
  });
});
