/**
 * Shard routing: hash(pk) % shardsNum. The hash must never change once data
 * is written (it decides which WAL a row lives in), so it is spelled out
 * here: FNV-1a 32-bit over the key's bytes (int64 little-endian, VarChar UTF-8).
 */
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

const int64Bytes = new DataView(new ArrayBuffer(8));
const utf8 = new TextEncoder();

export const hashPk = (pk: bigint | string): number => {
  let h = FNV_OFFSET;
  if (typeof pk === "bigint") {
    int64Bytes.setBigInt64(0, pk, true);
    for (let i = 0; i < 8; i++) h = Math.imul(h ^ int64Bytes.getUint8(i), FNV_PRIME);
  } else {
    const b = utf8.encode(pk);
    for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, FNV_PRIME);
  }
  return h >>> 0;
};

export const shardOf = (pk: bigint | string, shardsNum: number): number => (shardsNum <= 1 ? 0 : hashPk(pk) % shardsNum);
