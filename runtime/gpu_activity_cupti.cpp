// The GPU activity recorder on CUPTI's activity API (see gpu_activity.hpp).
#include <cupti.h>

#include <cstdlib>
#include <mutex>
#include <string>

#include "runtime/device_memory.hpp"
#include "runtime/error.hpp"
#include "runtime/gpu_activity.hpp"

namespace ratrain {
namespace {

bool cupti_ok(CUptiResult result) { return result == CUPTI_SUCCESS; }
std::string cupti_describe(CUptiResult result) {
  const char* text = nullptr;
  cuptiGetResultString(result, &text);
  return text ? text : "unknown CUPTI error";
}
#define RT_CHECK_CUPTI(call) \
  RT_CHECK_WITH_TEXT("CUPTI call failed", call, #call, cupti_ok, cupti_describe)

constexpr std::size_t kBufferBytes = std::size_t{8} << 20;  // ~50k kernel records
constexpr CUpti_ActivityKind kKinds[] = {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL,
                                         CUPTI_ACTIVITY_KIND_MEMCPY, CUPTI_ACTIVITY_KIND_MEMSET};

// What the callbacks (on CUPTI's thread) hand to collect(). Never destroyed: CUPTI may
// call back until the process ends.
// Kernel times are keyed by the raw symbol here and demangled once per name in collect().
struct Delivered {
  std::mutex mutex;
  std::vector<TimeInterval> work;
  KernelTimes by_symbol;
};
Delivered& delivered() {
  static auto* d = new Delivered;
  return *d;
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  // CUPTI requires 8-byte alignment; a failed allocation gives CUPTI no buffer (it then
  // drops records and counts them).
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;  // as many as fit
}

const char* memcpy_name(std::uint8_t kind) {
  switch (kind) {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD: return "memcpy HtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH: return "memcpy DtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD: return "memcpy DtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOH: return "memcpy HtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_PTOP: return "memcpy PtoP";
    default: return "memcpy (other)";
  }
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  std::vector<TimeInterval> found;
  KernelTimes by_symbol;
  const auto note = [&](const char* name, std::uint64_t start, std::uint64_t end) {
    found.push_back({start, end});
    by_symbol.add(name, end - start);
  };
  CUpti_Activity* record = nullptr;
  while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
    switch (record->kind) {
      case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
        const auto* r = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
        note(r->name ? r->name : "(unnamed kernel)", r->start, r->end);
        break;
      }
      case CUPTI_ACTIVITY_KIND_MEMCPY: {
        const auto* r = reinterpret_cast<const CUpti_ActivityMemcpy6*>(record);
        note(memcpy_name(r->copyKind), r->start, r->end);
        break;
      }
      case CUPTI_ACTIVITY_KIND_MEMSET: {
        const auto* r = reinterpret_cast<const CUpti_ActivityMemset4*>(record);
        note("memset", r->start, r->end);
        break;
      }
      default:
        break;
    }
  }
  std::free(buffer);
  std::lock_guard lock(delivered().mutex);
  delivered().work.insert(delivered().work.end(), found.begin(), found.end());
  delivered().by_symbol.merge(by_symbol);
}

std::uint64_t now() {
  std::uint64_t timestamp = 0;
  RT_CHECK_CUPTI(cuptiGetTimestamp(&timestamp));
  return timestamp;
}

std::uint64_t window_begin = 0;  // since construction or the last collect()

}  // namespace

bool GpuActivity::available() { return cuda_available(); }

GpuActivity::GpuActivity() {
  RT_REQUIRE(available(), "GPU activity recording needs a GPU: no CUDA device is visible");
  RT_CHECK_CUPTI(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed));
  for (CUpti_ActivityKind kind : kKinds) RT_CHECK_CUPTI(cuptiActivityEnable(kind));
  {
    std::lock_guard lock(delivered().mutex);
    delivered().work.clear();
    delivered().by_symbol = KernelTimes();
  }
  window_begin = now();
}

GpuActivity::~GpuActivity() {
  // A destructor cannot report: statuses are ignored.
  for (CUpti_ActivityKind kind : kKinds) (void)cuptiActivityDisable(kind);
  (void)cuptiActivityFlushAll(0);
}

GpuActivity::Recording GpuActivity::collect() {
  RT_CHECK_CUPTI(cuptiActivityFlushAll(0));  // hands every completed buffer to the callback
  Recording recording;
  recording.window = {window_begin, now()};
  window_begin = recording.window.end;
  size_t dropped = 0;
  RT_CHECK_CUPTI(cuptiActivityGetNumDroppedRecords(nullptr, 0, &dropped));
  recording.dropped = dropped;
  std::lock_guard lock(delivered().mutex);
  recording.work.swap(delivered().work);
  for (const KernelTime& k : delivered().by_symbol.heaviest_first())
    recording.by_name.add(display_kernel_name(k.name.c_str()), k.total_ns, k.calls);
  delivered().by_symbol = KernelTimes();
  return recording;
}

}  // namespace ratrain
