// Thin RAII layer over the HDF5 C API. Every call is checked with RT_CHECK_HDF5 and
// every error names the file and the dataset or attribute involved.
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
  // Opens (Mode::read) or creates (Mode::truncate) `path`. A missing or unreadable
  // file is a ratrain::Error naming the path.
  File(const std::string& path, Mode mode);
  const std::string& path() const { return path_; }
  hid_t id() const { return file_.get(); }

  bool exists(const std::string& object) const;
  // Names of the members of `group` (e.g. "params"), sorted.
  std::vector<std::string> list(const std::string& group) const;
  Shape shape(const std::string& dataset) const;

  // Reads a whole dataset, converting to `dtype` (f32, f64 or i32).
  Tensor read(const std::string& dataset, DType dtype) const;
  // Reads rows [row_begin, row_begin + rows) of a dataset of rank >= 1.
  Tensor read_rows(const std::string& dataset, std::int64_t row_begin, std::int64_t rows,
                   DType dtype) const;
  // Writes a host tensor as a dataset (intermediate groups are created).
  void write(const std::string& dataset, const Tensor& t);
  // Writes raw elements of a native HDF5 type (e.g. H5T_NATIVE_UINT16) as a dataset.
  void write_raw(const std::string& dataset, hid_t mem_type, const void* data, const Shape& shape,
                 std::int64_t chunk_rows = 0);

  std::string read_string_attribute(const std::string& name, const std::string& object = "/") const;
  void write_string_attribute(const std::string& name, const std::string& value,
                              const std::string& object = "/");
  bool has_attribute(const std::string& name, const std::string& object = "/") const;

 private:
  std::string path_;
  Handle file_;
};

}  // namespace ratrain::h5
