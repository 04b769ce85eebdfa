/*
 * natsvec's vector kernels for the insert path: loops over every float of a batch that V8 runs
 * element by element (~2-3 ns a float, ~0.3 ms each per 1000 x 128 batch) and C runs vectorized.
 * engine/kernels.ts has the same loops in JavaScript for when this addon is missing; both give the
 * same results bit for bit (tested).
 *
 *  firstNonFinite(v: Float32Array) -> index of the first NaN or +-Infinity, or -1
 *  inverseNorms(v: Float32Array, dim, out: Float64Array, at) -> out[at + r] = 1 / |row r| (0 for a
 *      zero row), summing squares in double over four lanes (j mod 4) exactly as engine/distance.ts's
 *      dot does
 */
#include <math.h>
#include <node_api.h>
#include <stdint.h>
#include <string.h>

static int typed(napi_env env, napi_value v, napi_typedarray_type want, void** data, size_t* length) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, length, data, &ab, &offset) != napi_ok) return 0;
  return type == want;
}

static napi_value fail(napi_env env, const char* message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

static napi_value FirstNonFinite(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return fail(env, "firstNonFinite(Float32Array)");
  void* data;
  size_t n;
  if (!typed(env, argv[0], napi_float32_array, &data, &n)) return fail(env, "firstNonFinite expects a Float32Array");
  const uint32_t* w = (const uint32_t*)data;
  int64_t found = -1;
  /* Blocks of 1024 reduced with OR (vectorizes), then the first bad one scanned. */
  for (size_t b = 0; b < n && found < 0; b += 1024) {
    size_t e = b + 1024 < n ? b + 1024 : n;
    uint32_t any = 0;
    for (size_t i = b; i < e; i++) any |= (uint32_t)((w[i] & 0x7f800000u) == 0x7f800000u);
    if (any)
      for (size_t i = b; i < e; i++)
        if ((w[i] & 0x7f800000u) == 0x7f800000u) {
          found = (int64_t)i;
          break;
        }
  }
  napi_value out;
  napi_create_int64(env, found, &out);
  return out;
}

static napi_value InverseNorms(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) return fail(env, "inverseNorms(Float32Array, dim, Float64Array, at)");
  void *src, *dst;
  size_t n, m;
  int64_t dim, at;
  if (!typed(env, argv[0], napi_float32_array, &src, &n)) return fail(env, "inverseNorms expects a Float32Array");
  if (!typed(env, argv[2], napi_float64_array, &dst, &m)) return fail(env, "inverseNorms writes a Float64Array");
  if (napi_get_value_int64(env, argv[1], &dim) != napi_ok || dim <= 0 || n % (size_t)dim != 0) return fail(env, "inverseNorms: dim must divide the vector data");
  if (napi_get_value_int64(env, argv[3], &at) != napi_ok || at < 0 || (size_t)at + n / (size_t)dim > m) return fail(env, "inverseNorms: output too short");
  const float* v = (const float*)src;
  double* out = (double*)dst + at;
  size_t rows = n / (size_t)dim, d = (size_t)dim;
  for (size_t r = 0; r < rows; r++) {
    const float* x = v + r * d;
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    size_t j = 0;
    for (; j + 3 < d; j += 4) {
      double x0 = x[j], x1 = x[j + 1], x2 = x[j + 2], x3 = x[j + 3];
      a0 += x0 * x0;
      a1 += x1 * x1;
      a2 += x2 * x2;
      a3 += x3 * x3;
    }
    for (; j < d; j++) a0 += (double)x[j] * (double)x[j];
    double sq = a0 + a1 + a2 + a3;
    out[r] = sq > 0 ? 1 / sqrt(sq) : 0;
  }
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "firstNonFinite", NAPI_AUTO_LENGTH, FirstNonFinite, NULL, &fn);
  napi_set_named_property(env, exports, "firstNonFinite", fn);
  napi_create_function(env, "inverseNorms", NAPI_AUTO_LENGTH, InverseNorms, NULL, &fn);
  napi_set_named_property(env, exports, "inverseNorms", fn);
  return exports;
}

NAPI_MODULE_INIT() { return Init(env, exports); }
