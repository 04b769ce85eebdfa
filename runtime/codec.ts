/**
 * Wire codecs. JSON is the default (any NATS client can speak it); msgpack is
 * used when the request says `Content-Type: application/msgpack`.
 *
 * int64 exactness: JSON numbers beyond 2^53 cannot survive JSON.parse, so the
 * decoder turns such integer literals into decimal strings before parsing
 * (int64 fields accept decimal strings). The JSON encoder writes bigint as a
 * string unless the caller allows raw int64 (`Accept-Type-Allow-Int64: true`).
 * msgpack carries int64 natively (bigint in JS) and typed arrays as extensions.
 */
import { randomBytes } from "node:crypto";
import { Packr } from "msgpackr";

export type Encoding = "json" | "msgpack";

// msgpackr's typings lag its options (useBigInt64 is real: bigint -> int64).
const packrOptions = {
  useRecords: false, // plain maps: readable by every msgpack implementation
  useBigInt64: true,
  int64AsType: "bigint",
  moreTypes: true, // Float32Array & co. round-trip
  mapsAsObjects: true,
} as ConstructorParameters<typeof Packr>[0];
const packr = new Packr(packrOptions);

export const packMsgpack = (value: unknown): Uint8Array => packr.pack(value);
export const unpackMsgpack = (bytes: Uint8Array): unknown => packr.unpack(bytes);

const textDecoder = new TextDecoder("utf-8", { fatal: true });
const textEncoder = new TextEncoder();

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Quote integer literals outside strings whose value is not a safe JS integer,
 * so JSON.parse keeps them exact as decimal strings. Only runs when the text
 * has a run of 16+ digits (cheap native check first).
 */
export const protectBigIntegers = (text: string): string => {
  if (!/\d{16,}/.test(text)) return text;
  let out = "";
  let last = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 92 /* \ */) i += 2;
        else if (d === 34) break;
        else i++;
      }
      i++;
      continue;
    }
    if (c === 45 /* - */ || (c >= 48 && c <= 57)) {
      const start = i;
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d >= 48 && d <= 57) i++;
        else break;
      }
      const next = i < n ? text.charCodeAt(i) : 0;
      const isInteger = next !== 46 /* . */ && next !== 101 /* e */ && next !== 69 /* E */;
      const digits = text.charCodeAt(start) === 45 ? i - start - 1 : i - start;
      if (isInteger && digits >= 16) {
        const literal = text.slice(start, i);
        const big = BigInt(literal);
        if (big > MAX_SAFE || big < -MAX_SAFE) {
          out += text.slice(last, start) + `"${literal}"`;
          last = i;
        }
      }
      // skip the rest of a float token
      while (i < n) {
        const d = text.charCodeAt(i);
        if ((d >= 48 && d <= 57) || d === 46 || d === 101 || d === 69 || d === 43 || d === 45) i++;
        else break;
      }
      continue;
    }
    i++;
  }
  return last === 0 ? text : out + text.slice(last);
};

export class DecodeError extends Error {}

export const decodeJson = (bytes: Uint8Array): unknown => {
  let text: string;
  try {
    text = textDecoder.decode(bytes);
  } catch {
    throw new DecodeError("body is not valid UTF-8");
  }
  if (text.trim() === "") return {};
  try {
    return JSON.parse(protectBigIntegers(text));
  } catch (e) {
    throw new DecodeError(`body is not valid JSON: ${(e as Error).message}`);
  }
};

// A per-process random marker: a user's own string can never be mistaken for a placeholder.
const BIG_NONCE = randomBytes(8).toString("hex");
const BIG_MARK = `\u0000int64:${BIG_NONCE}:`;
const BIG_MARK_RE = new RegExp(`"\\\\u0000int64:${BIG_NONCE}:(-?\\d+)"`, "g");

export const encodeJson = (value: unknown, allowInt64 = false): Uint8Array => {
  let sawBig = false;
  const text = JSON.stringify(value, (_k, v) => {
    if (typeof v === "bigint") {
      if (allowInt64) {
        sawBig = true;
        return BIG_MARK + v.toString();
      }
      return v.toString();
    }
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number>);
    return v;
  });
  return textEncoder.encode(sawBig ? text.replace(BIG_MARK_RE, "$1") : text);
};

export const decodeBody = (bytes: Uint8Array, encoding: Encoding): unknown => {
  if (encoding === "json") return decodeJson(bytes);
  if (bytes.length === 0) return {};
  try {
    return unpackMsgpack(bytes);
  } catch (e) {
    throw new DecodeError(`body is not valid msgpack: ${(e as Error).message}`);
  }
};

export const encodeBody = (value: unknown, encoding: Encoding, allowInt64 = false): Uint8Array =>
  encoding === "json" ? encodeJson(value, allowInt64) : packMsgpack(value);
