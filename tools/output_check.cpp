#include "output_check.hpp"

#include <filesystem>

#include "segforge/error.hpp"

namespace segforge::cli {

void check_output(const std::string& path, const std::string& option,
                  const std::vector<std::string>& extensions) {
  namespace fs = std::filesystem;
  if (!extensions.empty()) {
    bool ok = false;
    std::string list;
    for (const auto& e : extensions) {
      ok = ok || path.ends_with(e);
      list += (list.empty() ? "" : " or ") + e;
    }
    if (!ok) throw InputError(option + " " + path + ": unknown file type; use a name ending in " + list);
  }
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::is_directory(parent))
    throw InputError(option + " " + path + ": folder '" + parent.string() +
                     "' does not exist; create it first");
  if (fs::is_directory(path))
    throw InputError(option + " " + path + ": is a folder; give a file name");
}

}  // namespace segforge::cli
