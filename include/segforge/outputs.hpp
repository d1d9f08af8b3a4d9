#pragma once
// One command's files, declared before any work: every output is checked against every input
// and every other output (after resolving symlinks, `./`, `..` and hard links), its folder is
// checked for writability, and at the end the outputs appear together or not at all.
//
// Writers in src/io write each output to an exclusively created temporary beside it (an
// unpredictable name, O_CREAT|O_EXCL|O_NOFOLLOW, never through a symlink). While an OutputSet is
// active, finishing a file only stages it; OutputSet::commit() renames every staged file into
// place in one step (SIGINT, SIGTERM and SIGHUP blocked meanwhile; a failed rename puts back the
// files it replaced). An OutputSet that is destroyed without commit() — an exception, an
// interrupted run — removes every temporary; SIGINT, SIGTERM and SIGHUP remove them too before
// the process ends. Without an active set (library use, tests) each file is renamed into place
// as soon as it is complete, as before.
//
// What a reader can rely on (docs/formats.md "Outputs"): each file is whole; the files of one
// run are all from that run, unless the process was killed with SIGKILL (or the machine lost
// power) during the final renames, a window of microseconds; no file of the previous run is
// removed unless this run replaces it.

#include <memory>
#include <string>
#include <vector>

namespace segforge {

class OutputSet {
 public:
  /// Becomes the process's active set (one at a time: nesting is a bug) and installs the
  /// SIGINT/SIGTERM/SIGHUP handlers that remove temporaries.
  OutputSet();
  /// Not committed: removes every temporary this set staged; restores the signal handlers.
  ~OutputSet();
  OutputSet(const OutputSet&) = delete;
  OutputSet& operator=(const OutputSet&) = delete;

  /// An input (`option` names it in messages, e.g. "features" or "--init"). Outputs may not
  /// coincide with it. A path that does not exist is recorded by name only (its reader reports it).
  void input(const std::string& path, const std::string& option);
  /// An output written with the others and renamed into place by commit(). Checks now: the name
  /// ends in one of `extensions` (if given), its folder exists and is writable, the path is not a
  /// folder or a device, the name leaves room for the temporary's suffix, and it is not the same
  /// file as an input or another output. InputError naming `option` otherwise.
  void output(const std::string& path, const std::string& option,
              const std::vector<std::string>& extensions = {});
  /// A file published on its own while the command runs (a checkpoint): the same checks as
  /// output(), but its writer renames it into place at once. `same_as_ok` may name an input that
  /// it is allowed to be (`--resume` and `--checkpoint` may be one file).
  void standalone(const std::string& path, const std::string& option,
                  const std::vector<std::string>& extensions = {},
                  const std::string& same_as_ok = "");
  /// Renames every staged output into place. RuntimeFailure when a rename fails (the files
  /// already replaced are put back; nothing of this run remains).
  void commit();

  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace segforge
