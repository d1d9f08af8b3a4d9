#include "checkpoint_options.hpp"

#include <csignal>
#include <filesystem>
#include <sstream>
#include <vector>

#include "segforge/error.hpp"

namespace segforge::cli {

namespace {

volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void on_stop_signal(int signal) { g_stop_signal = signal; }

struct SavedAction {
  int signal;
  struct sigaction action;
};
std::vector<SavedAction> g_saved;

void install_handlers() {
  for (int signal : {SIGTERM, SIGUSR1}) {
    struct sigaction action = {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    SavedAction saved{signal, {}};
    if (sigaction(signal, &action, &saved.action) == 0) g_saved.push_back(saved);
  }
}

void restore_handlers() {
  for (const auto& s : g_saved) sigaction(s.signal, &s.action, nullptr);
  g_saved.clear();
}

std::vector<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

/// "k: 5 here, 6 in the checkpoint; seed: ..." for the settings that differ.
std::string differences(const std::string& now, const std::string& then) {
  auto split = [](const std::string& w) {
    const auto eq = w.find('=');
    return eq == std::string::npos ? std::pair{w, std::string()} : std::pair{w.substr(0, eq), w.substr(eq + 1)};
  };
  std::string out;
  const auto a = words(now), b = words(then);
  for (const auto& w : a) {
    const auto [key, value] = split(w);
    std::string other = "(absent)";
    for (const auto& v : b)
      if (split(v).first == key) other = split(v).second;
    if (other != value) out += (out.empty() ? "" : "; ") + key + ": " + value + " now, " + other + " in the checkpoint";
  }
  return out.empty() ? "the settings text differs" : out;
}

}  // namespace

void add_checkpoint_options(CLI::App* app, CheckpointOptions& o) {
  app->add_option("--checkpoint", o.path,
                  "checkpoint.h5: written atomically every --checkpoint-every steps and on "
                  "SIGTERM/SIGUSR1, which then exit with status 75");
  app->add_option("--checkpoint-every", o.every,
                  "Lloyd iterations, swap trials or mini-batch steps between checkpoints (0: only on a signal)")
      ->capture_default_str();
  app->add_option("--resume", o.resume,
                  "continue from this checkpoint (same data and settings); it is then also the --checkpoint");
}

CheckpointSession::CheckpointSession(const CheckpointOptions& o, const std::string& settings) {
  if (o.every < 0) throw InputError("--checkpoint-every " + std::to_string(o.every) + ": must be >= 0");
  std::string path = o.path.empty() ? o.resume : o.path;
  if (path.empty()) {
    if (o.every > 0) throw InputError("--checkpoint-every needs --checkpoint FILE");
    return;
  }
  // The path was checked with the command's other files (OutputSet::standalone in cmd_fit).
  if (!o.resume.empty()) {
    if (!std::filesystem::exists(o.resume))
      throw InputError("--resume " + o.resume + ": no such file; start without --resume (a finished run removes its checkpoint)");
    resume_ = std::make_unique<FitState>(read_checkpoint(o.resume));
    if (resume_->settings != settings)
      throw InputError("--resume " + o.resume + ": written by a run with other settings or data (" +
                       differences(settings, resume_->settings) + "); resume with the same command");
  }
  enabled_ = true;
  checkpointing_.every = o.every;
  checkpointing_.settings = settings;
  checkpointing_.path = path;
  checkpointing_.resume = resume_.get();
  checkpointing_.save = [path](const FitState& s) { write_checkpoint(path, s); };
  checkpointing_.stop_requested = [] { return g_stop_signal != 0; };
  g_stop_signal = 0;
  install_handlers();
}

CheckpointSession::~CheckpointSession() {
  if (enabled_) restore_handlers();
}

void CheckpointSession::finished() {
  if (!enabled_) return;
  std::error_code ec;
  std::filesystem::remove(checkpointing_.path, ec);
}

}  // namespace segforge::cli
