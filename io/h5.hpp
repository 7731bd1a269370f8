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
// - HDF5 may be built without thread safety (the device image's is), so every HDF5 call
//   made here holds one process-wide lock (what a thread-safe build does inside): the
//   checkpoint writer's thread and the training thread's token reads may both use
//   files, one call at a time. Large writes are issued in slices of at most 64 MiB so
//   that a background write makes the other thread wait for one slice at most.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "runtime/tensor.hpp"

namespace ratrain::h5 {

// Owns one hid_t and closes it with the matching H5*close, under the library lock.
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

// A regular hyperslab selection (HDF5's start/stride/count/block, one entry per
// dimension): `count` blocks of `block` elements, `stride` apart, from `start`. Its
// elements are visited in row-major order of their coordinates, which is the order in
// which reads fill memory and virtual datasets pair their elements with a source's.
// Example: rows 4-7 and 12-15 of an (16, 3) tensor:
//   start {4, 0}, stride {8, 1}, count {2, 1}, block {4, 3}.
struct Hyperslab {
  std::vector<std::int64_t> start, stride, count, block;

  // The whole of an extent, as one block.
  static Hyperslab whole(const Shape& shape);
  // Elements [begin, begin + length) of a 1-D extent.
  static Hyperslab range(std::int64_t begin, std::int64_t length);
  std::int64_t numel() const;
};

// One piece of a virtual dataset: the elements `target` selects in it are those
// `selection` selects in dataset `dataset` of file `file`, paired in row-major order.
// `file` is relative to the virtual dataset's own folder (HDF5 looks there first), so a
// folder of files keeps working when it is moved or renamed.
struct VirtualSource {
  std::string file;
  std::string dataset;
  Shape source_shape;  // the extent of the source dataset
  Hyperslab selection;
  Hyperslab target;
};

// "1.10.8": the HDF5 library this program runs with.
std::string library_version();

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
  // The dtype a dataset of 4- or 8-byte floats holds (f32, f64); anything else is an
  // error naming the file and dataset.
  DType float_dtype(const std::string& dataset) const;

  // Reads a whole dataset, converting to `dtype` (f32, f64 or i32).
  Tensor read(const std::string& dataset, DType dtype) const;
  // Reads rows [row_begin, row_begin + rows) of a dataset of rank >= 1 (a hyperslab:
  // only those rows are read from disk).
  Tensor read_rows(const std::string& dataset, std::int64_t row_begin, std::int64_t rows,
                   DType dtype) const;
  // Reads the elements `selection` picks from a dataset into `out` (a host tensor of
  // the selection's element count), in row-major order, converting to out's dtype.
  void read_hyperslab(const std::string& dataset, const Hyperslab& selection, Tensor& out) const;
  // Writes a host tensor (f32, f64 or i32) as a dataset (intermediate groups are created).
  void write(const std::string& dataset, const Tensor& t);
  // Writes raw elements of a native HDF5 type (e.g. H5T_NATIVE_UINT16) as a dataset.
  // chunk_rows > 0 stores it in chunks of that many rows, shuffled and deflated.
  void write_raw(const std::string& dataset, hid_t mem_type, const void* data, const Shape& shape,
                 std::int64_t chunk_rows = 0);
  // Creates a virtual dataset of `shape` and `dtype` (f32 or f64) assembled from
  // `sources`; elements no source covers, or whose source file is missing, read as NaN.
  void write_virtual(const std::string& dataset, DType dtype, const Shape& shape,
                     const std::vector<VirtualSource>& sources);

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
  // A 1-D integer attribute (e.g. a shape).
  std::vector<std::int64_t> read_ints_attribute(const std::string& name,
                                                const std::string& object = "/") const;
  void write_ints_attribute(const std::string& name, const std::vector<std::int64_t>& values,
                            const std::string& object = "/");

 private:
  Handle open_dataset(const std::string& dataset) const;
  // The class (integer, float, ...) and byte size of a dataset's elements.
  std::pair<H5T_class_t, std::size_t> element_type(const std::string& dataset) const;
  // An attribute holding one value; open_attribute_values: any number, set in `values`.
  Handle open_attribute(const std::string& name, const std::string& object) const;
  Handle open_attribute_values(const std::string& name, const std::string& object,
                               std::int64_t& values) const;
  void require_integer_type(hid_t attr, const std::string& name, const std::string& object) const;
  // Writes (replacing) an attribute of `shape` ({} = a scalar) from `value`.
  void write_attribute(const std::string& name, const std::string& object, hid_t type,
                       const Shape& shape, const void* value);

  std::string path_;
  Handle file_;
};

}  // namespace ratrain::h5
