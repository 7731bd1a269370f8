// The folders of checkpoints (layout in checkpoint_format.hpp): the atomic commit of a
// finished save, the `latest` pointer, keep-last-N, and the list a resume chooses from.
//
// Crash safety: a save writes into step_<N>.partial; the commit syncs its files to disk,
// renames the folder to step_<N> (a rename within one file system is atomic), syncs the
// parent, and only then replaces `latest` by writing latest.tmp and renaming it over.
// A crash at any point leaves `latest` naming a complete checkpoint (or absent), and
// at worst a .partial folder that the next commit removes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ratrain {

std::string checkpoint_folder(const std::string& root, std::int64_t iteration);  // root/step_N
std::string partial_folder(const std::string& root, std::int64_t iteration);  // .../step_N.partial

// Removes whatever is at `folder` (what an interrupted save left) and creates it empty.
void prepare_empty_folder(const std::string& folder);

// Writes `text` to `path` durably: written to a temporary name, synced, renamed over.
void write_file_atomically(const std::string& path, const std::string& text);

// Flushes a file's or a folder's contents to disk (fsync); an error names the path.
void sync_to_disk(const std::string& path);

// Commits root/step_<N>.partial: renames it to root/step_<N> (replacing an older folder
// of that name), points root/latest at it, then deletes every other .partial folder and
// complete checkpoints beyond `keep`: this one and the keep - 1 newest others.
void commit_checkpoint(const std::string& root, std::int64_t iteration, std::int64_t keep);

// The folder root/latest names, if root/latest exists; an error if it names a folder
// that does not exist.
std::optional<std::string> latest_checkpoint(const std::string& root);
// Complete checkpoints (step_<N> folders) under `root`, newest first; none if no root.
std::vector<std::string> complete_checkpoints(const std::string& root);

}  // namespace ratrain
