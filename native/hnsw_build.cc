/*
 * Multi-threaded HNSW construction for natsvec (engine/index/hnsw.ts).
 *
 * hnswlib-node builds an index one addPoint call at a time on the calling
 * thread. hnswlib's addPoint is safe to call concurrently for distinct labels
 * (per-element link locks plus a global lock for entry-point changes), which
 * is how its Python bindings build in parallel. This addon does the same over
 * a Float32Array of rows, then writes hnswlib's own file, which hnswlib-node's
 * readIndexSync loads: it is compiled against hnswlib-node's copy of the
 * hnswlib headers (binding.gyp) with the same flags, so the file format, the
 * distance kernels and the "cosine" normalization match bit for bit. With one
 * thread the result is byte-identical to an addPoint loop in hnswlib-node.
 *
 * JavaScript API (a builder is an opaque external; labels are row numbers):
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
#include <node_api.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <numeric>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <vector>

// hnswlib's headers as shipped, minus their warnings (unsigned "< 0" checks, unused CPU-feature probes).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wunused-function"
#include "hnswlib.h"
#pragma GCC diagnostic pop

namespace {

struct Builder {
  // Declared before the index: destroyed after it (the index keeps pointers into the space).
  std::unique_ptr<hnswlib::SpaceInterface<float>> space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> index;
  size_t dim = 0;
  bool normalize = false;
};

/* hnswlib-node's normalizePoint (src/addon.cc), the same float operations in the same order. */
void normalizePoint(std::vector<float>& vec) {
  const size_t dim = vec.size();
  const float norm = std::sqrt(std::fabs(std::inner_product(vec.begin(), vec.end(), vec.begin(), 0.0f)));
  if (norm > 0.0f) {
    for (size_t i = 0; i < dim; i++) vec[i] /= norm;
  }
}

/* A JavaScript exception carrying `message`; the napi functions below return nullptr after it. */
struct JsError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void check(napi_env env, napi_status status, const char* what) {
  if (status != napi_ok) throw JsError(std::string("natsvec_hnsw: ") + what);
}

std::vector<napi_value> args(napi_env env, napi_callback_info info, size_t expected) {
  size_t argc = expected;
  std::vector<napi_value> argv(expected);
  check(env, napi_get_cb_info(env, info, &argc, argv.data(), nullptr, nullptr), "cannot read arguments");
  if (argc < expected) throw JsError("natsvec_hnsw: expected " + std::to_string(expected) + " arguments, got " + std::to_string(argc));
  return argv;
}

/* A non-negative integer argument (JavaScript numbers are doubles). */
size_t sizeArg(napi_env env, napi_value v, const char* name) {
  double d = 0;
  if (napi_get_value_double(env, v, &d) != napi_ok || !std::isfinite(d) || d < 0 || d != std::floor(d) || d > 9007199254740991.0)
    throw JsError(std::string("natsvec_hnsw: ") + name + " must be a non-negative integer");
  return static_cast<size_t>(d);
}

std::string stringArg(napi_env env, napi_value v, const char* name) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &len) != napi_ok) throw JsError(std::string("natsvec_hnsw: ") + name + " must be a string");
  std::string s(len, '\0');
  check(env, napi_get_value_string_utf8(env, v, s.data(), len + 1, &len), "cannot read a string");
  return s;
}

Builder* builderArg(napi_env env, napi_value v) {
  void* data = nullptr;
  napi_valuetype type;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_external || napi_get_value_external(env, v, &data) != napi_ok || data == nullptr)
    throw JsError("natsvec_hnsw: not a builder");
  return static_cast<Builder*>(data);
}

hnswlib::HierarchicalNSW<float>& liveIndex(Builder* b) {
  if (!b->index) throw JsError("natsvec_hnsw: the builder was released");
  return *b->index;
}

/* Runs `body`, turning any C++ exception into a pending JavaScript error (nullptr result). */
template <typename F>
napi_value guarded(napi_env env, F&& body) {
  try {
    return body();
  } catch (const JsError& e) {
    napi_throw_error(env, nullptr, e.what());
  } catch (const std::bad_alloc&) {
    napi_throw_error(env, nullptr, "natsvec_hnsw: out of memory");
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, (std::string("Hnswlib Error: ") + e.what()).c_str());
  }
  return nullptr;
}

napi_value number(napi_env env, double v) {
  napi_value out;
  check(env, napi_create_double(env, v, &out), "cannot create a number");
  return out;
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
    // As hnswlib-node: "cosine" is the inner-product space over normalized points.
    if (space == "l2") b->space = std::make_unique<hnswlib::L2Space>(dim);
    else if (space == "ip" || space == "cosine") b->space = std::make_unique<hnswlib::InnerProductSpace>(dim);
    else throw JsError("natsvec_hnsw: unknown space '" + space + "'");
    b->normalize = space == "cosine";
    // hnswlib-node's initIndex passes its arguments as uint32 (seed included) and allowReplaceDeleted = false.
    b->index = std::make_unique<hnswlib::HierarchicalNSW<float>>(b->space.get(), maxElements, M, efConstruction,
                                                                  static_cast<size_t>(static_cast<uint32_t>(seed)), false);
    napi_value out;
    check(env, napi_create_external(env, b.get(), finalizeBuilder, nullptr, &out), "cannot create the builder");
    b.release();
    return out;
  });
}

napi_value Add(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    auto argv = args(env, info, 5);
    Builder* b = builderArg(env, argv[0]);
    auto& index = liveIndex(b);
    bool isTyped = false;
    check(env, napi_is_typedarray(env, argv[1], &isTyped), "cannot inspect vectors");
    if (!isTyped) throw JsError("natsvec_hnsw: vectors must be a Float32Array");
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    check(env, napi_get_typedarray_info(env, argv[1], &type, &length, &data, nullptr, nullptr), "cannot read vectors");
    if (type != napi_float32_array) throw JsError("natsvec_hnsw: vectors must be a Float32Array");
    const size_t from = sizeArg(env, argv[2], "from");
    const size_t to = sizeArg(env, argv[3], "to");
    size_t threads = std::min<size_t>(sizeArg(env, argv[4], "threads"), 256);
    const size_t dim = b->dim;
    if (from > to || to > length / dim) throw JsError("natsvec_hnsw: rows [" + std::to_string(from) + ", " + std::to_string(to) + ") out of range");
    if (to > 0xffffffffu) throw JsError("natsvec_hnsw: row numbers must fit in 32 bits");
    const float* rows = static_cast<const float*>(data);
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
    index.saveIndex(path);
    // saveIndex does not report write errors (a full disk): compare what landed with what it meant to write.
    struct stat st;
    const size_t expected = index.indexFileSize();
    if (stat(path.c_str(), &st) != 0 || static_cast<size_t>(st.st_size) != expected)
      throw JsError("natsvec_hnsw: writing " + path + " failed (expected " + std::to_string(expected) + " bytes)");
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
  const struct {
    const char* name;
    napi_callback fn;
  } fns[] = {{"create", Create}, {"add", Add}, {"save", Save}, {"release", Release}};
  for (const auto& f : fns) {
    napi_value fn;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.fn, nullptr, &fn);
    napi_set_named_property(env, exports, f.name, fn);
  }
  return exports;
}
