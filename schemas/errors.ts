/**
 * Wire errors. Each is a tagged class with ONE public code (API.md) and a
 * retriable flag; the typed client retries only retriable ones. The table
 * `ERROR_CODES` is checked for unique codes by a unit test.
 */
import { Schema } from "effect";

const fields = { message: Schema.String };

export class CollectionNotFound extends Schema.TaggedError<CollectionNotFound>()("CollectionNotFound", fields) {
  readonly code = 100;
  readonly retriable = false;
}
export class CollectionNotLoaded extends Schema.TaggedError<CollectionNotLoaded>()("CollectionNotLoaded", fields) {
  readonly code = 101;
  readonly retriable = false;
}
export class PartitionNotFound extends Schema.TaggedError<PartitionNotFound>()("PartitionNotFound", fields) {
  readonly code = 200;
  readonly retriable = false;
}
export class PartitionNotLoaded extends Schema.TaggedError<PartitionNotLoaded>()("PartitionNotLoaded", fields) {
  readonly code = 201;
  readonly retriable = false;
}
export class IndexNotFound extends Schema.TaggedError<IndexNotFound>()("IndexNotFound", fields) {
  readonly code = 700;
  readonly retriable = false;
}
export class DatabaseNotFound extends Schema.TaggedError<DatabaseNotFound>()("DatabaseNotFound", fields) {
  readonly code = 800;
  readonly retriable = false;
}
export class InvalidParameter extends Schema.TaggedError<InvalidParameter>()("InvalidParameter", fields) {
  readonly code = 1100;
  readonly retriable = false;
}
export class NotAuthenticated extends Schema.TaggedError<NotAuthenticated>()("NotAuthenticated", fields) {
  readonly code = 1400;
  readonly retriable = false;
}
export class NotPermitted extends Schema.TaggedError<NotPermitted>()("NotPermitted", fields) {
  readonly code = 1401;
  readonly retriable = false;
}
export class AliasNotFound extends Schema.TaggedError<AliasNotFound>()("AliasNotFound", fields) {
  readonly code = 1600;
  readonly retriable = false;
}
export class MalformedBody extends Schema.TaggedError<MalformedBody>()("MalformedBody", fields) {
  readonly code = 1801;
  readonly retriable = false;
}
export class MissingParameter extends Schema.TaggedError<MissingParameter>()("MissingParameter", fields) {
  readonly code = 1802;
  readonly retriable = false;
}
export class BadInsertData extends Schema.TaggedError<BadInsertData>()("BadInsertData", fields) {
  readonly code = 1804;
  readonly retriable = false;
}
export class PrimaryKeyConflict extends Schema.TaggedError<PrimaryKeyConflict>()("PrimaryKeyConflict", fields) {
  readonly code = 1806;
  readonly retriable = false;
}
/** The request needs something that exists already (collection, partition, alias, database name). */
export class AlreadyExists extends Schema.TaggedError<AlreadyExists>()("AlreadyExists", fields) {
  readonly code = 1807;
  readonly retriable = false;
}
/** The owner of a shard is changing or not up yet; the same request may succeed shortly. */
export class ShardUnavailable extends Schema.TaggedError<ShardUnavailable>()("ShardUnavailable", fields) {
  readonly code = 1900;
  readonly retriable = true;
}
/** A read's guarantee timestamp was not reached before its deadline. */
export class ConsistencyTimeout extends Schema.TaggedError<ConsistencyTimeout>()("ConsistencyTimeout", fields) {
  readonly code = 1901;
  readonly retriable = true;
}
/** Nobody answered on the subject (role not running) or the deadline passed. */
export class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", fields) {
  readonly code = 1902;
  readonly retriable = true;
}
/** The request or its reply is larger than the NATS max payload. */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", fields) {
  readonly code = 1903;
  readonly retriable = false;
}
/**
 * A read named sealed segments by a serving view that changed since (a handoff or rebalance).
 * Not retried by the transport: the proxy redoes the read with a fresh view.
 */
export class StaleView extends Schema.TaggedError<StaleView>()("StaleView", fields) {
  readonly code = 1904;
  readonly retriable = false;
}
export class Unexpected extends Schema.TaggedError<Unexpected>()("Unexpected", fields) {
  readonly code = 65535;
  readonly retriable = false;
}

export const ERROR_CLASSES = [
  CollectionNotFound,
  CollectionNotLoaded,
  PartitionNotFound,
  PartitionNotLoaded,
  IndexNotFound,
  DatabaseNotFound,
  InvalidParameter,
  NotAuthenticated,
  NotPermitted,
  AliasNotFound,
  MalformedBody,
  MissingParameter,
  BadInsertData,
  PrimaryKeyConflict,
  AlreadyExists,
  ShardUnavailable,
  ConsistencyTimeout,
  Unavailable,
  PayloadTooLarge,
  StaleView,
  Unexpected,
] as const;

export type ApiError = InstanceType<(typeof ERROR_CLASSES)[number]>;

export const isApiError = (e: unknown): e is ApiError =>
  typeof e === "object" && e !== null && ERROR_CLASSES.some((C) => e instanceof C);

/** code -> class, built once; a duplicate code throws at module load (and is tested). */
export const ERROR_BY_CODE: ReadonlyMap<number, (typeof ERROR_CLASSES)[number]> = (() => {
  const m = new Map<number, (typeof ERROR_CLASSES)[number]>();
  for (const C of ERROR_CLASSES) {
    const code = new C({ message: "" }).code;
    if (m.has(code)) throw new Error(`duplicate public error code ${code}`);
    m.set(code, C);
  }
  return m;
})();

/** Rebuild a typed error from a wire envelope `{code, message}`. */
export const errorFromCode = (code: number, message: string): ApiError => {
  const C = ERROR_BY_CODE.get(code) ?? Unexpected;
  return new C({ message });
};

/** Anything thrown that is not an ApiError is a bug: code 65535 with its message. */
export const toApiError = (e: unknown): ApiError => {
  if (isApiError(e)) return e;
  const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return new Unexpected({ message });
};
