#pragma once
// Shared by the segforge-prep suites: a temporary folder, running the segforge-prep binary,
// and reading small CSV fixtures.

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace segforge::test {

/// A fresh folder under the system temp folder, removed with everything in it.
class PrepDir {
 public:
  PrepDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "segforge-test-prep-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~PrepDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  PrepDir(const PrepDir&) = delete;
  PrepDir& operator=(const PrepDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }
  /// Writes `text` byte for byte and returns the path.
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream out(file(name), std::ios::binary);
    out << text;
    return file(name);
  }
  std::set<std::string> entries() const {
    std::set<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path_)) names.insert(e.path().filename().string());
    return names;
  }

 private:
  std::filesystem::path path_;
};

struct PrepOutcome {
  int status = -1;
  std::string output;  // stdout and stderr together
};

/// Runs `binary args` with the shell, output captured.
inline PrepOutcome run_binary(const std::string& binary, const std::string& args, const PrepDir& dir) {
  const std::string log = dir.file(".log.txt");
  const std::string command = binary + " " + args + " > '" + log + "' 2>&1";
  const int raw = std::system(command.c_str());
  PrepOutcome out;
  out.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  out.output = ss.str();
  std::filesystem::remove(log);
  return out;
}

inline PrepOutcome run_prep(const std::string& args, const PrepDir& dir) {
  return run_binary(SEGFORGE_PREP_BINARY, args, dir);
}

/// A small CSV without quoting: header names and rows of text fields.
struct SimpleCsv {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::size_t column(const std::string& name) const {
    for (std::size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return i;
    throw std::runtime_error("no column " + name);
  }
};

inline SimpleCsv read_simple_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  SimpleCsv csv;
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> fields;
    std::stringstream ss(line);
    std::string field;
    while (std::getline(ss, field, ',')) fields.push_back(field);
    if (line.back() == ',') fields.emplace_back();
    if (first) {
      csv.header = fields;
      first = false;
    } else {
      csv.rows.push_back(fields);
    }
  }
  return csv;
}

/// key,value rows as a map.
inline std::map<std::string, std::string> read_key_values(const std::string& path) {
  std::map<std::string, std::string> out;
  for (const auto& row : read_simple_csv(path).rows) out[row.at(0)] = row.at(1);
  return out;
}

}  // namespace segforge::test
