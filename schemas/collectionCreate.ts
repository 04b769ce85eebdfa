/**
 * `collections/create` in both Milvus forms — quick setup (`dimension`) and
 * custom `schema` + `indexParams` — normalized into the stored schema.
 * Everything wrong is reported as InvalidParameter naming the field.
 */
import {
  DataTypes,
  DYNAMIC_FIELD,
  MAX_ARRAY_CAPACITY,
  MAX_DIM,
  MAX_SHARDS,
  MAX_VARCHAR_LENGTH,
  MetricTypes,
  MIN_DIM,
  ScalarTypes,
  type CollectionSchema,
  type DataType,
  type FieldSchema,
  type IndexDefinition,
  type MetricType,
  type ScalarType,
  type ScalarValue,
} from "./collection.ts";
import type { CreateCollection, FieldSpec, IndexParamSpec } from "./api.ts";
import { InvalidParameter } from "./errors.ts";
import { CONSISTENCY_LEVELS, type ConsistencyLevel } from "./meta.ts";

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const MAX_NAME_LENGTH = 255;

/** Milvus's naming rule for databases, collections, partitions, aliases and fields. */
export const checkName = (what: string, name: string): string => {
  if (typeof name !== "string" || name.length === 0) throw new InvalidParameter({ message: `${what} name must not be empty` });
  if (name.length > MAX_NAME_LENGTH)
    throw new InvalidParameter({ message: `${what} name '${name.slice(0, 40)}...' is longer than ${MAX_NAME_LENGTH} characters` });
  if (!NAME_RE.test(name))
    throw new InvalidParameter({
      message: `${what} name '${name}' is invalid: use letters, digits and underscores, starting with a letter or underscore`,
    });
  return name;
};

/** Partition names may also start with '_' like `_default`; same rule. */
export const checkPartitionName = (name: string) => checkName("partition", name);

const bad = (message: string) => new InvalidParameter({ message });

const parseIntParam = (what: string, v: unknown, min: number, max: number): number => {
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max)
    throw bad(`${what} must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
  return n;
};

const parseBoolParam = (what: string, v: unknown): boolean => {
  if (typeof v === "boolean") return v;
  if (typeof v === "string" && /^(true|false)$/i.test(v)) return v.toLowerCase() === "true";
  throw bad(`${what} must be true or false, got ${JSON.stringify(v)}`);
};

const canonicalType = (t: string, what: string): DataType => {
  const found = DataTypes.find((d) => d.toLowerCase() === t.toLowerCase());
  if (!found) {
    if (/^(BinaryVector|Float16Vector|BFloat16Vector|SparseFloatVector|Int8Vector)$/i.test(t))
      throw bad(`${what}: data type ${t} is not supported yet (supported: ${DataTypes.join(", ")})`);
    throw bad(`${what}: unknown data type '${t}' (supported: ${DataTypes.join(", ")})`);
  }
  return found;
};

export const parseMetric = (m: string | undefined, what: string, fallback: MetricType = "COSINE"): MetricType => {
  if (m === undefined || m === "") return fallback;
  const found = MetricTypes.find((x) => x === m.toUpperCase());
  if (!found) throw bad(`${what}: unknown metric type '${m}' (supported: ${MetricTypes.join(", ")})`);
  return found;
};

const INT_RANGES: Partial<Record<ScalarType, [number, number]>> = {
  Int8: [-128, 127],
  Int16: [-32768, 32767],
  Int32: [-2147483648, 2147483647],
};

/** Check and convert a default value to the field's in-memory convention. */
const parseDefault = (f: { name: string; dataType: DataType; maxLength?: number }, v: unknown): ScalarValue => {
  const where = `field '${f.name}': defaultValue`;
  switch (f.dataType) {
    case "Bool":
      if (typeof v !== "boolean") throw bad(`${where} must be a boolean`);
      return v;
    case "Int8":
    case "Int16":
    case "Int32": {
      const [lo, hi] = INT_RANGES[f.dataType]!;
      if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) throw bad(`${where} must be an integer in [${lo}, ${hi}]`);
      return v;
    }
    case "Int64": {
      try {
        if (typeof v === "bigint") return v;
        if ((typeof v === "number" && Number.isSafeInteger(v)) || (typeof v === "string" && /^-?\d+$/.test(v))) return BigInt(v);
      } catch {
        /* fallthrough */
      }
      throw bad(`${where} must be an int64`);
    }
    case "Float":
    case "Double":
      if (typeof v !== "number" || !Number.isFinite(v)) throw bad(`${where} must be a finite number`);
      return v;
    case "VarChar":
      if (typeof v !== "string") throw bad(`${where} must be a string`);
      if (f.maxLength !== undefined && Buffer.byteLength(v) > f.maxLength) throw bad(`${where} is longer than max_length ${f.maxLength}`);
      return v;
    default:
      throw bad(`${where}: default values are supported only on scalar fields`);
  }
};

export interface NormalizedCreate {
  readonly schema: CollectionSchema;
  readonly indexes: IndexDefinition[];
  readonly shardsNum: number;
  readonly consistencyLevel: ConsistencyLevel;
  readonly properties: Record<string, string>;
  readonly description: string;
}

const commonParams = (req: CreateCollection) => {
  const p = req.params ?? {};
  const shardsNum = p.shardsNum === undefined ? 1 : parseIntParam("params.shardsNum", p.shardsNum, 1, MAX_SHARDS);
  const cl = p.consistencyLevel === undefined ? "Strong" : String(p.consistencyLevel);
  const consistencyLevel = CONSISTENCY_LEVELS.find((c) => c.toLowerCase() === cl.toLowerCase());
  if (!consistencyLevel) throw bad(`params.consistencyLevel must be one of ${CONSISTENCY_LEVELS.join(", ")}, got '${cl}'`);
  const properties: Record<string, string> = {};
  for (const [k, v] of Object.entries(p)) if (!["shardsNum", "consistencyLevel", "max_length", "enableDynamicField"].includes(k)) properties[k] = String(v);
  return { shardsNum, consistencyLevel, properties };
};

const quickSetup = (req: CreateCollection): NormalizedCreate => {
  const dim = parseIntParam("dimension", req.dimension, MIN_DIM, MAX_DIM);
  const pkName = checkName("primary field", req.primaryFieldName ?? "id");
  const vecName = checkName("vector field", req.vectorFieldName ?? "vector");
  if (pkName === vecName) throw bad(`primaryFieldName and vectorFieldName must differ (both '${pkName}')`);
  const idType = canonicalType(req.idType ?? "Int64", "idType");
  if (idType !== "Int64" && idType !== "VarChar") throw bad(`idType must be Int64 or VarChar, got '${req.idType}'`);
  const autoId = req.autoID ?? req.autoId ?? false;
  if (autoId && idType !== "Int64") throw bad(`autoID needs idType Int64`);
  const p = req.params ?? {};
  const maxLength = idType === "VarChar" ? parseIntParam("params.max_length", p.max_length ?? 65535, 1, MAX_VARCHAR_LENGTH) : undefined;
  const enableDynamicField = p.enableDynamicField === undefined ? true : parseBoolParam("params.enableDynamicField", p.enableDynamicField);
  const metricType = parseMetric(req.metricType, "metricType");
  const fields: FieldSchema[] = [
    { fieldId: 100, name: pkName, dataType: idType, isPrimary: true, autoId, description: "", nullable: false, isDynamic: false, ...(maxLength ? { maxLength } : {}) },
    { fieldId: 101, name: vecName, dataType: "FloatVector", isPrimary: false, autoId: false, description: "", nullable: false, isDynamic: false, dim },
  ];
  if (enableDynamicField) fields.push(dynamicFieldSchema(102));
  const { shardsNum, consistencyLevel, properties } = commonParams(req);
  return {
    schema: { fields, enableDynamicField, description: req.description ?? "" },
    indexes: [{ indexName: vecName, fieldName: vecName, indexType: "AUTOINDEX", metricType, params: {} }],
    shardsNum,
    consistencyLevel,
    properties,
    description: req.description ?? "",
  };
};

const dynamicFieldSchema = (fieldId: number): FieldSchema => ({
  fieldId,
  name: DYNAMIC_FIELD,
  dataType: "JSON",
  isPrimary: false,
  autoId: false,
  description: "dynamic field",
  nullable: true,
  isDynamic: true,
});

const parseField = (spec: FieldSpec, fieldId: number, schemaAutoId: boolean): FieldSchema => {
  const name = checkName("field", spec.fieldName);
  const where = `field '${name}'`;
  const dataType = canonicalType(spec.dataType, where);
  const tp = spec.elementTypeParams ?? {};
  const isPrimary = spec.isPrimary ?? false;
  const nullable = spec.nullable ?? false;
  if (spec.isPartitionKey) throw bad(`${where}: partition keys are not supported yet`);
  let dim: number | undefined;
  let maxLength: number | undefined;
  let elementType: ScalarType | undefined;
  let maxCapacity: number | undefined;
  if (dataType === "FloatVector") {
    if (tp.dim === undefined) throw bad(`${where}: FloatVector needs elementTypeParams.dim`);
    dim = parseIntParam(`${where}: dim`, tp.dim, MIN_DIM, MAX_DIM);
    if (nullable) throw bad(`${where}: vector fields cannot be nullable`);
  }
  if (dataType === "VarChar") {
    if (tp.max_length === undefined) throw bad(`${where}: VarChar needs elementTypeParams.max_length`);
    maxLength = parseIntParam(`${where}: max_length`, tp.max_length, 1, MAX_VARCHAR_LENGTH);
  }
  if (dataType === "Array") {
    if (!spec.elementDataType) throw bad(`${where}: Array needs elementDataType`);
    const et = canonicalType(spec.elementDataType, `${where}: elementDataType`);
    if (!(ScalarTypes as readonly string[]).includes(et)) throw bad(`${where}: Array elements must be a scalar type, got ${et}`);
    elementType = et as ScalarType;
    if (tp.max_capacity === undefined) throw bad(`${where}: Array needs elementTypeParams.max_capacity`);
    maxCapacity = parseIntParam(`${where}: max_capacity`, tp.max_capacity, 1, MAX_ARRAY_CAPACITY);
    if (elementType === "VarChar") {
      if (tp.max_length === undefined) throw bad(`${where}: Array of VarChar needs elementTypeParams.max_length`);
      maxLength = parseIntParam(`${where}: max_length`, tp.max_length, 1, MAX_VARCHAR_LENGTH);
    }
  }
  let autoId = false;
  if (isPrimary) {
    if (dataType !== "Int64" && dataType !== "VarChar") throw bad(`${where}: a primary key must be Int64 or VarChar`);
    if (nullable) throw bad(`${where}: a primary key cannot be nullable`);
    if (spec.defaultValue !== undefined) throw bad(`${where}: a primary key cannot have a default value`);
    autoId = spec.autoId ?? schemaAutoId;
    if (autoId && dataType !== "Int64") throw bad(`${where}: autoID needs an Int64 primary key`);
  }
  const base = { fieldId, name, dataType, isPrimary, autoId, description: spec.description ?? "", nullable, isDynamic: false };
  const f: FieldSchema = {
    ...base,
    ...(dim !== undefined ? { dim } : {}),
    ...(maxLength !== undefined ? { maxLength } : {}),
    ...(elementType !== undefined ? { elementType } : {}),
    ...(maxCapacity !== undefined ? { maxCapacity } : {}),
  };
  if (spec.defaultValue !== undefined && spec.defaultValue !== null) return { ...f, defaultValue: parseDefault(f, spec.defaultValue) };
  return f;
};

const parseIndexes = (specs: readonly IndexParamSpec[], fields: readonly FieldSchema[]): IndexDefinition[] => {
  const out: IndexDefinition[] = [];
  for (const s of specs) {
    const f = fields.find((x) => x.name === s.fieldName);
    if (!f) throw bad(`indexParams: field '${s.fieldName}' is not in the schema`);
    if (f.dataType !== "FloatVector") throw bad(`indexParams: field '${s.fieldName}' is not a vector field (scalar indexes are not supported yet)`);
    const indexName = s.indexName ?? s.fieldName;
    if (out.some((i) => i.indexName === indexName || i.fieldName === s.fieldName))
      throw bad(`indexParams: more than one index for field '${s.fieldName}'`);
    const indexType = (s.indexType ?? "AUTOINDEX").toUpperCase();
    if (!["AUTOINDEX", "FLAT", "HNSW", "IVF_FLAT", "IVF_SQ8"].includes(indexType))
      throw bad(`indexParams: unknown index type '${s.indexType}' (supported: AUTOINDEX, FLAT, HNSW, IVF_FLAT, IVF_SQ8)`);
    out.push({
      indexName,
      fieldName: s.fieldName,
      indexType,
      metricType: parseMetric(s.metricType, `indexParams for '${s.fieldName}'`),
      params: { ...(s.params ?? {}) },
    });
  }
  return out;
};

const customSchema = (req: CreateCollection): NormalizedCreate => {
  const spec = req.schema!;
  if (spec.fields.length === 0) throw bad("schema.fields must not be empty");
  const schemaAutoId = spec.autoId ?? spec.autoID ?? req.autoID ?? req.autoId ?? false;
  const fields = spec.fields.map((f, i) => parseField(f, 100 + i, schemaAutoId));
  const names = new Set<string>();
  for (const f of fields) {
    if (names.has(f.name)) throw bad(`schema.fields: duplicate field name '${f.name}'`);
    names.add(f.name);
  }
  const pks = fields.filter((f) => f.isPrimary);
  if (pks.length !== 1) throw bad(`schema must have exactly one primary key field (isPrimary: true), found ${pks.length}`);
  if (!fields.some((f) => f.dataType === "FloatVector")) throw bad("schema must have at least one FloatVector field");
  const enableDynamicField = spec.enableDynamicField ?? false;
  if (enableDynamicField) fields.push(dynamicFieldSchema(100 + fields.length));
  const { shardsNum, consistencyLevel, properties } = commonParams(req);
  return {
    schema: { fields, enableDynamicField, description: spec.description ?? req.description ?? "" },
    indexes: parseIndexes(req.indexParams ?? [], fields),
    shardsNum,
    consistencyLevel,
    properties,
    description: req.description ?? spec.description ?? "",
  };
};

export const normalizeCreate = (req: CreateCollection): NormalizedCreate => {
  checkName("collection", req.collectionName);
  if (req.schema && req.dimension !== undefined) throw bad("give either dimension (quick setup) or schema, not both");
  if (req.schema) return customSchema(req);
  if (req.dimension === undefined) throw bad("collections/create needs dimension (quick setup) or schema");
  return quickSetup(req);
};
