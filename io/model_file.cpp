#include "io/model_file.hpp"

#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <cstdio>
#include <optional>
#include <sstream>

#include "model/gather_model.hpp"
#include "model/parameter_parts.hpp"

namespace ratrain {
namespace {

namespace pt = boost::property_tree;

// An int or a list of ints (per-layer values).
std::vector<std::int64_t> int_or_list(const pt::ptree& root, const std::string& key,
                                      const std::string& source) {
  const auto child = root.get_child_optional(key);
  RT_REQUIRE(child, source, ": model config has no key '", key, "'");
  std::vector<std::int64_t> values;
  try {
    if (child->empty()) {
      values.push_back(child->get_value<std::int64_t>());
    } else {
      for (const auto& item : *child) values.push_back(item.second.get_value<std::int64_t>());
    }
  } catch (const pt::ptree_bad_data&) {
    RT_FAIL(source, ": model config key '", key, "' must be an integer or a list of integers");
  }
  RT_REQUIRE(!values.empty(), source, ": model config key '", key, "' is an empty list");
  return values;
}

template <typename T>
T required(const pt::ptree& root, const std::string& key, const std::string& source) {
  const auto value = root.get_optional<T>(key);
  RT_REQUIRE(value, source, ": model config key '", key, "' is missing or not a number");
  return *value;
}

std::string list_json(const std::vector<Sparsity>& rules, int Sparsity::*field) {
  bool uniform = true;
  for (const auto& r : rules) uniform = uniform && r.*field == rules.front().*field;
  if (uniform) return std::to_string(rules.front().*field);
  std::string out = "[";
  for (std::size_t i = 0; i < rules.size(); ++i)
    out += (i ? ", " : "") + std::to_string(rules[i].*field);
  return out + "]";
}

}  // namespace

ModelConfig model_config_from_json(const std::string& json, const std::string& source) {
  pt::ptree root;
  std::istringstream in(json);
  try {
    pt::read_json(in, root);
  } catch (const pt::json_parser_error& e) {
    RT_FAIL(source, ": model config is not valid JSON (", e.message(), " at line ", e.line(), ")");
  }
  ModelConfig c;
  c.vocab_size = required<std::int64_t>(root, "vocab_size", source);
  c.d_model = required<std::int64_t>(root, "d_model", source);
  c.num_heads = required<std::int64_t>(root, "num_heads", source);
  c.num_layers = required<std::int64_t>(root, "num_layers", source);
  c.ffn_mult = root.get<std::int64_t>("ffn_mult", 4);
  c.rope_base = root.get<double>("rope_base", 10000.0);
  RT_REQUIRE(c.num_layers > 0, source, ": model config num_layers must be positive");
  c.sparse_rules = make_layer_rules(c.num_layers, int_or_list(root, "dilation", source),
                                    int_or_list(root, "window", source),
                                    int_or_list(root, "initial", source));
  c.validate();
  return c;
}

std::string model_config_to_json(const ModelConfig& c) {
  std::ostringstream out;
  out.precision(17);
  out << "{\"vocab_size\": " << c.vocab_size << ", \"d_model\": " << c.d_model
      << ", \"num_heads\": " << c.num_heads << ", \"num_layers\": " << c.num_layers
      << ", \"ffn_mult\": " << c.ffn_mult << ", \"rope_base\": " << c.rope_base
      << ", \"dilation\": " << list_json(c.sparse_rules, &Sparsity::dilation)
      << ", \"window\": " << list_json(c.sparse_rules, &Sparsity::window)
      << ", \"initial\": " << list_json(c.sparse_rules, &Sparsity::initial) << "}";
  return out.str();
}

void load_params(const h5::File& file, const std::string& group, ParamStore& store) {
  for (const ParamEntry& e : store.table().entries()) {
    const std::string dataset = group + "/" + e.name;
    RT_REQUIRE(file.exists(dataset), "HDF5 file '", file.path(), "': dataset '", dataset,
               "' not found (the model has parameter '", e.name, "')");
    const Shape shape = file.shape(dataset);
    RT_REQUIRE(shape == e.global_shape, "HDF5 file '", file.path(), "': dataset '", dataset,
               "' has shape ", shape_str(shape), " but the model expects ",
               shape_str(e.global_shape));
    // The master copy's dtype where there is one (the file's values reach it unrounded).
    store.assign(e.name, local_part(e, file.read(dataset, store.optimizer_values().dtype())));
  }
}

void save_model_file(const std::string& path, const ModelConfig& config, const ParamStore& store,
                     const ParallelContext& ctx) {
  // Write under a temporary name and rename, so a crash never leaves a torn file.
  const std::string partial = path + ".partial";
  {
    std::optional<h5::File> file;
    if (ctx.world_rank == 0) {
      file.emplace(partial, h5::Mode::truncate);
      file->write_string_attribute("config", model_config_to_json(config));
    }
    // The master copy where there is one: a file keeps the weights at full precision.
    gather_model_parameters(config, store, ctx, [&](const ParamEntry& e, const Tensor& global) {
      file->write("params/" + e.name, global);
    });
  }
  if (ctx.world_rank != 0) return;
  RT_REQUIRE(std::rename(partial.c_str(), path.c_str()) == 0, "cannot rename '", partial,
             "' to '", path, "'");
}

ModelConfig read_model_file_config(const std::string& path) {
  const h5::File file(path, h5::Mode::read);
  RT_REQUIRE(file.has_attribute("config"), "HDF5 file '", path,
             "' has no 'config' attribute: not a ratrain/RAT+ model file");
  return model_config_from_json(file.read_string_attribute("config"), path);
}

}  // namespace ratrain
