#pragma once
// Internal to src/io: the temporary-file-then-rename protocol every writer follows, so a
// failure (or an exception anywhere in between) leaves nothing half-written at `path`. With an
// active OutputSet (include/segforge/outputs.hpp) commit() stages the file and the set renames
// all of a command's outputs together.

#include <cstddef>
#include <string>

namespace segforge::io {

class TempOutput {
 public:
  /// Checks `path` (folder exists and is writable, not a folder or device, not the same file as
  /// an input or another output of the active set) and picks an unpredictable temporary name
  /// beside it, `.NAME.tmp.<16 hex digits>`. The temporary does not exist yet: create it with
  /// create_exclusive() or H5Fcreate(H5F_ACC_EXCL), never by a call that follows symlinks.
  explicit TempOutput(std::string path);
  /// Removes the temporary file unless commit() renamed or staged it.
  ~TempOutput();
  TempOutput(const TempOutput&) = delete;
  TempOutput& operator=(const TempOutput&) = delete;

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }
  /// Creates the temporary with O_CREAT|O_EXCL|O_NOFOLLOW for writing; the caller owns (and
  /// closes) the descriptor. RuntimeFailure naming `path` when that fails.
  int create_exclusive();
  /// The (closed) temporary is complete. With an active OutputSet and `path` not declared
  /// standalone: staged, renamed by OutputSet::commit(). Otherwise renamed onto `path` now;
  /// RuntimeFailure when that fails. `durable`: fsync the file first and the folder after, so
  /// that even a power cut leaves the old file or the new one (checkpoints).
  void commit(bool durable = false);

 private:
  std::string path_;
  std::string temp_path_;
  int slot_ = -1;  // the signal handlers' record of temp_path_
  bool committed_ = false;
};

/// Writes all of `data` to `fd` (retrying short writes); RuntimeFailure naming `path` and the
/// reason (a full disk says so) when the system refuses.
void write_all(int fd, const char* data, std::size_t size, const std::string& path);
/// Closes `fd`; RuntimeFailure naming `path` when the close reports a write error.
void close_checked(int fd, const std::string& path);
/// "no space left on the device" style advice for an errno from a write.
std::string write_advice(int error);

}  // namespace segforge::io
