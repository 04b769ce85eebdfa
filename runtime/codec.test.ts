import { describe, expect, it } from "vitest";
import { decodeBody, decodeJson, encodeBody, encodeJson, protectBigIntegers } from "./codec.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe("codec", () => {
  // Integer literals beyond 2^53 survive JSON decoding exactly (as decimal strings), others stay numbers.
  it("keeps big JSON integers exact", () => {
    const v = decodeJson(new TextEncoder().encode('{"a":9007199254740993,"b":12,"c":1.5e300,"d":"9007199254740993x","e":[-9223372036854775808]}')) as any;
    expect(v).toEqual({ a: "9007199254740993", b: 12, c: 1.5e300, d: "9007199254740993x", e: ["-9223372036854775808"] });
    expect(protectBigIntegers('{"s":"12345678901234567890","n":12345678901234567890}')).toBe('{"s":"12345678901234567890","n":"12345678901234567890"}');
    expect(protectBigIntegers('{"x":0.12345678901234567}')).toBe('{"x":0.12345678901234567}');
  });

  // bigint is written as a string by default and as a raw number when int64 is allowed.
  it("writes int64 as string or raw number", () => {
    const v = { id: 9007199254740993n, s: "\u0000int64:5", f: new Float32Array([1.5]) };
    expect(text(encodeJson(v))).toBe('{"id":"9007199254740993","s":"\\u0000int64:5","f":[1.5]}');
    expect(text(encodeJson(v, true))).toBe('{"id":9007199254740993,"s":"\\u0000int64:5","f":[1.5]}');
  });

  // msgpack round-trips bigint and Float32Array exactly.
  it("msgpack round-trips int64 and typed arrays", () => {
    const v = { id: -(2n ** 63n), ts: 470631028742422528n, vec: new Float32Array([0.1, -2, 3e-8]), n: 5 };
    const back = decodeBody(encodeBody(v, "msgpack"), "msgpack") as typeof v;
    expect(back.id).toBe(v.id);
    expect(back.ts).toBe(v.ts);
    expect(back.vec).toEqual(v.vec);
    expect(back.vec).toBeInstanceOf(Float32Array);
    expect(back.n).toBe(5);
  });

  // Bad bodies are reported as decode errors, not crashes.
  it("rejects malformed bodies", () => {
    expect(() => decodeJson(new TextEncoder().encode("{nope"))).toThrow(/not valid JSON/);
    expect(() => decodeJson(new Uint8Array([0xff, 0xfe]))).toThrow(/UTF-8/);
    expect(() => decodeBody(new Uint8Array([0x93, 0x01]), "msgpack")).toThrow(/msgpack/);
  });
});
