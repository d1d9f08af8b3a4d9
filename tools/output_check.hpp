#pragma once
// Output-path checks shared by segforge and segforge-prep: fail before any work.

#include <string>
#include <vector>

namespace segforge::cli {

/// The folder exists, the path is not a folder, and it ends in one of `extensions` (if given).
/// Throws InputError naming the option and the path.
void check_output(const std::string& path, const std::string& option,
                  const std::vector<std::string>& extensions = {});

}  // namespace segforge::cli
