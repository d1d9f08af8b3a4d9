#pragma once
// Internal to src/io: the temporary-file-then-rename protocol every writer follows, so a
// failure (or an exception anywhere in between) leaves nothing half-written at `path`.

#include <string>

namespace segforge::io {

class TempOutput {
 public:
  /// Checks that `path`'s folder exists (InputError "path: folder 'out' does not exist; create
  /// it first") and that `path` is not a folder; picks `.NAME.tmp.<pid>.<n>` beside it.
  explicit TempOutput(std::string path);
  /// Removes the temporary file unless commit() succeeded.
  ~TempOutput();
  TempOutput(const TempOutput&) = delete;
  TempOutput& operator=(const TempOutput&) = delete;

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }
  /// Renames the (closed) temporary file onto `path`; RuntimeFailure when that fails.
  /// `durable`: fsync the file first and the folder after, so that even a power cut leaves the
  /// old file or the new one (checkpoints).
  void commit(bool durable = false);

 private:
  std::string path_;
  std::string temp_path_;
  bool committed_ = false;
};

}  // namespace segforge::io
