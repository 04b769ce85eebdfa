import { decodeRequest } from "/work/main/runtime/validate.ts";
import * as Api from "/work/main/schemas/api.ts";
for (const b of [{collectionName:"x"}, {data:[]}, {collectionName: 5, data: []}, {collectionName:"x", data: undefined}]) {
  try { console.log(decodeRequest(Api.InsertRequest, b)); } catch (e: any) { console.log(e.code, e.message); }
}
try { console.log(decodeRequest(Api.SearchRequest, {collectionName:"x", data:[[1]], limit: -1})); } catch (e: any) { console.log(e.code, e.message); }
import { Packr } from "msgpackr";
const p = new Packr({useRecords:false, moreTypes:true, useBigInt64:true} as any);
for (const g of [[0xc1], [0x85], [0xff, 0x00, 0x13]]) { try { console.log(p.unpack(Buffer.from(g))); } catch (e: any) { console.log("err", e.message); } }
