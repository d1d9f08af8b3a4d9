#pragma once
// Errors carry their exit status (CLI11 / DuckDB style). User errors (bad input, exit 2) are a
// different type from runtime failures (I/O, out of memory, exit 1) and from bugs (exit 3).
// Only tools/ catches them.

#include <stdexcept>
#include <string>

namespace segforge {

class Error : public std::runtime_error {
 public:
  Error(const std::string& message, int exit_code) : std::runtime_error(message), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

/// Bad input: names the file, dataset or column, the row, what is wrong and what to do. Exit 2.
class InputError : public Error {
 public:
  explicit InputError(const std::string& message) : Error(message, 2) {}
};

/// A runtime failure that is not the user's input (I/O, device memory). Exit 1.
class RuntimeFailure : public Error {
 public:
  explicit RuntimeFailure(const std::string& message) : Error(message, 1) {}
};

/// A run stopped on request (SIGTERM or SIGUSR1, as Slurm sends before the time limit) after
/// writing a checkpoint to resume from. Exit 75 (EX_TEMPFAIL: try again), which a batch script
/// can requeue on.
class Interrupted : public Error {
 public:
  static constexpr int kExitCode = 75;
  explicit Interrupted(const std::string& message) : Error(message, kExitCode) {}
};

/// A broken internal invariant: a bug in segforge. Exit 3.
class InternalError : public Error {
 public:
  explicit InternalError(const std::string& message) : Error(message, 3) {}
};

}  // namespace segforge

#define SEGFORGE_ASSERT(cond, msg)                                                              \
  do {                                                                                          \
    if (!(cond))                                                                                \
      throw ::segforge::InternalError(std::string("internal error: ") + (msg) + " (" __FILE__ \
                                      ":" + std::to_string(__LINE__) + ")");                   \
  } while (0)
