// meta.json writer and reader (see checkpoint_meta.hpp).
#include "io/checkpoint_meta.hpp"

#include <mpi.h>
#include <zlib.h>

#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <fstream>
#include <sstream>

#include "io/h5.hpp"
#include "io/metrics.hpp"

namespace ratrain {
namespace {

namespace pt = boost::property_tree;

constexpr std::int64_t kFormat = 1;

// The first line of MPI's self-description ("Open MPI v4.1.4, package: ..." -> up to
// the first comma), callable before MPI_Init.
std::string mpi_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  if (MPI_Get_library_version(text, &length) != MPI_SUCCESS) return "unknown";
  const std::string full(text, static_cast<std::size_t>(length));
  return full.substr(0, full.find_first_of(",\n"));
}

#if defined(__clang__)
constexpr const char* kCompiler = "clang " __clang_version__;
#elif defined(__GNUC__)
constexpr const char* kCompiler = "gcc " __VERSION__;
#else
constexpr const char* kCompiler = "unknown";
#endif

std::string versions_json() {
  return JsonLine()
      .add("ratrain", RATRAIN_VERSION)
      .add("hdf5", h5::library_version())
      .add("mpi", mpi_version())
      .add("zlib", zlibVersion())
      .add("compiler", kCompiler)
      .str();
}

}  // namespace

std::string checkpoint_meta_json(const CheckpointMeta& meta) {
  const ParallelSizes& p = meta.layout;
  const std::string layout = JsonLine()
                                 .add("tp", std::int64_t{p.tp})
                                 .add("sp", std::int64_t{p.sp})
                                 .add("pp", std::int64_t{p.pp})
                                 .add("dp", std::int64_t{p.dp})
                                 .str();
  std::string checksums = "{";
  for (const auto& [file, datasets] : meta.checksums) {
    JsonLine sums;
    for (const auto& [dataset, crc] : datasets) sums.add(dataset, std::int64_t{crc});
    checksums += (checksums.size() > 1 ? ",\n    \"" : "\n    \"") + file + "\": " + sums.str();
  }
  checksums += "\n  }";
  const std::string scalars = JsonLine()
                                  .add("format", kFormat)
                                  .add("iteration", meta.iteration)
                                  .add("optimizer_steps", meta.optimizer_steps)
                                  .add("data_cursor", meta.data_cursor)
                                  .add("data_samples", meta.data_samples)
                                  .add("seed", static_cast<std::int64_t>(meta.seed))
                                  .add("world_size", p.world())
                                  .str();
  // The scalars' object, opened up to take the nested members after them.
  return scalars.substr(0, scalars.size() - 1) + ",\n  \"layout\": " + layout +
         ",\n  \"versions\": " + versions_json() + ",\n  \"checksums\": " + checksums +
         ",\n  \"config\": " + meta.config_json + "}\n";
}

CheckpointMeta read_checkpoint_meta(const std::string& path) {
  std::ifstream in(path);
  RT_REQUIRE(in.good(), "checkpoint meta '", path, "' not found or unreadable");
  CheckpointMeta meta;
  try {
    pt::ptree root;
    pt::read_json(in, root);
    const auto format = root.get<std::int64_t>("format");
    RT_REQUIRE(format == kFormat, "checkpoint meta '", path, "' has format ", format,
               "; this ratrain reads format ", kFormat);
    meta.iteration = root.get<std::int64_t>("iteration");
    meta.optimizer_steps = root.get<std::int64_t>("optimizer_steps");
    meta.data_cursor = root.get<std::int64_t>("data_cursor");
    meta.data_samples = root.get<std::int64_t>("data_samples");
    meta.seed = root.get<std::uint64_t>("seed");
    meta.layout = {.tp = root.get<int>("layout.tp"), .sp = root.get<int>("layout.sp"),
                   .pp = root.get<int>("layout.pp"), .dp = root.get<int>("layout.dp")};
    require_layout_fits(meta.layout, root.get<int>("world_size"));
    // The dataset names hold '.', ptree's path separator: walk the children instead.
    for (const auto& [file, datasets] : root.get_child("checksums"))
      for (const auto& [dataset, crc] : datasets)
        meta.checksums[file][dataset] = crc.get_value<std::uint32_t>();
  } catch (const pt::ptree_error& e) {
    RT_FAIL("checkpoint meta '", path, "' is malformed: ", e.what());
  }
  return meta;
}

}  // namespace ratrain
