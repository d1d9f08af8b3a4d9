#pragma once
// Internal to src/io: the checksum recorded in a model's provenance (input_checksum).

#include <cstddef>
#include <cstdint>
#include <string>

namespace segforge::io {

/// XXH64 (seed 0) of `size` bytes; matches `xxhsum -H64` / python's xxhash.xxh64.
std::uint64_t xxh64(const void* data, std::size_t size);
/// XXH64 of a file's bytes as 16 lowercase hex digits, read in large blocks.
/// InputError when the file cannot be read.
std::string file_checksum(const std::string& path);

}  // namespace segforge::io
