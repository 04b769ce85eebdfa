/*
 * natsvec's one native helper: give freed heap memory back to the OS.
 *
 * glibc keeps memory a program frees inside its heaps (arenas) for reuse; it
 * returns only a free stretch at the very top of a heap. After a query node
 * streams hundreds of MB of segment and index objects through Node's socket
 * and message buffers, those freed buffers sit scattered in the heaps and
 * stay resident (~250 MiB at 1M x 128). malloc_trim(0) releases every free
 * page of every arena (madvise), without changing how allocation works on
 * hot paths. Called after explicit garbage collections (runtime/gc.ts).
 * Elsewhere than glibc, trim() does nothing and returns false.
 */
#include <node_api.h>
#include <stdbool.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

static napi_value Trim(napi_env env, napi_callback_info info) {
  (void)info;
  bool released = false;
#if defined(__GLIBC__)
  released = malloc_trim(0) == 1;
#endif
  napi_value out;
  napi_get_boolean(env, released, &out);
  return out;
}

static napi_value Supported(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
#if defined(__GLIBC__)
  napi_get_boolean(env, true, &out);
#else
  napi_get_boolean(env, false, &out);
#endif
  return out;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &fn);
  napi_set_named_property(env, exports, "trim", fn);
  napi_create_function(env, "supported", NAPI_AUTO_LENGTH, Supported, NULL, &fn);
  napi_set_named_property(env, exports, "supported", fn);
  return exports;
}

NAPI_MODULE_INIT() { return Init(env, exports); }
