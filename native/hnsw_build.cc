/*
 * Multi-threaded HNSW construction for natsvec (engine/index/hnsw.ts).
 *
 * hnswlib-node builds an index one addPoint call at a time on the calling
 * thread. hnswlib's addPoint is safe to call concurrently for distinct labels
 * (per-element link locks plus a global lock for entry-point changes), which
 * is how its Python bindings build in parallel. This addon does the same over
 * a Float32Array of rows, then writes hnswlib's own file, which natsvec loads
 * into the same addon's read-only index (native/hnsw_search.cc) or, without
 * it, hnswlib-node's readIndexSync: it is compiled against hnswlib-node's copy
 * of the hnswlib headers (binding.gyp) with the same flags, so the file format,
 * the distance kernels and the "cosine" normalization match bit for bit. With
 * one thread the result is byte-identical to an addPoint loop in hnswlib-node.
 * (Argument parsing and error handling shared with hnsw_search.cc: hnsw_napi.h.)
 *
 * JavaScript API (a builder is an opaque external; labels are row numbers; the read-only index's
 * functions are under exports.readOnly, see hnsw_search.cc):
 *   create(space: "l2" | "ip" | "cosine", dim, maxElements, M, efConstruction, seed) -> builder
 *   add(builder, vectors: Float32Array, from, to, threads) -> max threads seen inserting at once
 *       inserts rows from..to-1 of `vectors` (row i = vectors[i*dim..(i+1)*dim)) under labels from..to-1,
 *       synchronously on `threads` threads (the calling one included, at most 256); returns after all of them joined
 *   save(builder, path) -> bytes written (checked against hnswlib's own size computation)
 *   release(builder)        frees the graph now instead of at garbage collection
 * The caller inserts in chunks of rows, so it can honour stop requests between chunks
 * (engine/index/kernels.ts checkpoint) while no native thread is running.
 *
 * hnswlib's level generator (a std::default_random_engine) is shared by concurrent inserts without a
 * lock, as in its Python bindings: with several threads the level draws, like the insertion order, are
 * not reproducible; with one thread they are.
 */
#include "hnsw_napi.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

using namespace natsvec;

namespace {

struct Builder {
  // Declared before the index: destroyed after it (the index keeps pointers into the space).
  std::unique_ptr<hnswlib::SpaceInterface<float>> space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> index;
  size_t dim = 0;
  bool normalize = false;
};

const napi_type_tag builderTag = {0x6e617473766563ull, 0x6275696c646572ull};  // "natsvec" "builder"

Builder* builderArg(napi_env env, napi_value v) { return static_cast<Builder*>(externalArg(env, v, builderTag, "builder")); }

hnswlib::HierarchicalNSW<float>& liveIndex(Builder* b) {
  if (!b->index) throw JsError("natsvec_hnsw: the builder was released");
  return *b->index;
}

void finalizeBuilder(napi_env, void* data, void*) { delete static_cast<Builder*>(data); }

napi_value Create(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    auto argv = args(env, info, 6);
    const std::string space = stringArg(env, argv[0], "space");
    const size_t dim = sizeArg(env, argv[1], "dim");
    const size_t maxElements = sizeArg(env, argv[2], "maxElements");
    const size_t M = sizeArg(env, argv[3], "M");
    const size_t efConstruction = sizeArg(env, argv[4], "efConstruction");
    const size_t seed = sizeArg(env, argv[5], "seed");
    if (dim < 1) throw JsError("natsvec_hnsw: dim must be >= 1");
    if (maxElements > 0xffffffffu) throw JsError("natsvec_hnsw: maxElements must fit in 32 bits");
    auto b = std::make_unique<Builder>();
    b->dim = dim;
    b->space = makeSpace(space, dim);
    b->normalize = space == "cosine";
    // hnswlib-node's initIndex passes its arguments as uint32 (seed included) and allowReplaceDeleted = false.
    b->index = std::make_unique<hnswlib::HierarchicalNSW<float>>(b->space.get(), maxElements, M, efConstruction,
                                                                  static_cast<size_t>(static_cast<uint32_t>(seed)), false);
    return newExternal(env, std::move(b), builderTag, finalizeBuilder);
  });
}

napi_value Add(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    auto argv = args(env, info, 5);
    Builder* b = builderArg(env, argv[0]);
    auto& index = liveIndex(b);
    const auto vectors = typedArrayArg<const float>(env, argv[1], napi_float32_array, "vectors must be a Float32Array");
    const float* rows = vectors.first;
    const size_t length = vectors.second;
    const size_t from = sizeArg(env, argv[2], "from");
    const size_t to = sizeArg(env, argv[3], "to");
    size_t threads = std::min<size_t>(sizeArg(env, argv[4], "threads"), 256);
    const size_t dim = b->dim;
    if (from > to || to > length / dim) throw JsError("natsvec_hnsw: rows [" + std::to_string(from) + ", " + std::to_string(to) + ") out of range");
    if (to > 0xffffffffu) throw JsError("natsvec_hnsw: row numbers must fit in 32 bits");
    const bool normalize = b->normalize;

    std::atomic<size_t> next{from};
    std::atomic<bool> failed{false};
    std::atomic<int> active{0};
    std::atomic<int> maxActive{0};
    std::exception_ptr error;
    std::mutex errorLock;
    // Each thread takes the next row until none is left (or one failed); `active` counts threads inside addPoint.
    auto worker = [&]() {
      try {
        std::vector<float> buf(dim);
        for (;;) {
          const size_t row = next.fetch_add(1);
          if (row >= to || failed.load(std::memory_order_relaxed)) break;
          const float* point = rows + row * dim;
          if (normalize) {
            std::memcpy(buf.data(), point, dim * sizeof(float));
            normalizePoint(buf);
            point = buf.data();
          }
          struct Inside {
            std::atomic<int>& count;
            const int now;
            explicit Inside(std::atomic<int>& c) : count(c), now(c.fetch_add(1) + 1) {}
            ~Inside() { count.fetch_sub(1); }
          } inside(active);
          for (int seen = maxActive.load(); inside.now > seen && !maxActive.compare_exchange_weak(seen, inside.now);) {
          }
          index.addPoint(point, static_cast<hnswlib::labeltype>(row), false);
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(errorLock);
        if (!error) error = std::current_exception();
        failed = true;
      }
    };

    // As hnswlib's Python bindings: the first point of an empty graph goes in alone (it becomes the entry point).
    if (from < to && index.getCurrentElementCount() == 0) {
      const size_t first = next.load();
      next = first + 1;
      std::vector<float> buf(rows + first * dim, rows + (first + 1) * dim);
      if (normalize) normalizePoint(buf);
      index.addPoint(buf.data(), static_cast<hnswlib::labeltype>(first), false);
      maxActive = 1;
    }
    const size_t remaining = to - std::min(to, next.load());
    threads = std::max<size_t>(1, std::min(threads, remaining));
    std::vector<std::thread> pool;
    try {
      for (size_t t = 1; t < threads; t++) pool.emplace_back(worker);
    } catch (...) {
      // Could not start a thread (resource limits): the ones started and the calling thread finish the rows.
    }
    worker();
    for (auto& t : pool) t.join();
    if (error) std::rethrow_exception(error);
    return number(env, maxActive.load());
  });
}

napi_value Save(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    auto argv = args(env, info, 2);
    auto& index = liveIndex(builderArg(env, argv[0]));
    const std::string path = stringArg(env, argv[1], "path");
    const size_t expected = saveIndexChecked(index, path);
    return number(env, static_cast<double>(expected));
  });
}

napi_value Release(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    auto argv = args(env, info, 1);
    Builder* b = builderArg(env, argv[0]);
    b->index.reset();
    b->space.reset();
    return nullptr;
  });
}

}  // namespace

NAPI_MODULE_INIT() {
  static const NamedFunction fns[] = {{"create", Create}, {"add", Add}, {"save", Save}, {"release", Release}};
  exportFunctions(env, exports, fns, sizeof fns / sizeof fns[0]);
  exportReadOnly(env, exports);
  return exports;
}
