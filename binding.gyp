{
  "targets": [
    {
      "target_name": "natsvec_heap",
      "sources": ["native/heap.c"]
    }
  ]
}
