/*
 * natsvec's process-level native helpers: give freed heap memory back to the OS, and
 * run a background thread behind the others (lowerThreadPriority, below).
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
#if defined(__linux__)
#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
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

/*
 * lowerThreadPriority(n): raise the calling thread's nice value by n (at most 19). Linux keeps a
 * nice value per thread and threads inherit their creator's, so a worker thread that calls this
 * first runs, with every thread it starts, behind the process's other threads whenever the CPUs
 * are contended (an index build behind inserts and searches). Raising nice needs no privilege.
 * Returns the thread's new nice value, or null where this is not supported.
 */
static napi_value LowerThreadPriority(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_value out;
  napi_get_null(env, &out);
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return out;
  int32_t by = 0;
  if (napi_get_value_int32(env, argv[0], &by) != napi_ok || by < 0) return out;
#if defined(__linux__)
  id_t tid = (id_t)syscall(SYS_gettid);
  errno = 0;
  int current = getpriority(PRIO_PROCESS, tid);
  if (current == -1 && errno != 0) return out;
  int next = current + by > 19 ? 19 : current + by;
  if (setpriority(PRIO_PROCESS, tid, next) != 0) return out;
  napi_create_int32(env, next, &out);
#endif
  return out;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &fn);
  napi_set_named_property(env, exports, "trim", fn);
  napi_create_function(env, "supported", NAPI_AUTO_LENGTH, Supported, NULL, &fn);
  napi_set_named_property(env, exports, "supported", fn);
  napi_create_function(env, "lowerThreadPriority", NAPI_AUTO_LENGTH, LowerThreadPriority, NULL, &fn);
  napi_set_named_property(env, exports, "lowerThreadPriority", fn);
  return exports;
}

NAPI_MODULE_INIT() { return Init(env, exports); }
