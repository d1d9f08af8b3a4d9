// Atomic outputs: write a temporary file in the target's folder, close it, rename it into place.
// rename(2) within one folder is atomic, so readers see either the old file or the whole new one.

#include "atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "segforge/error.hpp"
#include "segforge/io.hpp"

namespace fs = std::filesystem;

namespace segforge {
namespace io {

namespace {
std::atomic<unsigned> temp_counter{0};
}  // namespace

TempOutput::TempOutput(std::string path) : path_(std::move(path)) {
  if (path_.empty()) throw InputError("empty output path; pass a file name");
  const fs::path target(path_);
  fs::path folder = target.parent_path();
  if (target.filename().empty()) throw InputError(path_ + ": is a folder name; pass a file name");
  std::error_code ec;
  if (!folder.empty()) {
    if (!fs::exists(folder, ec))
      throw InputError(path_ + ": folder '" + folder.string() +
                       "' does not exist; create it first");
    if (!fs::is_directory(folder, ec))
      throw InputError(path_ + ": '" + folder.string() +
                       "' is not a folder; check the output path");
  }
  if (fs::is_directory(target, ec))
    throw InputError(path_ + ": is a folder; pass a file name inside it");
  const std::string name = "." + target.filename().string() + ".tmp." +
                           std::to_string(static_cast<long>(::getpid())) + "." +
                           std::to_string(temp_counter.fetch_add(1));
  temp_path_ = (folder / name).string();
}

TempOutput::~TempOutput() {
  if (!committed_) {
    std::error_code ec;
    fs::remove(temp_path_, ec);  // best effort: nothing to report from a destructor
  }
}

void TempOutput::commit(bool durable) {
  auto sync = [&](const std::string& name, int flags) {
    const int fd = ::open(name.c_str(), flags);
    if (fd < 0 || ::fsync(fd) != 0) {
      const std::string why = std::strerror(errno);
      if (fd >= 0) ::close(fd);
      throw RuntimeFailure(path_ + ": cannot flush " + name + " to disk (" + why + ")");
    }
    ::close(fd);
  };
  if (durable) sync(temp_path_, O_RDONLY);
  std::error_code ec;
  fs::rename(temp_path_, path_, ec);
  if (ec)
    throw RuntimeFailure(path_ + ": cannot move the finished file into place (" + ec.message() +
                         "); check permissions on the folder");
  committed_ = true;
  if (durable) {
    const fs::path folder = fs::path(path_).parent_path();
    sync(folder.empty() ? std::string(".") : folder.string(), O_RDONLY | O_DIRECTORY);
  }
}

}  // namespace io

void write_text_atomic(const std::string& path, const std::string& text) {
  io::TempOutput out(path);
  {
    std::ofstream file(out.temp_path(), std::ios::binary | std::ios::trunc);
    if (!file)
      throw RuntimeFailure(path + ": cannot create a temporary file beside it (" +
                           std::strerror(errno) + "); check that the folder is writable");
    file.write(text.data(), static_cast<std::streamsize>(text.size()));
    file.close();
    if (!file)
      throw RuntimeFailure(path + ": write failed (" + std::strerror(errno) +
                           "); check free space");
  }
  out.commit();
}

}  // namespace segforge
