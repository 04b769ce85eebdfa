{
  "targets": [
    {
      "target_name": "natsvec_heap",
      "sources": ["native/heap.c"]
    },
    {
      # Vector kernels of the insert path (finite check, inverse norms): plain C, no -ffast-math, so
      # results match engine/kernels.ts's JavaScript loops bit for bit.
      "target_name": "natsvec_kernels",
      "sources": ["native/kernels.c"],
      "libraries": ["-lm"]
    },
    {
      # Multi-threaded HNSW builds (native/hnsw_build.cc) and read-only loaded indexes for searching
      # (native/hnsw_search.cc; helpers both share in native/hnsw_napi.h), compiled against hnswlib-node's own copy of
      # the hnswlib headers with the flags hnswlib-node's addon uses (node-gyp's defaults: -O3, gnu++17;
      # exceptions on, no -march: SSE kernels only, like hnswlib-node), so the files it writes and the
      # distances it computes match hnswlib-node's exactly.
      "target_name": "natsvec_hnsw",
      "sources": ["native/hnsw_build.cc", "native/hnsw_search.cc"],
      "include_dirs": ["node_modules/hnswlib-node/src/hnswlib"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "ldflags": ["-pthread"],
      "conditions": [
        ["OS=='mac'", {
          "xcode_settings": {
            "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
            "CLANG_CXX_LANGUAGE_STANDARD": "gnu++17"
          }
        }]
      ]
    }
  ]
}
