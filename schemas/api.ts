/**
 * Public request bodies (Milvus REST v2 names) as Effect Schemas. Structure
 * and types are checked here; meaning (does the field exist, is the dim right)
 * is checked by the proxy against the collection's schema.
 */
import { Schema as S } from "effect";

/** Numbers may arrive as strings in Milvus REST bodies ("dim": "128"). */
const NumberLike = S.Union(S.Number, S.NumberFromString);
const IntLike = NumberLike.pipe(S.int());
const BoolLike = S.Union(S.Boolean, S.transform(S.Literal("true", "false", "True", "False"), S.Boolean, {
  strict: true,
  decode: (s) => s.toLowerCase() === "true",
  encode: (b) => (b ? "true" : "false"),
}));
const Int64Like = S.Union(S.BigIntFromSelf, S.Number, S.String);
const Name = S.String;
const ParamValue = S.Union(S.String, S.Number, S.Boolean);
const Params = S.Record({ key: S.String, value: ParamValue });

const Db = { dbName: S.optional(Name) };
const Coll = { ...Db, collectionName: Name };

export const DatabaseName = S.Struct({ dbName: Name, properties: S.optional(S.Record({ key: S.String, value: S.Unknown })) });
export const DatabaseOnly = S.Struct(Db);

export const FieldSpec = S.Struct({
  fieldName: Name,
  dataType: S.String,
  isPrimary: S.optional(BoolLike),
  isPartitionKey: S.optional(BoolLike),
  isClusteringKey: S.optional(BoolLike),
  autoId: S.optional(BoolLike),
  elementDataType: S.optional(S.String),
  elementTypeParams: S.optional(S.Record({ key: S.String, value: ParamValue })),
  nullable: S.optional(BoolLike),
  defaultValue: S.optional(S.Unknown),
  description: S.optional(S.String),
});
export type FieldSpec = typeof FieldSpec.Type;

export const IndexParamSpec = S.Struct({
  fieldName: Name,
  indexName: S.optional(Name),
  metricType: S.optional(S.String),
  indexType: S.optional(S.String),
  params: S.optional(Params),
});
export type IndexParamSpec = typeof IndexParamSpec.Type;

export const CreateCollection = S.Struct({
  ...Coll,
  description: S.optional(S.String),
  dimension: S.optional(IntLike),
  metricType: S.optional(S.String),
  idType: S.optional(S.String),
  autoID: S.optional(BoolLike),
  autoId: S.optional(BoolLike),
  primaryFieldName: S.optional(Name),
  vectorFieldName: S.optional(Name),
  schema: S.optional(
    S.Struct({
      autoId: S.optional(BoolLike),
      autoID: S.optional(BoolLike),
      enableDynamicField: S.optional(BoolLike),
      description: S.optional(S.String),
      fields: S.Array(FieldSpec),
    }),
  ),
  indexParams: S.optional(S.Array(IndexParamSpec)),
  params: S.optional(S.Record({ key: S.String, value: ParamValue })),
});
export type CreateCollection = typeof CreateCollection.Type;

export const CollectionOnly = S.Struct(Coll);
export const RenameCollection = S.Struct({ ...Coll, newCollectionName: Name, newDbName: S.optional(Name) });
export const AlterCollectionProperties = S.Struct({ ...Coll, properties: S.Record({ key: S.String, value: ParamValue }) });

export const PartitionRequest = S.Struct({ ...Coll, partitionName: Name });
export const PartitionsRequest = S.Struct({ ...Coll, partitionNames: S.optional(S.Array(Name)) });

export const AliasRequest = S.Struct({ ...Db, aliasName: Name, collectionName: S.optional(Name) });
export const AliasWithCollection = S.Struct({ ...Db, aliasName: Name, collectionName: Name });
export const ListAliases = S.Struct({ ...Db, collectionName: S.optional(Name) });

export const ConsistencyLevel = S.Literal("Strong", "Bounded", "Session", "Eventually");

const ReadCommon = {
  ...Coll,
  partitionNames: S.optional(S.Array(Name)),
  outputFields: S.optional(S.Array(S.String)),
  consistencyLevel: S.optional(ConsistencyLevel),
  guaranteeTs: S.optional(Int64Like),
};

/** `data` is rows (Milvus REST v2); `columns` is natsvec's columnar form of the same rows (engine/rows.ts `ColumnarRows`). */
export const InsertRequest = S.Struct({ ...Coll, data: S.Unknown, columns: S.optional(S.Unknown), partitionName: S.optional(Name) });
export const DeleteRequest = S.Struct({
  ...Coll,
  filter: S.optional(S.String),
  ids: S.optional(S.Array(Int64Like)),
  partitionName: S.optional(Name),
  exprParams: S.optional(S.Record({ key: S.String, value: S.Unknown })),
});
export const GetRequest = S.Struct({ ...ReadCommon, id: S.Union(Int64Like, S.Array(Int64Like)) });
export const QueryRequest = S.Struct({
  ...ReadCommon,
  filter: S.optional(S.String),
  exprParams: S.optional(S.Record({ key: S.String, value: S.Unknown })),
  limit: S.optional(IntLike),
  offset: S.optional(IntLike),
});
export const SearchRequest = S.Struct({
  ...ReadCommon,
  data: S.Array(S.Unknown),
  annsField: S.optional(Name),
  filter: S.optional(S.String),
  exprParams: S.optional(S.Record({ key: S.String, value: S.Unknown })),
  limit: S.optional(IntLike),
  offset: S.optional(IntLike),
  groupingField: S.optional(Name),
  searchParams: S.optional(
    S.Struct({
      metricType: S.optional(S.String),
      params: S.optional(S.Record({ key: S.String, value: S.Unknown })),
    }),
  ),
});
export type SearchRequest = typeof SearchRequest.Type;
export type QueryRequest = typeof QueryRequest.Type;

export const CreateIndexRequest = S.Struct({ ...Coll, indexParams: S.Array(IndexParamSpec) });
export const IndexRequest = S.Struct({ ...Coll, indexName: Name });

const SubSearch = S.Struct({
  data: S.Array(S.Unknown),
  annsField: S.optional(Name),
  filter: S.optional(S.String),
  exprParams: S.optional(S.Record({ key: S.String, value: S.Unknown })),
  limit: S.optional(IntLike),
  /** Milvus sends index params as `params: {params: {...}}` (or flat). */
  params: S.optional(S.Record({ key: S.String, value: S.Unknown })),
  searchParams: S.optional(S.Struct({ metricType: S.optional(S.String), params: S.optional(S.Record({ key: S.String, value: S.Unknown })) })),
});
export const HybridSearchRequest = S.Struct({
  ...ReadCommon,
  search: S.Array(SubSearch),
  rerank: S.optional(S.Unknown),
  limit: S.optional(IntLike),
  offset: S.optional(IntLike),
});
