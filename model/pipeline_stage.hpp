// What one pipeline stage holds (DESIGN.md "Parallel layout", PP): stage s of S holds
// the contiguous layers [s * L / S, (s + 1) * L / S); the first stage also holds the
// embedding, the last the final norm and the head tied to the embedding. With S > 1 the
// first and the last stage therefore each hold a copy of `embedding.wte.weight`
// (param_store.hpp StageCopies); with S = 1 the one stage holds everything, once.
//
// Worked example, L = 8 layers over S = 4 stages (L / S = 2 layers each):
//   stage 0: embedding, layers 0-1
//   stage 1: layers 2-3
//   stage 2: layers 4-5
//   stage 3: layers 6-7, final norm, tied head (the second copy of the embedding)
// A layer keeps its global index in its parameter names on every stage: stage 2 holds
// backbone.layers.4.* and backbone.layers.5.*, never "layers.0".
#pragma once

#include <cstdint>

namespace ratrain {

struct PipelineStage {
  int index = 0;                // this stage, in [0, count): the rank's pp coordinate
  int count = 1;                // stages in the pipeline: parallel.pp
  std::int64_t first_layer = 0;  // global index of the stage's first layer
  std::int64_t end_layer = 0;    // one past its last layer

  std::int64_t num_layers() const { return end_layer - first_layer; }
  bool is_first() const { return index == 0; }          // holds the embedding
  bool is_last() const { return index == count - 1; }   // holds the final norm and head
};

// Stage `index` of `count` for a model of `num_layers` layers. Requires num_layers to
// divide by count (the error names model.num_layers and parallel.pp) and index in
// [0, count).
PipelineStage pipeline_stage(std::int64_t num_layers, int count, int index);

}  // namespace ratrain
