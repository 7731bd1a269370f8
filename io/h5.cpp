// HDF5 C API wrapper (see h5.hpp). Every call goes through RT_CHECK_HDF5_AT, the HDF5
// checker built on RT_CHECK_WITH (STYLE.md item 1): a negative return fails with a
// description that names the file and object and quotes HDF5's error stack, since
// HDF5's own printing is switched off.
#include "io/h5.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>

// HDF5 calls return a negative herr_t or hid_t on failure.
#define RT_CHECK_HDF5_AT(call, failure) \
  RT_CHECK_WITH("HDF5 call failed", static_cast<long long>(call), ::ratrain::h5::hdf5_ok, failure)

namespace ratrain::h5 {
namespace {

bool hdf5_ok(long long status) { return status >= 0; }

// The process-wide lock every HDF5 call holds (h5.hpp). Recursive: File's methods call
// one another and close Handles while they hold it.
std::unique_lock<std::recursive_mutex> library_lock() {
  static std::recursive_mutex mutex;
  return std::unique_lock(mutex);
}

// A write holds the lock for one slice of at most this many bytes (h5.hpp).
constexpr std::int64_t kWriteSliceBytes = std::int64_t{64} << 20;

// "H5Dread(): can't read data" for one record of HDF5's error stack.
herr_t collect_error(unsigned /*depth*/, const H5E_error2_t* err, void* out) {
  auto& lines = *static_cast<std::vector<std::string>*>(out);
  lines.push_back(detail::concat(err->func_name, "(): ", err->desc));
  return 0;
}

// HDF5's explanation of the failure just reported: the API call's message and, when
// deeper, the innermost one (which carries errno, sizes, lock failures...).
std::string hdf5_reason() {
  std::vector<std::string> lines;
  if (H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &lines) < 0 || lines.empty())
    return "";
  std::string reason = " (HDF5: " + lines.front();
  if (lines.size() > 1) reason += " ... " + lines.back();
  reason += ")";
  // HDF5 >= 1.10 locks files; parallel file systems often refuse the lock.
  if (reason.find("lock") != std::string::npos)
    reason += "; on a network file system try HDF5_USE_FILE_LOCKING=FALSE";
  return reason;
}

// The describe-callable of RT_CHECK_WITH: our message, then HDF5's reason.
struct Failure {
  std::string message;
  std::string operator()(long long /*status*/) const { return message + hdf5_reason(); }
};

// A failure inside file `path`: "HDF5 file 'x.h5': <parts>".
template <typename... Args>
Failure at(const std::string& path, const Args&... parts) {
  return {detail::concat("HDF5 file '", path, "': ", parts...)};
}

std::string attribute_label(const std::string& name, const std::string& object) {
  return detail::concat("attribute '", name, "' of '", object, "'");
}

hid_t native_type(DType dtype, const std::string& what) {
  switch (dtype) {
    case DType::f32: return H5T_NATIVE_FLOAT;
    case DType::f64: return H5T_NATIVE_DOUBLE;
    case DType::i32: return H5T_NATIVE_INT32;
    case DType::bf16: break;
  }
  RT_FAIL(what, ": HDF5 has no bf16 type; convert to f32 first (Tensor::to)");
}

Shape extent(hid_t space, const Failure& failure) {
  const int rank = H5Sget_simple_extent_ndims(space);
  RT_CHECK_HDF5_AT(rank, failure);
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  RT_CHECK_HDF5_AT(H5Sget_simple_extent_dims(space, dims.data(), nullptr), failure);
  return Shape(dims.begin(), dims.end());
}

H5T_class_t type_class(hid_t type, const Failure& failure) {
  const H5T_class_t cls = H5Tget_class(type);
  RT_CHECK_HDF5_AT(cls, failure);
  return cls;
}

Handle variable_string_type(H5T_cset_t cset, const Failure& failure) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  RT_CHECK_HDF5_AT(type.get(), failure);
  RT_CHECK_HDF5_AT(H5Tset_size(type.get(), H5T_VARIABLE), failure);
  RT_CHECK_HDF5_AT(H5Tset_cset(type.get(), cset), failure);
  return type;
}

std::vector<hsize_t> dims_of(const std::vector<std::int64_t>& values) {
  return std::vector<hsize_t>(values.begin(), values.end());
}

Handle simple_space(const Shape& shape, const Failure& failure) {
  const std::vector<hsize_t> dims = dims_of(shape);
  Handle space(dims.empty() ? H5Screate(H5S_SCALAR)
                            : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
               H5Sclose);
  RT_CHECK_HDF5_AT(space.get(), failure);
  return space;
}

// Replaces the selection of `space` with `slab`.
void select(hid_t space, const Hyperslab& slab, const Failure& failure) {
  const auto start = dims_of(slab.start), stride = dims_of(slab.stride);
  const auto count = dims_of(slab.count), block = dims_of(slab.block);
  RT_CHECK_HDF5_AT(H5Sselect_hyperslab(space, H5S_SELECT_SET, start.data(), stride.data(),
                                       count.data(), block.data()),
                   failure);
}

// Link-creation properties that create the missing groups on a new object's path.
Handle intermediate_groups(const Failure& failure) {
  Handle link_props(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  RT_CHECK_HDF5_AT(link_props.get(), failure);
  RT_CHECK_HDF5_AT(H5Pset_create_intermediate_group(link_props.get(), 1), failure);
  return link_props;
}

// Reads the elements of dataset `d` selected by the two dataspaces into `out`,
// converting to out's dtype; the dataset must hold numbers.
void read_selection(const std::string& path, hid_t d, const std::string& dataset, hid_t mem_space,
                    hid_t file_space, Tensor& out, const Failure& failure) {
  Handle type(H5Dget_type(d), H5Tclose);
  RT_CHECK_HDF5_AT(type.get(), failure);
  const H5T_class_t cls = type_class(type.get(), failure);
  RT_REQUIRE(cls == H5T_INTEGER || cls == H5T_FLOAT, "HDF5 file '", path, "': dataset '", dataset,
             "' does not hold numbers",
             cls == H5T_STRING ? " (it holds strings)" : " (it holds records of another type)");
  const hid_t mem_type =
      native_type(out.dtype(), detail::concat("HDF5 file '", path, "': dataset '", dataset, "'"));
  RT_CHECK_HDF5_AT(H5Dread(d, mem_type, mem_space, file_space, H5P_DEFAULT, out.raw()), failure);
}

}  // namespace

Hyperslab Hyperslab::whole(const Shape& shape) {
  return {.start = std::vector<std::int64_t>(shape.size(), 0),
          .stride = std::vector<std::int64_t>(shape.size(), 1),
          .count = std::vector<std::int64_t>(shape.size(), 1),
          .block = shape};
}

Hyperslab Hyperslab::range(std::int64_t begin, std::int64_t length) {
  return {.start = {begin}, .stride = {1}, .count = {1}, .block = {length}};
}

std::int64_t Hyperslab::numel() const {
  std::int64_t n = 1;
  for (std::size_t d = 0; d < count.size(); ++d) n *= count[d] * block[d];
  return n;
}

std::string library_version() {
  unsigned major = 0, minor = 0, release = 0;
  const auto lock = library_lock();
  RT_CHECK_HDF5_AT(H5get_libversion(&major, &minor, &release),
                   Failure{"cannot read the HDF5 library version"});
  return detail::concat(major, ".", minor, ".", release);
}

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    const auto lock = library_lock();
    if (valid() && closer_) closer_(id_);
    id_ = o.id_;
    closer_ = o.closer_;
    o.id_ = H5I_INVALID_HID;
  }
  return *this;
}

Handle::~Handle() {
  if (!valid() || !closer_) return;
  const auto lock = library_lock();
  closer_(id_);  // a destructor cannot report a close failure
}

File::File(const std::string& path, Mode mode) : path_(path) {
  const auto lock = library_lock();
  // Without this HDF5 prints its whole error stack to stderr before our message.
  RT_CHECK_HDF5_AT(H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr),
                   Failure{"cannot switch off HDF5 error printing"});
  if (mode == Mode::truncate) {
    file_ = Handle(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    RT_CHECK_HDF5_AT(file_.get(),
                     Failure{detail::concat("cannot create HDF5 file '", path,
                                            "' (does its folder exist and is it writable?)")});
    return;
  }
  RT_REQUIRE(std::filesystem::exists(path), "HDF5 file '", path, "' not found");
  RT_REQUIRE(std::ifstream(path).good(), "HDF5 file '", path,
             "' cannot be opened for reading (check its permissions)");
  file_ = Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  RT_CHECK_HDF5_AT(
      file_.get(),
      Failure{detail::concat("'", path, "' is not a valid HDF5 file (corrupt or truncated)")});
}

bool File::exists(const std::string& object) const {
  const auto lock = library_lock();
  // H5Lexists needs each parent to exist, so test the path one component at a time.
  std::string prefix;
  std::size_t pos = 0;
  while (pos < object.size()) {
    std::size_t end = object.find('/', pos);
    if (end == std::string::npos) end = object.size();
    if (end > pos) {
      prefix.append("/").append(object, pos, end - pos);
      // A negative answer means a parent is not a group (e.g. "tokens/x" below a
      // dataset): the object cannot exist there.
      if (H5Lexists(id(), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    }
    pos = end + 1;
  }
  return true;
}

std::vector<std::string> File::list(const std::string& group) const {
  const auto lock = library_lock();
  RT_REQUIRE(exists(group), "HDF5 file '", path_, "': group '", group, "' not found");
  const Failure failure = at(path_, "cannot list group '", group, "'");
  Handle g(H5Gopen2(id(), group.c_str(), H5P_DEFAULT), H5Gclose);
  RT_CHECK_HDF5_AT(g.get(), failure);
  H5G_info_t info;
  RT_CHECK_HDF5_AT(H5Gget_info(g.get(), &info), failure);
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    // The name index in increasing order is byte-wise sorted: no std::sort needed.
    const ssize_t len =
        H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    RT_CHECK_HDF5_AT(len, failure);
    std::string name(static_cast<std::size_t>(len) + 1, '\0');
    RT_CHECK_HDF5_AT(H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(),
                                        name.size(), H5P_DEFAULT),
                     failure);
    name.resize(static_cast<std::size_t>(len));
    names.push_back(std::move(name));
  }
  return names;
}

Handle File::open_dataset(const std::string& dataset) const {
  RT_REQUIRE(exists(dataset), "HDF5 file '", path_, "': dataset '", dataset, "' not found");
  Handle d(H5Dopen2(id(), dataset.c_str(), H5P_DEFAULT), H5Dclose);
  RT_CHECK_HDF5_AT(d.get(), at(path_, "cannot open '", dataset, "' as a dataset"));
  return d;
}

Shape File::shape(const std::string& dataset) const {
  const auto lock = library_lock();
  const Handle d = open_dataset(dataset);
  const Failure failure = at(path_, "cannot read the shape of dataset '", dataset, "'");
  Handle space(H5Dget_space(d.get()), H5Sclose);
  RT_CHECK_HDF5_AT(space.get(), failure);
  return extent(space.get(), failure);
}

std::pair<H5T_class_t, std::size_t> File::element_type(const std::string& dataset) const {
  const auto lock = library_lock();
  const Handle d = open_dataset(dataset);
  const Failure failure = at(path_, "cannot read the type of dataset '", dataset, "'");
  Handle type(H5Dget_type(d.get()), H5Tclose);
  RT_CHECK_HDF5_AT(type.get(), failure);
  return {type_class(type.get(), failure), H5Tget_size(type.get())};
}

bool File::is_integer(const std::string& dataset) const {
  return element_type(dataset).first == H5T_INTEGER;
}

DType File::float_dtype(const std::string& dataset) const {
  const auto [cls, size] = element_type(dataset);
  RT_REQUIRE(cls == H5T_FLOAT && (size == 4 || size == 8), "HDF5 file '", path_, "': dataset '",
             dataset, "' does not hold 4- or 8-byte floating-point numbers");
  return size == 4 ? DType::f32 : DType::f64;
}

Tensor File::read(const std::string& dataset, DType dtype) const {
  const auto lock = library_lock();
  const Shape dims = shape(dataset);
  if (!dims.empty()) return read_rows(dataset, 0, dims[0], dtype);
  // A scalar has no rows to select: read its one element.
  const Handle d = open_dataset(dataset);
  Tensor out = Tensor::empty({}, dtype);
  read_selection(path_, d.get(), dataset, H5S_ALL, H5S_ALL, out,
                 at(path_, "cannot read dataset '", dataset, "' as ", dtype_name(dtype)));
  return out;
}

Tensor File::read_rows(const std::string& dataset, std::int64_t row_begin, std::int64_t rows,
                       DType dtype) const {
  const auto lock = library_lock();
  const Shape dims = shape(dataset);
  RT_REQUIRE(!dims.empty(), "HDF5 file '", path_, "': dataset '", dataset,
             "' is a scalar; it has no rows");
  RT_REQUIRE(0 <= row_begin && 0 <= rows && row_begin + rows <= dims[0], "HDF5 file '", path_,
             "': rows [", row_begin, ", ", row_begin + rows, ") are outside dataset '", dataset,
             "' of shape ", shape_str(dims));
  Hyperslab selection = Hyperslab::whole(dims);
  selection.start[0] = row_begin;
  selection.block[0] = rows;
  Shape out_shape = dims;
  out_shape[0] = rows;
  Tensor out = Tensor::empty(out_shape, dtype);
  read_hyperslab(dataset, selection, out);
  return out;
}

void File::read_hyperslab(const std::string& dataset, const Hyperslab& selection,
                          Tensor& out) const {
  const auto lock = library_lock();
  const Handle d = open_dataset(dataset);
  const Failure failure = at(path_, "cannot read a selection of ", selection.numel(),
                             " elements of dataset '", dataset, "' as ", dtype_name(out.dtype()));
  RT_REQUIRE(out.device() == Device::cpu && out.numel() == selection.numel(), "HDF5 file '", path_,
             "': a read of ", selection.numel(), " elements of dataset '", dataset,
             "' needs a host tensor of as many elements (got ", out.numel(), ")");
  if (out.numel() == 0) return;
  Handle file_space(H5Dget_space(d.get()), H5Sclose);
  RT_CHECK_HDF5_AT(file_space.get(), failure);
  RT_REQUIRE(selection.start.size() == extent(file_space.get(), failure).size(), "HDF5 file '",
             path_, "': a selection of ", selection.start.size(),
             " dimensions does not fit dataset '", dataset, "'");
  select(file_space.get(), selection, failure);
  // H5Sselect_hyperslab accepts blocks past the extent; reading them would fail later.
  const htri_t inside = H5Sselect_valid(file_space.get());
  RT_CHECK_HDF5_AT(inside, failure);
  RT_REQUIRE(inside > 0, "HDF5 file '", path_, "': the selection lies outside dataset '", dataset,
             "' of shape ", shape_str(extent(file_space.get(), failure)));
  const Handle mem_space = simple_space({out.numel()}, failure);
  read_selection(path_, d.get(), dataset, mem_space.get(), file_space.get(), out, failure);
}

void File::write(const std::string& dataset, const Tensor& t) {
  RT_REQUIRE(t.device() == Device::cpu, "HDF5 file '", path_, "': dataset '", dataset,
             "' must be written from a host tensor (got ", device_name(t.device()), ")");
  write_raw(
      dataset,
      native_type(t.dtype(), detail::concat("HDF5 file '", path_, "': dataset '", dataset, "'")),
      t.raw(), t.shape());
}

void File::write_raw(const std::string& dataset, hid_t mem_type, const void* data,
                     const Shape& shape, std::int64_t chunk_rows) {
  const Failure failure =
      at(path_, "cannot write dataset '", dataset, "' of shape ", shape_str(shape));
  const std::int64_t numel = shape_numel(shape);
  Handle d;
  std::int64_t element_bytes = 0;
  {
    const auto lock = library_lock();
    RT_REQUIRE(!exists(dataset), "HDF5 file '", path_, "': dataset '", dataset, "' already exists");
    const Handle space = simple_space(shape, failure);
    const Handle link_props = intermediate_groups(failure);
    Handle create_props(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    RT_CHECK_HDF5_AT(create_props.get(), failure);
    if (chunk_rows > 0 && !shape.empty() && numel > 0) {
      std::vector<hsize_t> chunk = dims_of(shape);
      chunk[0] = std::min<hsize_t>(chunk[0], static_cast<hsize_t>(chunk_rows));
      RT_CHECK_HDF5_AT(
          H5Pset_chunk(create_props.get(), static_cast<int>(chunk.size()), chunk.data()), failure);
      // Byte shuffling groups the (mostly zero) high bytes of small integers, which
      // makes deflate far more effective on token ids.
      RT_CHECK_HDF5_AT(H5Pset_shuffle(create_props.get()), failure);
      RT_CHECK_HDF5_AT(H5Pset_deflate(create_props.get(), 4), failure);
    }
    d = Handle(H5Dcreate2(id(), dataset.c_str(), mem_type, space.get(), link_props.get(),
                          create_props.get(), H5P_DEFAULT),
               H5Dclose);
    RT_CHECK_HDF5_AT(d.get(), failure);
    element_bytes = static_cast<std::int64_t>(H5Tget_size(mem_type));
    if (numel > 0 && shape.empty())
      RT_CHECK_HDF5_AT(H5Dwrite(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), failure);
  }
  if (numel == 0 || shape.empty()) return;
  // Slices of whole rows, each under the lock on its own (h5.hpp).
  const std::int64_t row_bytes = element_bytes * (numel / shape[0]);
  const std::int64_t rows_per_slice = std::max<std::int64_t>(1, kWriteSliceBytes / row_bytes);
  for (std::int64_t row = 0; row < shape[0]; row += rows_per_slice) {
    const auto lock = library_lock();
    Hyperslab rows = Hyperslab::whole(shape);
    rows.start[0] = row;
    rows.block[0] = std::min(rows_per_slice, shape[0] - row);
    const Handle file_space = simple_space(shape, failure);
    select(file_space.get(), rows, failure);
    Shape slice_shape = shape;
    slice_shape[0] = rows.block[0];
    const Handle mem_space = simple_space(slice_shape, failure);
    RT_CHECK_HDF5_AT(H5Dwrite(d.get(), mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT,
                              static_cast<const std::byte*>(data) + row * row_bytes),
                     failure);
  }
}

void File::write_virtual(const std::string& dataset, DType dtype, const Shape& shape,
                         const std::vector<VirtualSource>& sources) {
  const auto lock = library_lock();
  RT_REQUIRE(!exists(dataset), "HDF5 file '", path_, "': dataset '", dataset, "' already exists");
  const Failure failure =
      at(path_, "cannot create virtual dataset '", dataset, "' of shape ", shape_str(shape));
  const hid_t type =
      native_type(dtype, detail::concat("HDF5 file '", path_, "': dataset '", dataset, "'"));
  const Handle space = simple_space(shape, failure);
  Handle create_props(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  RT_CHECK_HDF5_AT(create_props.get(), failure);
  // A hole or a missing source file reads as NaN, not as a plausible 0.
  const double fill = std::numeric_limits<double>::quiet_NaN();
  RT_CHECK_HDF5_AT(H5Pset_fill_value(create_props.get(), H5T_NATIVE_DOUBLE, &fill), failure);
  for (const VirtualSource& source : sources) {
    RT_REQUIRE(source.selection.numel() == source.target.numel(), "HDF5 file '", path_,
               "': virtual dataset '", dataset, "' maps ", source.selection.numel(),
               " elements of '", source.file, "':'", source.dataset, "' onto ",
               source.target.numel());
    const Handle target_space = simple_space(shape, failure);
    select(target_space.get(), source.target, failure);
    const Handle source_space = simple_space(source.source_shape, failure);
    select(source_space.get(), source.selection, failure);
    RT_CHECK_HDF5_AT(H5Pset_virtual(create_props.get(), target_space.get(), source.file.c_str(),
                                    source.dataset.c_str(), source_space.get()),
                     failure);
  }
  const Handle link_props = intermediate_groups(failure);
  const Handle d(H5Dcreate2(id(), dataset.c_str(), type, space.get(), link_props.get(),
                            create_props.get(), H5P_DEFAULT),
                 H5Dclose);
  RT_CHECK_HDF5_AT(d.get(), failure);
}

bool File::has_attribute(const std::string& name, const std::string& object) const {
  const auto lock = library_lock();
  RT_REQUIRE(exists(object), "HDF5 file '", path_, "': object '", object, "' not found");
  const htri_t found = H5Aexists_by_name(id(), object.c_str(), name.c_str(), H5P_DEFAULT);
  RT_CHECK_HDF5_AT(found, at(path_, "cannot look up ", attribute_label(name, object)));
  return found > 0;
}

Handle File::open_attribute_values(const std::string& name, const std::string& object,
                                   std::int64_t& values) const {
  RT_REQUIRE(has_attribute(name, object), "HDF5 file '", path_,
             "': ", attribute_label(name, object), " not found");
  const Failure failure = at(path_, "cannot read ", attribute_label(name, object));
  Handle attr(H5Aopen_by_name(id(), object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT),
              H5Aclose);
  RT_CHECK_HDF5_AT(attr.get(), failure);
  Handle space(H5Aget_space(attr.get()), H5Sclose);
  RT_CHECK_HDF5_AT(space.get(), failure);
  const hssize_t points = H5Sget_simple_extent_npoints(space.get());
  RT_CHECK_HDF5_AT(points, failure);
  values = points;
  return attr;
}

Handle File::open_attribute(const std::string& name, const std::string& object) const {
  std::int64_t values = 0;
  Handle attr = open_attribute_values(name, object, values);
  RT_REQUIRE(values == 1, "HDF5 file '", path_, "': ", attribute_label(name, object), " holds ",
             values, " values; expected a single value");
  return attr;
}

void File::require_integer_type(hid_t attr, const std::string& name,
                                const std::string& object) const {
  const Failure failure =
      at(path_, "cannot read ", attribute_label(name, object), " as an integer");
  Handle file_type(H5Aget_type(attr), H5Tclose);
  RT_CHECK_HDF5_AT(file_type.get(), failure);
  RT_REQUIRE(type_class(file_type.get(), failure) == H5T_INTEGER, "HDF5 file '", path_,
             "': ", attribute_label(name, object), " is not an integer");
}

std::string File::read_string_attribute(const std::string& name, const std::string& object) const {
  const auto lock = library_lock();
  const Handle attr = open_attribute(name, object);
  const Failure failure = at(path_, "cannot read ", attribute_label(name, object), " as a string");
  Handle file_type(H5Aget_type(attr.get()), H5Tclose);
  RT_CHECK_HDF5_AT(file_type.get(), failure);
  RT_REQUIRE(type_class(file_type.get(), failure) == H5T_STRING, "HDF5 file '", path_,
             "': ", attribute_label(name, object), " is not a string");
  const htri_t variable = H5Tis_variable_str(file_type.get());
  RT_CHECK_HDF5_AT(variable, failure);

  if (variable > 0) {
    const H5T_cset_t cset = H5Tget_cset(file_type.get());
    RT_CHECK_HDF5_AT(cset, failure);
    // Same character set as the file: HDF5 does not convert between ASCII and UTF-8.
    const Handle mem_type = variable_string_type(cset, failure);
    char* raw = nullptr;
    RT_CHECK_HDF5_AT(H5Aread(attr.get(), mem_type.get(), &raw), failure);
    const std::unique_ptr<char, herr_t (*)(void*)> owned(raw, H5free_memory);
    return raw ? std::string(raw) : std::string();
  }
  const std::size_t size = H5Tget_size(file_type.get());
  RT_REQUIRE(size > 0, "HDF5 file '", path_, "': ", attribute_label(name, object),
             " has a string type of size 0");
  const H5T_str_t pad = H5Tget_strpad(file_type.get());
  RT_CHECK_HDF5_AT(pad, failure);
  std::string value(size, '\0');
  RT_CHECK_HDF5_AT(H5Aread(attr.get(), file_type.get(), value.data()), failure);
  // Fixed-length strings are padded to their size with NULs or spaces.
  value.resize(std::min(value.find('\0'), value.size()));
  if (pad == H5T_STR_SPACEPAD) value.erase(value.find_last_not_of(' ') + 1);
  return value;
}

std::int64_t File::read_int_attribute(const std::string& name, const std::string& object) const {
  const auto lock = library_lock();
  const Handle attr = open_attribute(name, object);
  require_integer_type(attr.get(), name, object);
  std::int64_t value = 0;
  RT_CHECK_HDF5_AT(H5Aread(attr.get(), H5T_NATIVE_INT64, &value),
                   at(path_, "cannot read ", attribute_label(name, object), " as an integer"));
  return value;
}

std::vector<std::int64_t> File::read_ints_attribute(const std::string& name,
                                                    const std::string& object) const {
  const auto lock = library_lock();
  std::int64_t count = 0;
  const Handle attr = open_attribute_values(name, object, count);
  require_integer_type(attr.get(), name, object);
  std::vector<std::int64_t> values(static_cast<std::size_t>(count));
  if (count > 0)
    RT_CHECK_HDF5_AT(H5Aread(attr.get(), H5T_NATIVE_INT64, values.data()),
                     at(path_, "cannot read ", attribute_label(name, object), " as integers"));
  return values;
}

double File::read_real_attribute(const std::string& name, const std::string& object) const {
  const auto lock = library_lock();
  const Handle attr = open_attribute(name, object);
  const Failure failure = at(path_, "cannot read ", attribute_label(name, object), " as a number");
  Handle file_type(H5Aget_type(attr.get()), H5Tclose);
  RT_CHECK_HDF5_AT(file_type.get(), failure);
  const H5T_class_t cls = type_class(file_type.get(), failure);
  RT_REQUIRE(cls == H5T_INTEGER || cls == H5T_FLOAT, "HDF5 file '", path_,
             "': ", attribute_label(name, object), " is not a number");
  double value = 0;
  RT_CHECK_HDF5_AT(H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &value), failure);
  return value;
}

void File::write_attribute(const std::string& name, const std::string& object, hid_t type,
                           const Shape& shape, const void* value) {
  const auto lock = library_lock();
  const Failure failure = at(path_, "cannot write ", attribute_label(name, object));
  if (has_attribute(name, object))
    RT_CHECK_HDF5_AT(H5Adelete_by_name(id(), object.c_str(), name.c_str(), H5P_DEFAULT), failure);
  const Handle space = simple_space(shape, failure);
  Handle attr(H5Acreate_by_name(id(), object.c_str(), name.c_str(), type, space.get(), H5P_DEFAULT,
                                H5P_DEFAULT, H5P_DEFAULT),
              H5Aclose);
  RT_CHECK_HDF5_AT(attr.get(), failure);
  RT_CHECK_HDF5_AT(H5Awrite(attr.get(), type, value), failure);
}

void File::write_string_attribute(const std::string& name, const std::string& value,
                                  const std::string& object) {
  const auto lock = library_lock();
  // Variable-length UTF-8, as h5py writes a Python str.
  const Handle type = variable_string_type(
      H5T_CSET_UTF8, at(path_, "cannot write ", attribute_label(name, object)));
  const char* text = value.c_str();
  write_attribute(name, object, type.get(), {}, &text);
}

void File::write_int_attribute(const std::string& name, std::int64_t value,
                               const std::string& object) {
  write_attribute(name, object, H5T_NATIVE_INT64, {}, &value);
}

void File::write_ints_attribute(const std::string& name, const std::vector<std::int64_t>& values,
                                const std::string& object) {
  write_attribute(name, object, H5T_NATIVE_INT64, {static_cast<std::int64_t>(values.size())},
                  values.data());
}

void File::write_real_attribute(const std::string& name, double value, const std::string& object) {
  write_attribute(name, object, H5T_NATIVE_DOUBLE, {}, &value);
}

}  // namespace ratrain::h5
