// A communicator group of one parallel axis (tp, sp, pp or dp).
//
// Collectives come in forward/backward pairs (STYLE.md item 6) and return at once for
// a group of one, so the model is written once for every layout. Multi-rank groups
// (MPI for host tensors, NCCL for device tensors) arrive with the distributed work;
// until then every group is of size one.
#pragma once

#include "runtime/tensor.hpp"

namespace ratrain {

class Group {
 public:
  static Group single() { return Group(); }

  int size() const { return size_; }
  int rank() const { return rank_; }

  // Sum over the group, in place. Identity for a group of one.
  void all_reduce_sum(Tensor& /*t*/) const {}
  double all_reduce_sum(double value) const { return value; }

 private:
  Group() = default;
  int size_ = 1;
  int rank_ = 0;
};

}  // namespace ratrain
