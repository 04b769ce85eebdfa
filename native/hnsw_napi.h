/*
 * What the natsvec_hnsw addon's two halves share (native/hnsw_build.cc: multi-threaded builds;
 * native/hnsw_search.cc: read-only loaded indexes): hnswlib's headers, argument parsing, and the
 * C++-exception-to-JavaScript-error boundary every exported function runs inside.
 */
#pragma once

#include <node_api.h>

#include <cmath>
#include <memory>
#include <new>
#include <numeric>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <vector>

// hnswlib's headers as shipped, minus their warnings (unsigned "< 0" checks, unused CPU-feature probes).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wunused-function"
#include "hnswlib.h"
#pragma GCC diagnostic pop

namespace natsvec {

/* hnswlib-node's normalizePoint (src/addon.cc), the same float operations in the same order. */
inline void normalizePoint(std::vector<float>& vec) {
  const size_t dim = vec.size();
  const float norm = std::sqrt(std::fabs(std::inner_product(vec.begin(), vec.end(), vec.begin(), 0.0f)));
  if (norm > 0.0f) {
    for (size_t i = 0; i < dim; i++) vec[i] /= norm;
  }
}

/* A JavaScript exception carrying `message`; the napi functions return nullptr after it. */
struct JsError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/* hnswlib-node's spaces: "cosine" is the inner-product space over normalized points. */
inline std::unique_ptr<hnswlib::SpaceInterface<float>> makeSpace(const std::string& space, size_t dim) {
  if (space == "l2") return std::make_unique<hnswlib::L2Space>(dim);
  if (space == "ip" || space == "cosine") return std::make_unique<hnswlib::InnerProductSpace>(dim);
  throw JsError("natsvec_hnsw: unknown space '" + space + "'");
}

inline void check(napi_env, napi_status status, const char* what) {
  if (status != napi_ok) throw JsError(std::string("natsvec_hnsw: ") + what);
}

/* The first `expected` arguments; a missing one is an error (an extra one is ignored). */
inline std::vector<napi_value> args(napi_env env, napi_callback_info info, size_t expected) {
  size_t argc = expected;
  std::vector<napi_value> argv(expected);
  check(env, napi_get_cb_info(env, info, &argc, argv.data(), nullptr, nullptr), "cannot read arguments");
  if (argc < expected) throw JsError("natsvec_hnsw: expected " + std::to_string(expected) + " arguments, got " + std::to_string(argc));
  return argv;
}

/* A non-negative integer argument (JavaScript numbers are doubles). */
inline size_t sizeArg(napi_env env, napi_value v, const char* name) {
  double d = 0;
  if (napi_get_value_double(env, v, &d) != napi_ok || !std::isfinite(d) || d < 0 || d != std::floor(d) || d > 9007199254740991.0)
    throw JsError(std::string("natsvec_hnsw: ") + name + " must be a non-negative integer");
  return static_cast<size_t>(d);
}

inline std::string stringArg(napi_env env, napi_value v, const char* name) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &len) != napi_ok) throw JsError(std::string("natsvec_hnsw: ") + name + " must be a string");
  std::string s(len, '\0');
  check(env, napi_get_value_string_utf8(env, v, s.data(), len + 1, &len), "cannot read a string");
  return s;
}

/* A typed array argument of `want` type: its elements and their count. */
template <typename T>
inline std::pair<T*, size_t> typedArrayArg(napi_env env, napi_value v, napi_typedarray_type want, const char* what) {
  bool isTyped = false;
  check(env, napi_is_typedarray(env, v, &isTyped), "cannot inspect an argument");
  napi_typedarray_type type = napi_int8_array;
  size_t length = 0;
  void* data = nullptr;
  if (isTyped) check(env, napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr), "cannot read a typed array");
  if (!isTyped || type != want) throw JsError(std::string("natsvec_hnsw: ") + what);
  return {static_cast<T*>(data), length};
}

/*
 * An external owning `object` (deleted by `finalize` at garbage collection), tagged with `tag` so that
 * externalArg refuses any other kind of external (a builder passed where a loaded index is expected).
 */
template <typename T>
inline napi_value newExternal(napi_env env, std::unique_ptr<T> object, const napi_type_tag& tag, napi_finalize finalize) {
  napi_value out;
  check(env, napi_create_external(env, object.get(), finalize, nullptr, &out), "cannot create an external");
  object.release();  // owned by the external from here on, even if tagging fails
  check(env, napi_type_tag_object(env, out, &tag), "cannot tag an external");
  return out;
}

/* The object behind an external that newExternal made with `tag`, or an error naming `what`. */
inline void* externalArg(napi_env env, napi_value v, const napi_type_tag& tag, const char* what) {
  void* data = nullptr;
  napi_valuetype type;
  bool tagged = false;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_external || napi_check_object_type_tag(env, v, &tag, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, v, &data) != napi_ok || data == nullptr)
    throw JsError(std::string("natsvec_hnsw: not a ") + what);
  return data;
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

inline napi_value number(napi_env env, double v) {
  napi_value out;
  check(env, napi_create_double(env, v, &out), "cannot create a number");
  return out;
}

/* A fresh typed array of `length` elements of T (`type` must match T); `data` points at its elements. */
template <typename T>
inline napi_value newTypedArray(napi_env env, napi_typedarray_type type, size_t length, T** data) {
  napi_value buffer, out;
  void* raw = nullptr;
  check(env, napi_create_arraybuffer(env, length * sizeof(T), &raw, &buffer), "cannot allocate a result");
  check(env, napi_create_typedarray(env, type, length, buffer, 0, &out), "cannot create a typed array");
  *data = static_cast<T*>(raw);
  return out;
}

/* hnswlib's saveIndex, which does not report write errors (a full disk): compares what landed with what it meant to write. */
inline size_t saveIndexChecked(hnswlib::HierarchicalNSW<float>& index, const std::string& path) {
  index.saveIndex(path);
  struct stat st;
  const size_t expected = index.indexFileSize();
  if (stat(path.c_str(), &st) != 0 || static_cast<size_t>(st.st_size) != expected)
    throw JsError("natsvec_hnsw: writing " + path + " failed (expected " + std::to_string(expected) + " bytes)");
  return expected;
}

struct NamedFunction {
  const char* name;
  napi_callback fn;
};

inline void exportFunctions(napi_env env, napi_value exports, const NamedFunction* fns, size_t n) {
  for (size_t i = 0; i < n; i++) {
    napi_value fn;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, nullptr, &fn);
    napi_set_named_property(env, exports, fns[i].name, fn);
  }
}

/* native/hnsw_search.cc's functions, as exports.readOnly = { open, search, getPoint, getPoints, count, memoryBytes, save, release }. */
void exportReadOnly(napi_env env, napi_value exports);

}  // namespace natsvec
