// The GPU activity recorder of a build without CUPTI (see gpu_activity.hpp).
#include "runtime/error.hpp"
#include "runtime/gpu_activity.hpp"

namespace ratrain {

bool GpuActivity::available() { return false; }

GpuActivity::GpuActivity() {
  RT_FAIL("GPU activity recording needs CUPTI: this build has none (a CUDA build finds it "
          "beside the CUDA toolkit, cupti.h and libcupti)");
}
GpuActivity::~GpuActivity() = default;
GpuActivity::Recording GpuActivity::collect() { return {}; }

}  // namespace ratrain
