/**
 * The collection schema in its normalized, stored form (what rootcoord keeps in
 * KV and every data-plane actor reads). The wire forms of create requests
 * (quick setup and custom schema, Milvus REST v2 names) are decoded into this
 * by `schemas/collectionCreate.ts`.
 *
 * In-memory value conventions used across the engine:
 *   Bool -> boolean; Int8/Int16/Int32/Float/Double -> number; Int64 -> bigint;
 *   VarChar -> string; JSON -> any JSON value; Array -> array of element values
 *   (Int64 elements as bigint); FloatVector -> Float32Array; absent -> null.
 */

export const ScalarTypes = ["Bool", "Int8", "Int16", "Int32", "Int64", "Float", "Double", "VarChar"] as const;
export type ScalarType = (typeof ScalarTypes)[number];
export const DataTypes = [...ScalarTypes, "JSON", "Array", "FloatVector"] as const;
export type DataType = (typeof DataTypes)[number];

export const MetricTypes = ["L2", "IP", "COSINE"] as const;
export type MetricType = (typeof MetricTypes)[number];

export const MIN_DIM = 2;
export const MAX_DIM = 32768;
export const MAX_VARCHAR_LENGTH = 65535;
export const MAX_ARRAY_CAPACITY = 4096;
export const MAX_SHARDS = 16;
/** Milvus's cap on limit + offset for search and query. */
export const MAX_TOPK = 16384;
/** Name of the hidden dynamic field that holds keys not declared in the schema. */
export const DYNAMIC_FIELD = "$meta";
export const DEFAULT_PARTITION = "_default";
export const DEFAULT_DATABASE = "default";

export type ScalarValue = boolean | number | bigint | string;
export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };
export type FieldValue = ScalarValue | JsonValue | ScalarValue[] | Float32Array | null;

export interface FieldSchema {
  readonly fieldId: number;
  readonly name: string;
  readonly dataType: DataType;
  readonly isPrimary: boolean;
  /** Only for an Int64 primary key: ids are allocated by natsvec. */
  readonly autoId: boolean;
  readonly description: string;
  /** FloatVector only. */
  readonly dim?: number;
  /** VarChar, or Array of VarChar. */
  readonly maxLength?: number;
  /** Array only. */
  readonly elementType?: ScalarType;
  /** Array only. */
  readonly maxCapacity?: number;
  readonly nullable: boolean;
  /** Used when a row omits the field (or gives null for a non-nullable field with a default). */
  readonly defaultValue?: ScalarValue;
  /** True for the hidden `$meta` JSON field when the dynamic field is enabled. */
  readonly isDynamic: boolean;
}

export interface CollectionSchema {
  readonly fields: readonly FieldSchema[];
  readonly enableDynamicField: boolean;
  readonly description: string;
}

export interface IndexDefinition {
  readonly indexName: string;
  readonly fieldName: string;
  readonly indexType: string;
  readonly metricType: MetricType;
  readonly params: Readonly<Record<string, string | number | boolean>>;
}

export const primaryField = (schema: CollectionSchema): FieldSchema => {
  const pk = schema.fields.find((f) => f.isPrimary);
  if (!pk) throw new Error("schema has no primary field");
  return pk;
};

export const vectorFields = (schema: CollectionSchema): FieldSchema[] =>
  schema.fields.filter((f) => f.dataType === "FloatVector");

export const fieldByName = (schema: CollectionSchema, name: string): FieldSchema | undefined =>
  schema.fields.find((f) => f.name === name);
