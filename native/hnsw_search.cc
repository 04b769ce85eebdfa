/*
 * Read-only loaded HNSW indexes for natsvec's query nodes (engine/index/hnsw.ts).
 *
 * hnswlib's loadIndex prepares a graph for inserts and deletes too: a mutex per element
 * (link_list_locks_, 40 bytes each), a label -> internal id hash map (label_lookup_, ~40 bytes per
 * element) and 65536 label-operation mutexes (2.6 MB). A query node only searches and reads points
 * back, so this loader reads hnswlib's file field by field as loadIndex does, into a HierarchicalNSW
 * made with the space-only constructor (none of those allocated), and maps labels to internal ids
 * through a flat table (4 bytes per element; labels are natsvec row numbers, and a multi-threaded
 * build inserts rows in no fixed order, so label != internal id). What stays per element: the
 * level-0 block (links, point, label), a link-list pointer, the level, the visited-list slot.
 *
 * hnswlib's own search code runs unchanged: search() is hnswlib's searchKnn with ef as an argument
 * (searchKnn reads the ef_ member, which a caller would have to set first) over searchBaseLayerST,
 * which takes no link-list locks. Nothing here writes to the index after open, so any number of
 * threads may search one index at once with different ef (visited lists come from hnswlib's pool,
 * under its own lock). Same file, query, k, ef and filter: the same labels and distances as
 * hnswlib-node's searchKnn ("cosine" normalizes the query with the same float operations).
 *
 * A file is checked before anything reads through it: the header's layout against the space and
 * dimension, every byte present and none left over (as loadIndex's own check), list sizes within
 * capacity, every neighbour an existing element present at that level, the entry point on the top
 * level, and the labels exactly 0..n-1. A bad file throws a JavaScript Error naming the file and
 * the fault; a search never follows a pointer the checks did not cover.
 *
 * JavaScript API, as exports.readOnly (an index is an opaque external; labels are row numbers):
 *   open(space: "l2" | "ip" | "cosine", dim, path) -> index      reads hnswlib's file at `path` (not kept open)
 *   search(index, query: Float32Array, k, ef, allow: Uint8Array | null)
 *       -> { labels: Int32Array, distances: Float32Array }, nearest first (hnswlib's distances);
 *       with `allow`, only labels l with l < allow.length && allow[l] != 0 are returned
 *   getPoint(index, label) -> Float32Array (a copy)
 *   getPoints(index, labels: Int32Array) -> Float32Array (labels.length points, in that order)
 *   count(index) -> elements;  memoryBytes(index) -> bytes allocated for it
 *   save(index, path) -> bytes written: hnswlib's file again, byte for byte what was opened
 *   release(index)      frees the graph now instead of at garbage collection
 */
#include "hnsw_napi.h"

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <queue>
#include <sys/stat.h>

using namespace natsvec;

namespace {

using hnswlib::labeltype;
using hnswlib::linklistsizeint;
using hnswlib::tableint;

/* A file read exactly as laid out: every read is complete or throws, naming the file and the part. */
class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path), file_(std::fopen(path.c_str(), "rb")) {
    if (file_ == nullptr) fail(std::string("cannot open it (") + std::strerror(errno) + ")");
    struct stat st;
    if (fstat(fileno(file_), &st) != 0) fail(std::string("cannot stat it (") + std::strerror(errno) + ")");
    size_ = static_cast<size_t>(st.st_size);
  }
  ~Reader() {
    if (file_ != nullptr) std::fclose(file_);
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  [[noreturn]] void fail(const std::string& what) const { throw JsError("natsvec_hnsw: " + path_ + ": " + what); }

  size_t remaining() const { return size_ - at_; }

  void read(void* out, size_t n, const char* what) {
    if (n > remaining()) fail(std::string("truncated in ") + what + " (" + std::to_string(size_) + " bytes)");
    if (n > 0 && std::fread(out, 1, n, file_) != n) fail(std::string("read error in ") + what);
    at_ += n;
  }

  template <typename T>
  void pod(T& v, const char* what) {
    read(&v, sizeof v, what);
  }

 private:
  std::string path_;
  std::FILE* file_;
  size_t size_ = 0;
  size_t at_ = 0;
};

/* hnswlib's file header, in file order (saveIndex). */
struct Header {
  size_t offsetLevel0, maxElements, count, sizeDataPerElement, labelOffset, offsetData;
  int maxLevel;
  tableint enterpoint;
  size_t maxM, maxM0, M;
  double mult;
  size_t efConstruction;

  void read(Reader& in) {
    in.pod(offsetLevel0, "the header");
    in.pod(maxElements, "the header");
    in.pod(count, "the header");
    in.pod(sizeDataPerElement, "the header");
    in.pod(labelOffset, "the header");
    in.pod(offsetData, "the header");
    in.pod(maxLevel, "the header");
    in.pod(enterpoint, "the header");
    in.pod(maxM, "the header");
    in.pod(maxM0, "the header");
    in.pod(M, "the header");
    in.pod(mult, "the header");
    in.pod(efConstruction, "the header");
  }
};

/* A filter over labels: one byte per label, nonzero = allowed, labels past the end not allowed. */
struct AllowBytes : hnswlib::BaseFilterFunctor {
  const uint8_t* bytes;
  size_t length;
  AllowBytes(const uint8_t* b, size_t n) : bytes(b), length(n) {}
  bool operator()(labeltype label) override { return label < length && bytes[label] != 0; }
};

class ReadOnlyIndex : public hnswlib::HierarchicalNSW<float> {
 public:
  using Base = hnswlib::HierarchicalNSW<float>;
  using Result = std::priority_queue<std::pair<float, labeltype>>;

  /* The space-only constructor allocates nothing; the base destructor frees what load allocated. */
  explicit ReadOnlyIndex(hnswlib::SpaceInterface<float>* space) : Base(space) {}

  /*
   * hnswlib's loadIndex (max_elements_i = 0, allow_replace_deleted = false) minus link_list_locks_,
   * label_op_locks_ and label_lookup_, with the checks described at the top of this file. Members are
   * set as soon as what they describe is allocated, so that clear() frees a partial load.
   */
  void load(const std::string& path, hnswlib::SpaceInterface<float>* space) {
    Reader in(path);
    Header h;
    h.read(in);
    const size_t dataSize = space->get_data_size();
    const size_t linksLevel0 = h.maxM0 * sizeof(tableint) + sizeof(linklistsizeint);
    if (h.offsetLevel0 != 0) in.fail("level-0 offset " + std::to_string(h.offsetLevel0) + " (hnswlib writes 0)");
    if (h.maxM > 65535 || h.maxM0 > 65535) in.fail("link capacities " + std::to_string(h.maxM) + "/" + std::to_string(h.maxM0) + " exceed hnswlib's 16-bit list counts");
    if (h.offsetData != linksLevel0 || h.labelOffset < h.offsetData || h.sizeDataPerElement != h.labelOffset + sizeof(labeltype))
      in.fail("element layout (" + std::to_string(h.offsetData) + ", " + std::to_string(h.labelOffset) + ", " + std::to_string(h.sizeDataPerElement) +
              ") does not match 2M = " + std::to_string(h.maxM0) + " links");
    if (h.labelOffset - h.offsetData != dataSize)
      in.fail("points of " + std::to_string(h.labelOffset - h.offsetData) + " bytes, expected " + std::to_string(dataSize) + " (another dimension?)");
    if (h.count > h.maxElements) in.fail(std::to_string(h.count) + " elements exceed the capacity " + std::to_string(h.maxElements));
    if (h.count > static_cast<size_t>(INT32_MAX)) in.fail(std::to_string(h.count) + " elements: labels must fit in 31 bits");
    if (h.count > in.remaining() / h.sizeDataPerElement)
      in.fail("truncated: " + std::to_string(h.count) + " elements of " + std::to_string(h.sizeDataPerElement) + " bytes do not fit");
    if (h.count > 0 && (h.enterpoint >= h.count || h.maxLevel < 0))
      in.fail("entry point " + std::to_string(h.enterpoint) + " at level " + std::to_string(h.maxLevel) + " out of range");

    offsetLevel0_ = h.offsetLevel0;
    max_elements_ = h.maxElements;  // saveIndex writes it back; nothing else here reads it
    size_data_per_element_ = h.sizeDataPerElement;
    label_offset_ = h.labelOffset;
    offsetData_ = h.offsetData;
    maxlevel_ = h.maxLevel;
    enterpoint_node_ = h.enterpoint;
    maxM_ = h.maxM;
    maxM0_ = h.maxM0;
    M_ = h.M;
    mult_ = h.mult;
    revSize_ = 1.0 / mult_;
    ef_construction_ = h.efConstruction;
    ef_ = 10;
    data_size_ = dataSize;
    fstdistfunc_ = space->get_dist_func();
    dist_func_param_ = space->get_dist_func_param();
    size_links_per_element_ = maxM_ * sizeof(tableint) + sizeof(linklistsizeint);
    size_links_level0_ = linksLevel0;

    const size_t n = h.count;
    data_level0_memory_ = static_cast<char*>(std::malloc(std::max<size_t>(1, n * size_data_per_element_)));
    linkLists_ = static_cast<char**>(std::calloc(std::max<size_t>(1, n), sizeof(char*)));
    if (data_level0_memory_ == nullptr || linkLists_ == nullptr) throw std::bad_alloc();
    element_levels_.assign(n, 0);
    cur_element_count = n;
    in.read(data_level0_memory_, n * size_data_per_element_, "the level-0 elements");

    for (size_t i = 0; i < n; i++) {
      unsigned int size = 0;
      in.pod(size, "the upper-level link lists");
      if (size == 0) continue;
      if (size % size_links_per_element_ != 0 || size / size_links_per_element_ > static_cast<size_t>(maxlevel_))
        in.fail("element " + std::to_string(i) + " has upper-level links of " + std::to_string(size) + " bytes (lists of " +
                std::to_string(size_links_per_element_) + ", top level " + std::to_string(maxlevel_) + ")");
      if (size > in.remaining()) in.fail("truncated in the upper-level link lists");
      linkLists_[i] = static_cast<char*>(std::malloc(size));
      if (linkLists_[i] == nullptr) throw std::bad_alloc();
      element_levels_[i] = static_cast<int>(size / size_links_per_element_);
      upperBytes_ += size;
      in.read(linkLists_[i], size, "the upper-level link lists");
    }
    if (in.remaining() != 0) in.fail(std::to_string(in.remaining()) + " bytes after the last link list");

    checkGraph(in);
    byLabel_.assign(n, UINT32_MAX);
    for (size_t i = 0; i < n; i++) {
      const labeltype label = getExternalLabel(static_cast<tableint>(i));
      if (label >= n) in.fail("label " + std::to_string(label) + " of element " + std::to_string(i) + " is not a row number below " + std::to_string(n));
      if (byLabel_[label] != UINT32_MAX) in.fail("label " + std::to_string(label) + " appears twice");
      byLabel_[label] = static_cast<tableint>(i);
      if (isMarkedDeleted(static_cast<tableint>(i))) num_deleted_ += 1;
    }
    visited_list_pool_.reset(new hnswlib::VisitedListPool(1, static_cast<int>(n)));
  }

  /* hnswlib's searchKnn with ef as an argument (and without its hop counters). */
  Result search(const void* query, size_t k, size_t ef, hnswlib::BaseFilterFunctor* allow) const {
    Result result;
    if (cur_element_count == 0) return result;

    tableint currObj = enterpoint_node_;
    float curdist = fstdistfunc_(query, getDataByInternalId(enterpoint_node_), dist_func_param_);
    for (int level = maxlevel_; level > 0; level--) {
      bool changed = true;
      while (changed) {
        changed = false;
        linklistsizeint* data = get_linklist(currObj, level);
        const int size = getListCount(data);
        const tableint* datal = reinterpret_cast<const tableint*>(data + 1);
        for (int i = 0; i < size; i++) {
          const tableint cand = datal[i];
          const float d = fstdistfunc_(query, getDataByInternalId(cand), dist_func_param_);
          if (d < curdist) {
            curdist = d;
            currObj = cand;
            changed = true;
          }
        }
      }
    }

    const bool bareBoneSearch = !num_deleted_ && !allow;
    auto top = bareBoneSearch ? searchBaseLayerST<true>(currObj, query, std::max(ef, k), allow)
                              : searchBaseLayerST<false>(currObj, query, std::max(ef, k), allow);
    while (top.size() > k) top.pop();
    while (!top.empty()) {
      result.push(std::pair<float, labeltype>(top.top().first, getExternalLabel(top.top().second)));
      top.pop();
    }
    return result;
  }

  /* The internal id of `label`; hnswlib's getDataByLabel refuses missing and deleted labels alike. */
  tableint internalId(size_t label) const {
    if (label >= byLabel_.size() || isMarkedDeleted(byLabel_[label])) throw JsError("Hnswlib Error: Label not found");
    return byLabel_[label];
  }

  /* What load allocated (malloc's own per-block overhead aside). */
  size_t memoryBytes() const {
    const size_t n = cur_element_count;
    return n * size_data_per_element_ + upperBytes_ +
           n * (sizeof(char*) + sizeof(int) + sizeof(tableint) + sizeof(hnswlib::vl_type));  // link-list pointer, level, label table, visited list
  }

 private:
  std::vector<tableint> byLabel_;
  size_t upperBytes_ = 0;

  /* Every list within its capacity, every neighbour an element present on that list's level, the entry point on the top level. */
  void checkGraph(const Reader& in) const {
    const size_t n = cur_element_count;
    auto checkList = [&](size_t i, int level, linklistsizeint* list, size_t capacity) {
      const size_t size = getListCount(list);
      if (size > capacity)
        in.fail("element " + std::to_string(i) + " has " + std::to_string(size) + " links at level " + std::to_string(level) + " (at most " + std::to_string(capacity) + ")");
      const tableint* links = reinterpret_cast<const tableint*>(list + 1);
      for (size_t j = 0; j < size; j++) {
        if (links[j] >= n || element_levels_[links[j]] < level)
          in.fail("element " + std::to_string(i) + " links to " + std::to_string(links[j]) + ", which is not an element at level " + std::to_string(level));
      }
    };
    for (size_t i = 0; i < n; i++) {
      const tableint id = static_cast<tableint>(i);
      checkList(i, 0, get_linklist0(id), maxM0_);
      for (int level = 1; level <= element_levels_[i]; level++) checkList(i, level, get_linklist(id, level), maxM_);
    }
    if (n > 0 && element_levels_[enterpoint_node_] != maxlevel_)
      in.fail("the entry point " + std::to_string(enterpoint_node_) + " is at level " + std::to_string(element_levels_[enterpoint_node_]) + ", not the top level " +
              std::to_string(maxlevel_));
  }
};

struct Loaded {
  // Declared before the index: destroyed after it (the index keeps pointers into the space).
  std::unique_ptr<hnswlib::SpaceInterface<float>> space;
  std::unique_ptr<ReadOnlyIndex> index;
  size_t dim = 0;
  bool normalize = false;
};

const napi_type_tag loadedTag = {0x6e617473766563ull, 0x726561646f6e6cull};  // "natsvec" "readonl"

void finalizeLoaded(napi_env, void* data, void*) { delete static_cast<Loaded*>(data); }

Loaded& loadedArg(napi_env env, napi_value v) { return *static_cast<Loaded*>(externalArg(env, v, loadedTag, "loaded HNSW index")); }

const ReadOnlyIndex& liveIndex(const Loaded& l) {
  if (!l.index) throw JsError("natsvec_hnsw: the index was released");
  return *l.index;
}

napi_value Open(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    auto argv = args(env, info, 3);
    const std::string space = stringArg(env, argv[0], "space");
    const size_t dim = sizeArg(env, argv[1], "dim");
    const std::string path = stringArg(env, argv[2], "path");
    if (dim < 1) throw JsError("natsvec_hnsw: dim must be >= 1");
    auto l = std::make_unique<Loaded>();
    l->dim = dim;
    l->space = makeSpace(space, dim);
    l->normalize = space == "cosine";
    l->index = std::make_unique<ReadOnlyIndex>(l->space.get());
    l->index->load(path, l->space.get());
    return newExternal(env, std::move(l), loadedTag, finalizeLoaded);
  });
}

napi_value Search(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    auto argv = args(env, info, 5);
    const Loaded& l = loadedArg(env, argv[0]);
    const ReadOnlyIndex& index = liveIndex(l);
    const auto query = typedArrayArg<const float>(env, argv[1], napi_float32_array, "query must be a Float32Array");
    if (query.second != l.dim) throw JsError("natsvec_hnsw: query has " + std::to_string(query.second) + " floats, the index " + std::to_string(l.dim));
    const size_t k = sizeArg(env, argv[2], "k");
    const size_t ef = sizeArg(env, argv[3], "ef");
    if (k < 1 || ef < 1) throw JsError("natsvec_hnsw: k and ef must be >= 1");
    napi_valuetype allowType;
    check(env, napi_typeof(env, argv[4], &allowType), "cannot inspect allow");
    std::unique_ptr<AllowBytes> allow;
    if (allowType != napi_null && allowType != napi_undefined) {
      const auto bytes = typedArrayArg<const uint8_t>(env, argv[4], napi_uint8_array, "allow must be a Uint8Array or null");
      allow = std::make_unique<AllowBytes>(bytes.first, bytes.second);
    }
    std::vector<float> q(query.first, query.first + l.dim);
    if (l.normalize) normalizePoint(q);

    auto knn = index.search(q.data(), k, ef, allow.get());
    const size_t n = knn.size();
    int32_t* labels;
    float* distances;
    napi_value labelsOut = newTypedArray(env, napi_int32_array, n, &labels);
    napi_value distancesOut = newTypedArray(env, napi_float32_array, n, &distances);
    for (size_t i = n; i-- > 0; knn.pop()) {  // the queue's top is the farthest: fill from the back, as hnswlib-node does
      distances[i] = knn.top().first;
      labels[i] = static_cast<int32_t>(knn.top().second);
    }
    napi_value out;
    check(env, napi_create_object(env, &out), "cannot create the result");
    check(env, napi_set_named_property(env, out, "labels", labelsOut), "cannot set labels");
    check(env, napi_set_named_property(env, out, "distances", distancesOut), "cannot set distances");
    return out;
  });
}

napi_value GetPoint(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    auto argv = args(env, info, 2);
    const Loaded& l = loadedArg(env, argv[0]);
    const ReadOnlyIndex& index = liveIndex(l);
    const char* point = index.getDataByInternalId(index.internalId(sizeArg(env, argv[1], "label")));
    float* out;
    napi_value result = newTypedArray(env, napi_float32_array, l.dim, &out);
    std::memcpy(out, point, l.dim * sizeof(float));
    return result;
  });
}

napi_value GetPoints(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    auto argv = args(env, info, 2);
    const Loaded& l = loadedArg(env, argv[0]);
    const ReadOnlyIndex& index = liveIndex(l);
    const auto labels = typedArrayArg<const int32_t>(env, argv[1], napi_int32_array, "labels must be an Int32Array");
    std::vector<const char*> points(labels.second);
    for (size_t i = 0; i < labels.second; i++) {
      if (labels.first[i] < 0) throw JsError("Hnswlib Error: Label not found");
      points[i] = index.getDataByInternalId(index.internalId(static_cast<size_t>(labels.first[i])));
    }
    float* out;
    napi_value result = newTypedArray(env, napi_float32_array, labels.second * l.dim, &out);
    for (size_t i = 0; i < points.size(); i++) std::memcpy(out + i * l.dim, points[i], l.dim * sizeof(float));
    return result;
  });
}

napi_value Count(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    auto argv = args(env, info, 1);
    return number(env, static_cast<double>(liveIndex(loadedArg(env, argv[0])).cur_element_count));
  });
}

napi_value MemoryBytes(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    auto argv = args(env, info, 1);
    return number(env, static_cast<double>(liveIndex(loadedArg(env, argv[0])).memoryBytes()));
  });
}

napi_value Save(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    auto argv = args(env, info, 2);
    Loaded& l = loadedArg(env, argv[0]);
    if (!l.index) throw JsError("natsvec_hnsw: the index was released");
    return number(env, static_cast<double>(saveIndexChecked(*l.index, stringArg(env, argv[1], "path"))));
  });
}

napi_value Release(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    auto argv = args(env, info, 1);
    Loaded& l = loadedArg(env, argv[0]);
    l.index.reset();
    l.space.reset();
    return nullptr;
  });
}

}  // namespace

void natsvec::exportReadOnly(napi_env env, napi_value exports) {
  static const NamedFunction fns[] = {{"open", Open},     {"search", Search}, {"getPoint", GetPoint}, {"getPoints", GetPoints},
                                      {"count", Count},   {"memoryBytes", MemoryBytes}, {"save", Save}, {"release", Release}};
  napi_value readOnly;
  if (napi_create_object(env, &readOnly) != napi_ok) return;
  exportFunctions(env, readOnly, fns, sizeof fns / sizeof fns[0]);
  napi_set_named_property(env, exports, "readOnly", readOnly);
}
