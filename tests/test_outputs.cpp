// Outputs are safe (DESIGN.md): no output may be an input or another output (however the path
// is spelled: symlinks, ./, .., hard links), a command's outputs appear together or not at all,
// temporaries are exclusive and unpredictable and vanish on SIGINT/SIGTERM/SIGHUP, and text bound
// for spreadsheets is neutralised against formula injection. Every command, every pair.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <random>
#include <set>
#include <sstream>

#include "../src/io/atomic_file.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/outputs.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace segforge;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class Outputs : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    fs::create_directories(dir_ / "in");
    std::mt19937 rng(3);
    std::normal_distribution<float> noise(0.0f, 0.3f);
    Matrix<float> x(240, 3);
    for (std::int64_t i = 0; i < x.rows(); ++i)
      for (int j = 0; j < 3; ++j) x(i, j) = static_cast<float>((i % 3) * 4 + j) + noise(rng);
    write_features(in("f.h5"), x.view(), {"a", "b", "c"});
    write_features(in("g.h5"), x.view(), {"a", "b", "c"});
    ASSERT_EQ(run("fit " + in("f.h5") + " -k 3 -o " + in("model.h5") + " --labels " + in("labels.h5")), 0);
    std::ofstream(in("names.json")) << "[\"A\", \"B\", \"C\"]";
    std::ofstream(in("gifts.csv")) << "donor_id,gift_date,amount\n1,2020-01-05,10\n1,2020-06-01,20\n"
                                      "2,2020-03-01,5\n3,2020-02-01,100\n3,2020-02-11,40\n4,2020-04-04,7\n";
    std::ofstream(in("table.csv")) << "id,x,y\n1,1.5,2\n2,2.5,1\n3,0.5,4\n4,3.5,3\n";
    std::ofstream(in("sweep.json")) << "{}";
    for (const auto& e : fs::directory_iterator(dir_ / "in")) before_[e.path().filename().string()] = slurp(e.path());
  }

  std::string in(const std::string& name) const { return (dir_ / "in" / name).string(); }

  int run(const std::string& args, std::string* output = nullptr, const std::string& program = SEGFORGE_BINARY) const {
    return shell(program + " " + args, output);
  }

  /// The inputs are byte-for-byte what SetUp wrote, and nothing else appeared anywhere.
  void expect_untouched(const std::string& what) const {
    std::set<std::string> now;
    for (const auto& e : fs::recursive_directory_iterator(dir_)) {
      const std::string rel = fs::relative(e.path(), dir_).string();
      if (rel == "in" || rel == "log.txt" || rel == "out" || extra_.count(rel)) continue;
      now.insert(rel);
      if (rel.starts_with("in/") && !e.is_symlink()) {
        const std::string name = rel.substr(3);
        ASSERT_TRUE(before_.count(name)) << what << ": new file " << rel;
        EXPECT_EQ(slurp(e.path()), before_.at(name)) << what << ": " << rel << " changed";
      } else if (!rel.starts_with("in/")) {
        ADD_FAILURE() << what << ": left " << rel;
      }
    }
    EXPECT_EQ(now.size(), before_.size()) << what;
  }

  std::map<std::string, std::string> before_;
  std::set<std::string> extra_;  // links a test made on purpose
};

/// A command with one output replaced by `target`: exit 2, a "same file" line, nothing touched.
struct Collision {
  std::string name;     // test label
  std::string program;  // "segforge" or "prep"
  std::string args;     // with {X} where the colliding output goes; {in:NAME} for inputs
};

std::string expand(std::string args, const std::string& x, const std::function<std::string(const std::string&)>& in) {
  for (std::size_t at; (at = args.find("{X}")) != std::string::npos;) args.replace(at, 3, x);
  for (std::size_t at; (at = args.find("{in:")) != std::string::npos;) {
    const std::size_t end = args.find('}', at);
    args.replace(at, end - at + 1, in(args.substr(at + 4, end - at - 4)));
  }
  return args;
}

// Each output of each command against an input (named by its file in in/) or another output.
// The output under test is {X}; the file it collides with is given per case.
struct Pair {
  Collision c;
  std::string with;  // in:NAME (an input) or out:NAME (another output of the command, in in/)
};

std::vector<Pair> pairs() {
  const std::string fit = "fit {in:f.h5} -k 3 --init {in:model.h5} --names {in:names.json} ";
  return {
      {{"fit_o_is_features", "segforge", fit + "-o {X}"}, "in:f.h5"},
      {{"fit_o_is_init", "segforge", fit + "-o {X}"}, "in:model.h5"},
      {{"fit_labels_is_features", "segforge", fit + "-o {in:m2.h5} --labels {X}"}, "in:f.h5"},
      {{"fit_metrics_is_names", "segforge", "fit {in:f.h5} -k 3 --names {in:names.json} -o {in:m2.h5} --metrics {X}"}, "in:names.json"},
      {{"fit_checkpoint_is_o", "segforge", "fit {in:f.h5} -k 3 -o {in:m2.h5} --checkpoint {X}"}, "out:m2.h5"},
      {{"fit_checkpoint_is_features", "segforge", "fit {in:f.h5} -k 3 -o {in:m2.h5} --checkpoint {X}"}, "in:f.h5"},
      {{"fit_labels_is_o", "segforge", "fit {in:f.h5} -k 3 -o {in:m2.h5} --labels {X}"}, "out:m2.h5"},
      {{"fit_dictionary_is_metrics", "segforge", "fit {in:f.h5} -k 3 -o {in:m2.h5} --metrics {in:m2.json} --dictionary {X}"}, "out:m2.json"},
      {{"predict_o_is_model", "segforge", "predict {in:model.h5} {in:f.h5} -o {X}"}, "in:model.h5"},
      {{"predict_o_is_features", "segforge", "predict {in:model.h5} {in:f.h5} -o {X}"}, "in:f.h5"},
      {{"score_metrics_is_labels", "segforge", "score {in:f.h5} --labels {in:labels.h5} --metrics {X}"}, "in:labels.h5"},
      {{"score_samples_is_features", "segforge", "score {in:f.h5} --labels {in:labels.h5} --samples {X}"}, "in:f.h5"},
      {{"distances_o_is_b", "segforge", "distances {in:f.h5} {in:g.h5} -o {X}"}, "in:g.h5"},
      {{"sweep_o_is_features", "segforge", "sweep {in:f.h5} --k 2:3 -o {X}"}, "in:f.h5"},
      {{"stability_o_is_features", "segforge", "stability {in:f.h5} -k 3 -o {X}"}, "in:f.h5"},
      {{"report_o_is_model", "segforge", "report {in:model.h5} --features {in:f.h5} -o {X}"}, "in:model.h5"},
      {{"report_o_is_sweep", "segforge", "report {in:model.h5} --features {in:f.h5} --sweep {in:sweep.json} -o {X}"}, "in:sweep.json"},
      {{"rfm_o_is_scaler_from", "prep", "rfm {in:gifts.csv} --scaler-from {in:f.h5} -o {X}"}, "in:f.h5"},
      {{"rfm_o_is_gifts", "prep", "rfm {in:gifts.csv} -o {X}"}, "in:gifts.csv"},
      {{"table_o_is_table", "prep", "table {in:table.csv} -o {X}"}, "in:table.csv"},
      {{"synth_events_is_o", "prep", "synth donors -n 50 -o {in:d.csv} --events {X}"}, "out:d.csv"},
      {{"blobs_centers_is_o", "prep", "synth blobs -n 50 -o {in:b.h5} --centers {X}"}, "out:b.h5"},
  };
}

// How the colliding path is spelled: as is, through ./ and .., through a symlink, a hard link.
const std::vector<std::string> kSpellings = {"plain", "dotdot", "symlink", "hardlink"};

class OutputCollision : public Outputs, public ::testing::WithParamInterface<std::tuple<int, std::string>> {};

TEST_P(OutputCollision, RefusedBeforeAnyWork) {
  const Pair p = pairs()[static_cast<std::size_t>(std::get<0>(GetParam()))];
  const std::string spelling = std::get<1>(GetParam());
  const bool with_output = p.with.starts_with("out:");
  const std::string name = p.with.substr(p.with.find(':') + 1);
  if (with_output && spelling == "hardlink") {
    // The other output exists from a previous run, and {X} is a hard link to it.
    std::ofstream(in(name)) << "previous run";
    before_[name] = "previous run";
  }
  // The file it collides with, spelled another way.
  std::string target = in(name);
  if (spelling == "dotdot") {
    target = (dir_ / "in" / ".." / "in" / "." / name).string();
  } else if (spelling == "symlink") {
    fs::create_symlink(in(name), dir_ / "in" / ("link_" + name));
    extra_.insert("in/link_" + name);
    target = in("link_" + name);
  } else if (spelling == "hardlink") {
    fs::create_hard_link(in(name), dir_ / "in" / ("hard_" + name));
    extra_.insert("in/hard_" + name);
    target = in("hard_" + name);
  }
  // An output colliding with another output: {X} gets the other output's path spelled anew,
  // while the other output keeps its plain path.
  const std::string args = expand(p.c.args, target, [&](const std::string& n) { return in(n); });
  std::string output;
  const int status = run(args, &output, p.c.program == "prep" ? SEGFORGE_PREP_BINARY : SEGFORGE_BINARY);
  EXPECT_EQ(status, 2) << args << "\n" << output;
  EXPECT_NE(output.find("same file"), std::string::npos) << output;
  EXPECT_EQ(std::count(output.begin(), output.end(), '\n'), 1) << "one line: " << output;
  expect_untouched(p.c.name + "/" + spelling);
}

INSTANTIATE_TEST_SUITE_P(EveryCommand, OutputCollision,
                         ::testing::Combine(::testing::Range(0, static_cast<int>(pairs().size())),
                                            ::testing::ValuesIn(kSpellings)),
                         [](const auto& info) {
                           return pairs()[static_cast<std::size_t>(std::get<0>(info.param))].c.name + "_" +
                                  std::get<1>(info.param);
                         });

TEST_F(Outputs, ResumeMayBeTheCheckpointButNoOtherInput) {
  // --resume FILE is also the checkpoint: that coincidence is the design, not a collision.
  std::string output;
  EXPECT_EQ(run("fit " + in("f.h5") + " -k 3 -o " + path("m.h5") + " --checkpoint " + path("ck.h5") +
                    " --resume " + path("ck.h5"), &output), 2);
  EXPECT_EQ(output.find("same file"), std::string::npos) << output;  // refused for being absent
  EXPECT_NE(output.find("no such file"), std::string::npos) << output;
}

TEST_F(Outputs, UnwritableFolderDevicesAndLongNamesRefusedUpFront) {
  fs::create_directories(dir_ / "out");
  ::mkfifo(path("out/pipe.json").c_str(), 0600);
  const std::string fit = "fit " + in("f.h5") + " -k 3 -o " + path("out/m.h5");
  struct Case { std::string args, expected; };
  const std::vector<Case> cases = {
      {fit + " --metrics /proc/segforge_metrics.json", "not writable"},
      {fit + " --metrics " + path("out/pipe.json"), "not a regular file"},
      {fit + " --labels " + path("out/" + std::string(240, 'x') + ".csv"), "shorter name"},
      {fit + " --labels " + path("nowhere/l.csv"), "does not exist; create it first"},
  };
  for (const auto& c : cases) {
    std::string output;
    EXPECT_EQ(run(c.args, &output), 2) << c.args << "\n" << output;
    EXPECT_NE(output.find(c.expected), std::string::npos) << output;
    EXPECT_FALSE(fs::exists(path("out/m.h5"))) << "the model must not be written: " << c.args;
  }
  extra_.insert("out/pipe.json");
  expect_untouched("refused outputs");
}

TEST_F(Outputs, AllOrNothingWhenTheLastRenameFails) {
  fs::create_directories(dir_ / "out");
  const std::string args = "fit " + in("f.h5") + " -k 3 -o " + path("out/m.h5") + " --labels " +
                           path("out/segments.csv") + " --metrics " + path("out/metrics.json");
  ASSERT_EQ(run(args + " --seed 1"), 0);
  std::map<std::string, std::string> first;
  for (const auto& e : fs::directory_iterator(dir_ / "out")) first[e.path().filename().string()] = slurp(e.path());
  ASSERT_EQ(first.size(), 4u);  // model, labels, metrics, dictionary
  // A second run whose rename of metrics.json fails (the hook): every file is the first run's.
  for (const std::string failing : {"metrics.json", "m.h5", "segments.csv"}) {
    std::string output;
    EXPECT_EQ(shell("SEGFORGE_TEST_FAIL_RENAME=" + failing + " " + std::string(SEGFORGE_BINARY) + " " + args +
                        " --seed 2",
                    &output),
              1)
        << output;
    EXPECT_NE(output.find("no output of this run was kept"), std::string::npos) << output;
    std::map<std::string, std::string> now;
    for (const auto& e : fs::directory_iterator(dir_ / "out")) now[e.path().filename().string()] = slurp(e.path());
    EXPECT_EQ(now, first) << "failing " << failing << ": a mix of runs or leftovers";
  }
  // Without a previous run, a failed commit leaves no file at all.
  fs::remove_all(dir_ / "out");
  fs::create_directories(dir_ / "out");
  EXPECT_EQ(shell("SEGFORGE_TEST_FAIL_RENAME=metrics.json " + std::string(SEGFORGE_BINARY) + " " + args), 1);
  EXPECT_TRUE(fs::is_empty(dir_ / "out"));
}

TEST_F(Outputs, SignalsRemoveTemporaries) {
  for (int signal : {SIGINT, SIGTERM, SIGHUP}) {
    fs::remove_all(dir_ / "out");
    fs::create_directories(dir_ / "out");
    const std::string command = "exec env SEGFORGE_TEST_PAUSE_BEFORE_COMMIT=60 " + std::string(SEGFORGE_BINARY) +
                                " fit " + in("f.h5") + " -k 3 -o " + path("out/m.h5") + " --labels " +
                                path("out/segments.csv");
    const pid_t pid = test::spawn_shell(command, dir_ / "spawn.log");
    // Wait until the temporaries of both outputs exist.
    bool ready = false;
    for (int i = 0; i < 6000 && !ready; ++i) {
      int n = 0;
      for (const auto& e : fs::directory_iterator(dir_ / "out"))
        n += e.path().filename().string().find(".tmp.") != std::string::npos;
      ready = n >= 3;  // model, labels, dictionary
      if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(ready) << "no temporaries appeared";
    ::kill(pid, signal);
    int raw = 0;
    ASSERT_EQ(::waitpid(pid, &raw, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(raw) && WTERMSIG(raw) == signal) << "signal " << signal;
    EXPECT_TRUE(fs::is_empty(dir_ / "out")) << "signal " << signal << " left files";
    fs::remove(dir_ / "spawn.log");
  }
}

TEST_F(Outputs, TemporariesAreExclusiveAndUnpredictable) {
  const std::string target = path("victim_target.txt");
  std::ofstream(path("precious.txt")) << "keep me";
  io::TempOutput a(target), b(target);
  EXPECT_NE(a.temp_path(), b.temp_path());
  const std::string name = fs::path(a.temp_path()).filename().string();
  EXPECT_EQ(name.find(std::to_string(::getpid())), std::string::npos) << name;
  // Someone plants a symlink at the temporary's name: creating it fails, the victim is untouched.
  fs::create_symlink(path("precious.txt"), a.temp_path());
  EXPECT_THROW(a.create_exclusive(), RuntimeFailure);
  EXPECT_EQ(slurp(path("precious.txt")), "keep me");
  fs::remove(a.temp_path());
  std::ofstream(b.temp_path()) << "planted";  // and a plain file there is not overwritten either
  EXPECT_THROW(b.create_exclusive(), RuntimeFailure);
}

TEST_F(Outputs, UndeclaredOutputsAreCheckedAndStaged) {
  OutputSet set;
  set.input(in("f.h5"), "features");
  EXPECT_THROW(write_text_atomic(in("f.h5"), "x"), InputError);  // an input, however it was reached
  write_text_atomic(path("late.json"), "{}");
  EXPECT_FALSE(fs::exists(path("late.json"))) << "staged until commit";
  set.commit();
  EXPECT_EQ(slurp(path("late.json")), "{}");
}

TEST_F(Outputs, SegmentsCsvNeutralisesFormulas) {
  // Text ids and names that a spreadsheet would run get a leading apostrophe (OWASP); plain
  // numbers stay; labels.h5 keeps the raw text.
  const std::vector<std::string> raw = {"=HYPERLINK(\"http://x\",\"y\")", "+1+2", "-5", "@SUM(A1)", "\tx",
                                        "-3.25", "plain", "-", "+7e3"};
  Matrix<float> x(static_cast<std::int64_t>(raw.size()), 1);
  for (std::int64_t i = 0; i < x.rows(); ++i) x(i, 0) = static_cast<float>(i % 3) * 10.0f;
  Ids ids;
  ids.text = raw;
  write_features(path("f.h5"), x.view(), {"v"}, ids);
  std::ofstream(path("names.json")) << R"(["=cmd|'/c calc'!A0", "ok", "@name"])";
  ASSERT_EQ(run("fit " + path("f.h5") + " -k 3 --init random --names " + path("names.json") + " -o " +
                path("m.h5") + " --labels " + path("s.csv")),
            0);
  ASSERT_EQ(run("predict " + path("m.h5") + " " + path("f.h5") + " -o " + path("p.h5")), 0);
  const std::string csv = slurp(path("s.csv"));
  const std::vector<std::string> expected = {"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"", "'+1+2", "-5,", "'@SUM(A1)",
                                             "'\tx", "-3.25,", "plain,", "'-,", "'+7e3"};
  for (const auto& e : expected) EXPECT_NE(csv.find(e), std::string::npos) << e << "\n" << csv;
  EXPECT_NE(csv.find("'=cmd|'/c calc'!A0"), std::string::npos) << csv;
  EXPECT_NE(csv.find("'@name"), std::string::npos) << csv;
  // labels.h5 keeps the raw text (read with h5py, an independent reader).
  std::ofstream(path("ids.py")) << "import h5py, json, sys\n"
                                   "f = h5py.File(sys.argv[1], 'r')\n"
                                   "print(json.dumps([v.decode() for v in f['/ids'][()]]))\n";
  std::string out;
  ASSERT_EQ(shell("/usr/bin/python3 " + path("ids.py") + " " + path("p.h5"), &out), 0) << out;
  EXPECT_EQ(nlohmann::json::parse(out).get<std::vector<std::string>>(), raw);
}

}  // namespace
