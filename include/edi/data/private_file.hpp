#pragma once
/// \file Owner-only files for what names people (export mappings, the class
/// lists of identity models): mode 0600 from the first byte, never briefly
/// readable by others, and committed atomically and durably.
#include <filesystem>
#include <string_view>

namespace edi::data {

/// Write `content` to `path`: a sibling temp file is created with O_EXCL at
/// mode 0600, written, fsync'd and closed (a close error is an error), then
/// renamed over `path` and the directory fsync'd. A failure removes the temp
/// file and throws IoError naming the path and the errno text; `path` is then
/// untouched.
void write_private_file(const std::filesystem::path& path, std::string_view content);

}  // namespace edi::data
