// Checkpoint folders: commit, latest, pruning (see checkpoint_folder.hpp).
#include "io/checkpoint_folder.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "io/checkpoint_format.hpp"
#include "runtime/error.hpp"

namespace ratrain {
namespace {

namespace fs = std::filesystem;

// N of a folder named step_<N> (N decimal digits only), or nullopt.
std::optional<std::int64_t> step_of(const std::string& name) {
  constexpr std::string_view prefix = "step_";
  if (!name.starts_with(prefix)) return std::nullopt;
  const char* const first = name.data() + prefix.size();
  const char* const last = name.data() + name.size();
  std::int64_t step = 0;
  const auto [end, error] = std::from_chars(first, last, step);
  if (error != std::errc() || end != last || *first == '-') return std::nullopt;
  return step;
}

// Removes `path` and everything below; an error names it.
void remove_tree(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  RT_REQUIRE(!ec, "cannot remove checkpoint folder '", path.string(), "': ", ec.message());
}

}  // namespace

std::string checkpoint_folder(const std::string& root, std::int64_t iteration) {
  return (fs::path(root) / step_folder_name(iteration)).string();
}

std::string partial_folder(const std::string& root, std::int64_t iteration) {
  return checkpoint_folder(root, iteration) + kPartialSuffix;
}

void prepare_empty_folder(const std::string& folder) {
  remove_tree(folder);
  std::error_code ec;
  fs::create_directories(folder, ec);
  RT_REQUIRE(!ec, "cannot create checkpoint folder '", folder, "': ", ec.message());
}

void sync_to_disk(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  RT_REQUIRE(fd >= 0, "cannot open '", path, "' to sync it to disk: ", std::strerror(errno));
  const int status = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  RT_REQUIRE(status == 0, "cannot sync '", path, "' to disk: ", std::strerror(error));
}

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << text;
    out.flush();
    RT_REQUIRE(out.good(), "cannot write '", temporary, "' (disk full or not writable?)");
  }
  sync_to_disk(temporary);
  std::error_code ec;
  fs::rename(temporary, path, ec);
  RT_REQUIRE(!ec, "cannot rename '", temporary, "' to '", path, "': ", ec.message());
  sync_to_disk(fs::path(path).parent_path().string());
}

void commit_checkpoint(const std::string& root, std::int64_t iteration, std::int64_t keep) {
  const std::string partial = partial_folder(root, iteration);
  const std::string complete = checkpoint_folder(root, iteration);
  for (const auto& entry : fs::directory_iterator(partial)) sync_to_disk(entry.path().string());
  sync_to_disk(partial);
  // A folder of this name is an older save of the same iteration (a run resumed from
  // before it); rename cannot replace a folder that is not empty.
  remove_tree(complete);
  std::error_code ec;
  fs::rename(partial, complete, ec);
  RT_REQUIRE(!ec, "cannot rename checkpoint folder '", partial, "' to '", complete,
             "': ", ec.message());
  sync_to_disk(root);
  write_file_atomically((fs::path(root) / kCheckpointLatestFile).string(),
                        step_folder_name(iteration) + "\n");

  // The one just committed counts first: a run resumed from an older checkpoint may
  // have left newer-numbered ones, and `latest` must survive whatever keep says.
  std::int64_t kept = 1;
  for (const std::string& folder : complete_checkpoints(root))
    if (folder != complete && kept++ >= keep) remove_tree(folder);
  // Saves are one at a time: any other .partial folder is what a crash left.
  for (const auto& entry : fs::directory_iterator(root))
    if (entry.is_directory() && entry.path().filename().string().ends_with(kPartialSuffix))
      remove_tree(entry.path());
}

std::optional<std::string> latest_checkpoint(const std::string& root) {
  const fs::path pointer = fs::path(root) / kCheckpointLatestFile;
  if (!fs::exists(pointer)) return std::nullopt;
  std::ifstream in(pointer);
  std::string name;
  std::getline(in, name);
  RT_REQUIRE(step_of(name).has_value(), "'", pointer.string(), "' should name a step_<N> folder; ",
             "it holds '", name, "'");
  const std::string folder = (fs::path(root) / name).string();
  RT_REQUIRE(fs::is_directory(folder), "'", pointer.string(), "' names checkpoint '", folder,
             "', which does not exist");
  return folder;
}

std::vector<std::string> complete_checkpoints(const std::string& root) {
  std::vector<std::pair<std::int64_t, std::string>> found;
  if (!fs::is_directory(root)) return {};
  for (const auto& entry : fs::directory_iterator(root))
    if (const auto step = step_of(entry.path().filename().string()); step && entry.is_directory())
      found.emplace_back(*step, entry.path().string());
  std::sort(found.begin(), found.end(), std::greater<>());
  std::vector<std::string> folders;
  for (auto& [step, folder] : found) folders.push_back(std::move(folder));
  return folders;
}

}  // namespace ratrain
