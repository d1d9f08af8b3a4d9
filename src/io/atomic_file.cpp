// Atomic outputs: each file is written to an exclusively created temporary in the target's
// folder and renamed into place; a command's files are renamed together (OutputSet). rename(2)
// within one folder is atomic, so readers see either the old file or the whole new one.

#include "atomic_file.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <climits>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <optional>
#include <system_error>
#include <vector>

#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/outputs.hpp"

namespace fs = std::filesystem;

namespace segforge {

// ---- temporaries the signal handlers remove -----------------------------------------------
// A fixed table, so the handler touches no allocator: a slot's path is written before `used`
// is set (release) and read only after `used` is seen (acquire). unlink(2) and raise(3) are
// async-signal-safe.

namespace {

constexpr int kSlots = 256;
struct TempSlot {
  std::atomic<bool> claimed{false};  // taken by a TempOutput
  std::atomic<bool> used{false};     // path holds a temporary to remove
  char path[PATH_MAX];
};
std::array<TempSlot, kSlots> g_slots;

int register_temp(const std::string& path) {
  if (path.size() >= PATH_MAX) return -1;
  for (int i = 0; i < kSlots; ++i) {
    bool expected = false;
    // Claim the slot, write the path, then publish it to the handler.
    if (g_slots[i].claimed.compare_exchange_strong(expected, true)) {
      std::memcpy(g_slots[i].path, path.c_str(), path.size() + 1);
      g_slots[i].used.store(true, std::memory_order_release);
      return i;
    }
  }
  return -1;  // more than 256 open outputs: the destructor still removes it, a signal does not
}

void unregister_temp(int slot) {
  if (slot < 0) return;
  g_slots[slot].used.store(false, std::memory_order_release);
  g_slots[slot].claimed.store(false, std::memory_order_release);
}

extern "C" void remove_temporaries_and_die(int signal) {
  for (auto& slot : g_slots)
    if (slot.used.load(std::memory_order_acquire)) ::unlink(slot.path);
  ::signal(signal, SIG_DFL);
  ::raise(signal);
}

constexpr std::array<int, 3> kCleanupSignals = {SIGINT, SIGTERM, SIGHUP};

std::string random_hex() {
  std::uint64_t bits = 0;
  if (::getrandom(&bits, sizeof bits, 0) != static_cast<ssize_t>(sizeof bits)) {
    // No entropy source (very old kernels): the name still cannot be guessed from the pid.
    static std::atomic<std::uint64_t> counter{0};
    bits = static_cast<std::uint64_t>(::getpid()) * 0x9E3779B97F4A7C15ull ^
           static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
           (counter.fetch_add(1) << 48);
  }
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(bits));
  return text;
}

constexpr std::size_t kTempSuffix = 1 + 5 + 16;  // "." + ".tmp." + 16 hex digits

/// What a path refers to, for comparing outputs with inputs and each other.
struct Identity {
  std::string canonical;  // absolute, symlinks, "." and ".." resolved as far as the path exists
  bool exists = false;    // then (dev, ino) name the file itself: hard links compare equal
  dev_t dev = 0;
  ino_t ino = 0;
};

Identity identify(const std::string& path) {
  Identity id;
  std::error_code ec;
  // A symlink whose target does not exist yet (an output of this run) still names that target.
  fs::path p = fs::absolute(path, ec);
  for (int hops = 0; hops < 40 && fs::is_symlink(fs::symlink_status(p, ec)); ++hops) {
    const fs::path to = fs::read_symlink(p, ec);
    if (ec) break;
    p = to.is_absolute() ? to : p.parent_path() / to;
  }
  p = fs::weakly_canonical(p, ec);
  id.canonical = ec ? fs::absolute(path).lexically_normal().string() : p.string();
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    id.exists = true;
    id.dev = st.st_dev;
    id.ino = st.st_ino;
  }
  return id;
}

bool same_file(const Identity& a, const Identity& b) {
  return a.canonical == b.canonical || (a.exists && b.exists && a.dev == b.dev && a.ino == b.ino);
}

std::string folder_of(const std::string& path) {
  const fs::path folder = fs::path(path).parent_path();
  return folder.empty() ? std::string(".") : folder.string();
}

/// The checks every output path gets, with or without an OutputSet: a file name (not a
/// folder), in a folder that exists, not an existing folder or device, and short enough for
/// the temporary's suffix. InputError starting with `named`.
void check_target(const std::string& path, const std::string& named) {
  const fs::path target(path);
  if (target.filename().empty() || target.filename() == "." || target.filename() == "..")
    throw InputError(named + ": is a folder name; pass a file name");
  const std::string folder = folder_of(path);
  struct stat st;
  if (::stat(folder.c_str(), &st) != 0)
    throw InputError(named + ": folder '" + folder + "' does not exist; create it first");
  if (!S_ISDIR(st.st_mode))
    throw InputError(named + ": '" + folder + "' is not a folder; check the output path");
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) throw InputError(named + ": is a folder; pass a file name inside it");
    if (!S_ISREG(st.st_mode))
      throw InputError(named + ": exists and is not a regular file (a device, pipe or socket); "
                       "segforge writes files only: pass a file name");
  }
  const long name_max = ::pathconf(folder.c_str(), _PC_NAME_MAX);
  const std::size_t limit = name_max > 0 ? static_cast<std::size_t>(name_max) : 255;
  const std::size_t length = target.filename().string().size();
  if (length + kTempSuffix > limit)
    throw InputError(named + ": the file name is " + std::to_string(length) +
                     " bytes; this folder allows " + std::to_string(limit) + ", and segforge needs " +
                     std::to_string(kTempSuffix) + " more for its temporary file: choose a shorter name");
}

}  // namespace

// ---- OutputSet ------------------------------------------------------------------------------

struct OutputSet::State {
  struct File {
    std::string path, option;
    Identity id;
    bool standalone = false;
    std::string same_as_ok;  // standalone: the option of an input it may coincide with
  };
  struct Staged {
    std::string path, temp;
    int slot = -1;
  };
  std::vector<File> inputs, outputs;
  std::vector<Staged> staged;
  std::vector<std::pair<int, struct sigaction>> saved_actions;
  bool committed = false;

  const File* declared(const std::string& path) const {
    const Identity id = identify(path);
    for (const File& f : outputs)
      if (same_file(f.id, id)) return &f;
    return nullptr;
  }
  void add_output(const std::string& path, const std::string& option,
                  const std::vector<std::string>& extensions, bool standalone,
                  const std::string& same_as_ok);
};

namespace {
OutputSet::State* g_active = nullptr;  // the command's set; one thread declares and commits
}

OutputSet::OutputSet() : state_(std::make_unique<State>()) {
  SEGFORGE_ASSERT(g_active == nullptr, "an OutputSet is already active");
  g_active = state_.get();
  for (int signal : kCleanupSignals) {
    struct sigaction action = {}, previous = {};
    action.sa_handler = remove_temporaries_and_die;
    sigemptyset(&action.sa_mask);
    if (sigaction(signal, nullptr, &previous) == 0 && previous.sa_handler == SIG_IGN)
      continue;  // nohup and friends: an ignored signal stays ignored
    if (sigaction(signal, &action, &previous) == 0) state_->saved_actions.push_back({signal, previous});
  }
}

OutputSet::~OutputSet() {
  if (!state_->committed)
    for (const auto& s : state_->staged) {
      ::unlink(s.temp.c_str());
      unregister_temp(s.slot);
    }
  for (const auto& [signal, action] : state_->saved_actions) sigaction(signal, &action, nullptr);
  g_active = nullptr;
}

void OutputSet::input(const std::string& path, const std::string& option) {
  if (path.empty()) return;
  State::File f{path, option, identify(path)};
  for (const State::File& o : state_->outputs)
    if (same_file(o.id, f.id) && o.same_as_ok != option)
      throw InputError(o.option + " " + o.path + " is the same file as " + option + " " + path +
                       "; writing it would destroy the input: choose another output name");
  state_->inputs.push_back(std::move(f));
}

void OutputSet::output(const std::string& path, const std::string& option,
                       const std::vector<std::string>& extensions) {
  state_->add_output(path, option, extensions, false, "");
}

void OutputSet::standalone(const std::string& path, const std::string& option,
                           const std::vector<std::string>& extensions, const std::string& same_as_ok) {
  state_->add_output(path, option, extensions, true, same_as_ok);
}

void OutputSet::State::add_output(const std::string& path, const std::string& option,
                                  const std::vector<std::string>& extensions, bool is_standalone,
                                  const std::string& ok_input) {
  const std::string named = option.empty() ? path : option + " " + path;
  if (path.empty()) throw InputError((option.empty() ? "output" : option) + ": empty file name; pass a file name");
  File f{path, option, identify(path), is_standalone, ok_input};
  for (const File& in : inputs)
    if (same_file(in.id, f.id) && in.option != ok_input)
      throw InputError(named + " is the same file as " + in.option + " " + in.path +
                       "; writing it would destroy the input: choose another output name");
  for (const File& o : outputs)
    if (same_file(o.id, f.id))
      throw InputError(named + " and " + o.option + " " + o.path +
                       " are the same file; give each output its own name");
  if (!extensions.empty()) {
    bool ok = false;
    std::string list;
    for (const auto& e : extensions) {
      ok = ok || path.ends_with(e);
      list += (list.empty() ? "" : " or ") + e;
    }
    if (!ok) throw InputError(named + ": unknown file type; use a name ending in " + list);
  }
  check_target(path, named);
  const fs::path target(path);
  const std::string folder = folder_of(path);
  // Writable now, not after the work: create and remove an exclusive probe (root passes
  // permission checks, but not a read-only mount).
  const std::string probe = (fs::path(folder) / ("." + target.filename().string() + ".tmp." + random_hex())).string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int e = errno;
    if (e == ENOSPC || e == EDQUOT)
      throw RuntimeFailure(named + ": cannot create a file in '" + folder + "' (" + std::strerror(e) +
                           "); free space on that disk or choose another folder");
    throw InputError(named + ": folder '" + folder + "' is not writable (" + std::strerror(e) +
                     "); choose another folder or fix its permissions");
  }
  ::close(fd);
  ::unlink(probe.c_str());
  outputs.push_back(std::move(f));
}

void OutputSet::commit() {
  State& s = *state_;
  SEGFORGE_ASSERT(!s.committed, "OutputSet committed twice");
  if (const char* hook = std::getenv("SEGFORGE_TEST_PAUSE_BEFORE_COMMIT"))
    ::sleep(static_cast<unsigned>(std::atoi(hook)));  // test hook: a signal while the temporaries exist
  // No signal between two renames: a pending one is delivered once every file is in place.
  sigset_t block, previous;
  sigemptyset(&block);
  for (int signal : kCleanupSignals) sigaddset(&block, signal);
  pthread_sigmask(SIG_BLOCK, &block, &previous);
  // Hard links to the files about to be replaced, so that a failed rename can put them back.
  std::vector<std::string> backups(s.staged.size());
  for (std::size_t i = 0; i < s.staged.size(); ++i) {
    const std::string& target = s.staged[i].path;
    struct stat st;
    if (::lstat(target.c_str(), &st) != 0) continue;
    const std::string backup =
        (fs::path(folder_of(target)) / ("." + fs::path(target).filename().string() + ".bak." + random_hex())).string();
    if (::link(target.c_str(), backup.c_str()) == 0) backups[i] = backup;
  }
  // Test hook: the rename of the file with this name fails, as a full or read-only disk would.
  const char* fail_hook = std::getenv("SEGFORGE_TEST_FAIL_RENAME");
  for (std::size_t i = 0; i < s.staged.size(); ++i) {
    const bool fail = fail_hook != nullptr && fs::path(s.staged[i].path).filename() == fail_hook;
    if (!fail && ::rename(s.staged[i].temp.c_str(), s.staged[i].path.c_str()) == 0) continue;
    const int e = fail ? EIO : errno;
    const std::string message = s.staged[i].path + ": cannot move the finished file into place (" +
                                std::strerror(e) + "); no output of this run was kept" + io::write_advice(e);
    for (std::size_t j = 0; j < i; ++j) {  // undo: the previous files back, or none
      if (!backups[j].empty())
        ::rename(backups[j].c_str(), s.staged[j].path.c_str());
      else
        ::unlink(s.staged[j].path.c_str());
    }
    for (std::size_t j = i; j < s.staged.size(); ++j) {
      ::unlink(s.staged[j].temp.c_str());
      if (!backups[j].empty()) ::unlink(backups[j].c_str());
    }
    for (const auto& staged : s.staged) unregister_temp(staged.slot);
    s.staged.clear();
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    throw RuntimeFailure(message);
  }
  for (const auto& b : backups)
    if (!b.empty()) ::unlink(b.c_str());
  for (const auto& staged : s.staged) unregister_temp(staged.slot);
  s.committed = true;
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

namespace io {

// ---- one file ---------------------------------------------------------------------------

TempOutput::TempOutput(std::string path) : path_(std::move(path)) {
  if (g_active != nullptr) {
    if (g_active->declared(path_) == nullptr)  // written but not declared: checked now
      g_active->add_output(path_, "", {}, false, "");
  } else {
    if (path_.empty()) throw InputError("empty output path; pass a file name");
    check_target(path_, path_);
  }
  const fs::path target(path_);
  temp_path_ = (target.parent_path() / ("." + target.filename().string() + ".tmp." + random_hex())).string();
  slot_ = register_temp(temp_path_);
}

TempOutput::~TempOutput() {
  if (!committed_) {
    ::unlink(temp_path_.c_str());  // best effort: nothing to report from a destructor
    unregister_temp(slot_);
  }
}

int TempOutput::create_exclusive() {
  const int fd = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
  if (fd < 0) {
    const int e = errno;
    throw RuntimeFailure(path_ + ": cannot create a temporary file beside it (" + std::strerror(e) +
                         ")" + write_advice(e));
  }
  return fd;
}

void TempOutput::commit(bool durable) {
  SEGFORGE_ASSERT(!committed_, "TempOutput committed twice");
  auto sync = [&](const std::string& name, int flags) {
    const int fd = ::open(name.c_str(), flags | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) {
      const int e = errno;
      if (fd >= 0) ::close(fd);
      throw RuntimeFailure(path_ + ": cannot flush " + name + " to disk (" + std::strerror(e) + ")" +
                           write_advice(e));
    }
    ::close(fd);
  };
  const OutputSet::State::File* declared = g_active != nullptr ? g_active->declared(path_) : nullptr;
  if (declared != nullptr && !declared->standalone) {
    if (durable) sync(temp_path_, O_RDONLY);
    g_active->staged.push_back({path_, temp_path_, slot_});
    committed_ = true;  // the set owns the temporary now
    return;
  }
  if (durable) sync(temp_path_, O_RDONLY);
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    const int e = errno;
    throw RuntimeFailure(path_ + ": cannot move the finished file into place (" + std::strerror(e) +
                         "); check permissions on the folder");
  }
  committed_ = true;
  unregister_temp(slot_);
  if (durable) sync(folder_of(path_), O_RDONLY | O_DIRECTORY);
}

std::string write_advice(int error) {
  if (error == ENOSPC || error == EDQUOT) return "; the disk is full: free space or write elsewhere";
  if (error == EACCES || error == EPERM || error == EROFS)
    return "; check that the folder is writable";
  return "; check free space and permissions";
}

void write_all(int fd, const char* data, std::size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      throw RuntimeFailure(path + ": write failed (" + std::strerror(e) + ")" + write_advice(e));
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

void close_checked(int fd, const std::string& path) {
  if (::close(fd) != 0) {
    const int e = errno;
    throw RuntimeFailure(path + ": write failed (" + std::strerror(e) + ")" + write_advice(e));
  }
}

}  // namespace io

void write_text_atomic(const std::string& path, const std::string& text) {
  io::TempOutput out(path);
  const int fd = out.create_exclusive();
  try {
    io::write_all(fd, text.data(), text.size(), path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  io::close_checked(fd, path);
  out.commit();
}

}  // namespace segforge
