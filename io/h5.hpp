// Thin RAII layer over the HDF5 C API, used for checkpoints, model files, token files
// and the golden fixtures.
//
// Invariants:
// - Every HDF5 call is checked; every error is a ratrain::Error that names the file
//   and the dataset or attribute involved, and quotes HDF5's own explanation. HDF5's
//   automatic error-stack printing is switched off (each File constructor does it, as
//   thread-safe HDF5 builds keep that setting per thread), so that the ratrain message
//   is the one the user sees.
// - Object names are paths relative to the root ("grads/foo" or "/grads/foo").
// - Numeric reads convert to the requested dtype through HDF5's type conversion
//   (e.g. a uint16 token dataset reads as i32, float64 fixtures as f32).
// - Datasets are written once (writing an existing one is an error); writing an
//   attribute replaces any attribute of that name, as h5py does.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/tensor.hpp"

namespace ratrain::h5 {

// Owns one hid_t and closes it with the matching H5*close.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& o) noexcept;
  ~Handle();
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

enum class Mode { read, truncate };

class File {
 public:
  // Opens (Mode::read) or creates (Mode::truncate) `path`. A missing, unreadable or
  // corrupt file is a ratrain::Error naming the path.
  File(const std::string& path, Mode mode);
  const std::string& path() const { return path_; }
  hid_t id() const { return file_.get(); }

  // True if every group on the way to `object` and `object` itself exist.
  bool exists(const std::string& object) const;
  // Names of the members of `group` (e.g. "params"), sorted.
  std::vector<std::string> list(const std::string& group) const;
  Shape shape(const std::string& dataset) const;
  // True if the dataset's elements are integers (of any width or signedness).
  bool is_integer(const std::string& dataset) const;

  // Reads a whole dataset, converting to `dtype` (f32, f64 or i32).
  Tensor read(const std::string& dataset, DType dtype) const;
  // Reads rows [row_begin, row_begin + rows) of a dataset of rank >= 1 (a hyperslab:
  // only those rows are read from disk).
  Tensor read_rows(const std::string& dataset, std::int64_t row_begin, std::int64_t rows,
                   DType dtype) const;
  // Writes a host tensor (f32, f64 or i32) as a dataset (intermediate groups are created).
  void write(const std::string& dataset, const Tensor& t);
  // Writes raw elements of a native HDF5 type (e.g. H5T_NATIVE_UINT16) as a dataset.
  // chunk_rows > 0 stores it in chunks of that many rows, shuffled and deflated.
  void write_raw(const std::string& dataset, hid_t mem_type, const void* data, const Shape& shape,
                 std::int64_t chunk_rows = 0);

  // Attributes of `object` (a group or dataset; "/" is the root). Strings may be stored
  // fixed- or variable-length (h5py writes variable-length UTF-8; so does this class).
  std::string read_string_attribute(const std::string& name, const std::string& object = "/") const;
  void write_string_attribute(const std::string& name, const std::string& value,
                              const std::string& object = "/");
  // Integer attribute (any integer type on disk).
  std::int64_t read_int_attribute(const std::string& name, const std::string& object = "/") const;
  void write_int_attribute(const std::string& name, std::int64_t value,
                           const std::string& object = "/");
  // Real attribute (any integer or float type on disk).
  double read_real_attribute(const std::string& name, const std::string& object = "/") const;
  void write_real_attribute(const std::string& name, double value, const std::string& object = "/");
  bool has_attribute(const std::string& name, const std::string& object = "/") const;

 private:
  Handle open_dataset(const std::string& dataset) const;
  Handle open_attribute(const std::string& name, const std::string& object) const;
  void write_scalar_attribute(const std::string& name, const std::string& object, hid_t type,
                              const void* value);

  std::string path_;
  Handle file_;
};

}  // namespace ratrain::h5
