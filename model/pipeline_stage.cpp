#include "model/pipeline_stage.hpp"

#include "runtime/error.hpp"

namespace ratrain {

PipelineStage pipeline_stage(std::int64_t num_layers, int count, int index) {
  RT_REQUIRE(count >= 1 && num_layers % count == 0, "model.num_layers (", num_layers,
             ") must be divisible by parallel.pp (", count,
             "): each pipeline stage holds the same number of layers");
  RT_REQUIRE(index >= 0 && index < count, "pipeline stage ", index, " is not one of the ",
             count, " stages of parallel.pp");
  const std::int64_t per_stage = num_layers / count;
  return {.index = index,
          .count = count,
          .first_layer = index * per_stage,
          .end_layer = (index + 1) * per_stage};
}

}  // namespace ratrain
