#pragma once
// `--checkpoint FILE --checkpoint-every N --resume FILE` for segforge fit: the options, the
// SIGTERM/SIGUSR1 handlers that ask the driver to stop, and the settings a resume must match.

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "segforge/checkpoint.hpp"

namespace segforge::cli {

struct CheckpointOptions {
  std::string path;        ///< --checkpoint
  std::int64_t every = 0;  ///< --checkpoint-every (0: only on SIGTERM/SIGUSR1)
  std::string resume;      ///< --resume
};
void add_checkpoint_options(CLI::App* app, CheckpointOptions& o);

/// One fit's checkpointing. Without --checkpoint or --resume, get() is nullptr and signals keep
/// their default action. Otherwise SIGTERM and SIGUSR1 set a flag the driver polls at every
/// step boundary: it writes the checkpoint and the program exits with status 75.
class CheckpointSession {
 public:
  /// `settings`: what the result depends on ("key=value" words); a resume whose checkpoint was
  /// written with other settings is an InputError naming the differences.
  CheckpointSession(const CheckpointOptions& o, const std::string& settings);
  ~CheckpointSession();
  CheckpointSession(const CheckpointSession&) = delete;
  CheckpointSession& operator=(const CheckpointSession&) = delete;

  const Checkpointing* get() const { return enabled_ ? &checkpointing_ : nullptr; }
  bool resuming() const { return resume_ != nullptr; }
  /// After the outputs are written: the checkpoint has served its purpose and is removed, so a
  /// requeued job that finds none starts afresh.
  void finished();

 private:
  bool enabled_ = false;
  Checkpointing checkpointing_;
  std::unique_ptr<FitState> resume_;
};

}  // namespace segforge::cli
