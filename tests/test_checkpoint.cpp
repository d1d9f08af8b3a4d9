// Checkpoints: a fit stopped at any step boundary and resumed (from memory or from the file)
// ends with the model of the uninterrupted fit, bit for bit; SIGTERM makes the program write a
// checkpoint and exit 75; SIGKILL at any moment leaves the previous checkpoint whole.

#include <gtest/gtest.h>
#include <signal.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "segforge/backend.hpp"
#include "segforge/checkpoint.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/kmeans.hpp"
#include "segforge/validate.hpp"
#include "test_support.hpp"

extern char** environ;

namespace fs = std::filesystem;
using namespace segforge;

namespace {

/// Uniform points: no cluster structure, so Lloyd takes many iterations to settle.
Matrix<float> uniform_points(std::int64_t n, std::int64_t d, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  Matrix<float> x(n, d);
  for (auto& v : x.values()) v = u(rng);
  return x;
}

void expect_same_result(const KMeansResult& got, const KMeansResult& want, const std::string& where) {
  SCOPED_TRACE(where);
  ASSERT_EQ(got.centroids.rows(), want.centroids.rows());
  EXPECT_EQ(got.centroids.values(), want.centroids.values()) << "centroids differ";
  EXPECT_EQ(got.counts, want.counts);
  EXPECT_EQ(got.inertia, want.inertia);
  EXPECT_EQ(got.n_iter, want.n_iter);
  EXPECT_EQ(got.converged, want.converged);
  EXPECT_EQ(got.n_empty_relocated, want.n_empty_relocated);
  EXPECT_EQ(got.n_swaps_accepted, want.n_swaps_accepted);
  EXPECT_EQ(got.best_run, want.best_run);
  EXPECT_EQ(got.run_inertia, want.run_inertia);
}

/// A fit function of the test: runs fit_lloyd or fit_minibatch on a fresh upload (as a new
/// process would) with the given checkpointing.
using Fit = std::function<KMeansResult(const Checkpointing*)>;

/// Step boundaries an uninterrupted fit passes.
int count_boundaries(const Fit& fit) {
  int polls = 0;
  Checkpointing cp;
  cp.stop_requested = [&] {
    ++polls;
    return false;
  };
  fit(&cp);
  return polls;
}

/// Stops the fit at boundary `stops[0]`, resumes and stops again `stops[1]` boundaries later,
/// ..., then resumes to the end. `through_file`: each state goes through checkpoint.h5.
KMeansResult stop_and_resume(const Fit& fit, const std::vector<int>& stops, const fs::path& file,
                             bool through_file) {
  std::unique_ptr<FitState> state;
  for (int stop_at : stops) {
    int polls = 0;
    Checkpointing cp;
    cp.resume = state.get();
    cp.stop_requested = [&] { return ++polls == stop_at; };
    std::unique_ptr<FitState> saved;
    cp.save = [&](const FitState& s) {
      if (through_file) {
        write_checkpoint(file.string(), s);
        saved = std::make_unique<FitState>(read_checkpoint(file.string()));
      } else {
        saved = std::make_unique<FitState>(s);
      }
    };
    EXPECT_THROW(fit(&cp), Interrupted) << "stop at boundary " << stop_at;
    if (!saved) ADD_FAILURE() << "no state saved at boundary " << stop_at;
    state = std::move(saved);
  }
  Checkpointing cp;
  cp.resume = state.get();
  return fit(&cp);
}

/// A step boundary of an uninterrupted fit: its index (1-based, as stop_and_resume counts) and
/// the phase, run and step a checkpoint written there says.
struct Boundary {
  int index = 0;
  std::string phase;
  int run = 0;
  std::int64_t step = 0;
};

/// Every boundary past a phase's first step, found by saving at each (every = 1 saves at every
/// step > 0 of a phase; the step-0 boundary of a phase is the poll just before its step 1).
std::vector<Boundary> saved_boundaries(const Fit& fit) {
  std::vector<Boundary> out;
  int polls = 0;
  Checkpointing cp;
  cp.every = 1;
  cp.stop_requested = [&] {
    ++polls;
    return false;
  };
  cp.save = [&](const FitState& s) { out.push_back({polls, s.phase, s.run, s.step}); };
  fit(&cp);
  return out;
}

class CheckpointResume : public test::TempDirTest {
 protected:
  /// Stops at the first, second, middle and last boundary of every phase (each n_init run, the
  /// swap trials, the final Lloyd run, the mini-batch steps), each once in memory and once
  /// through checkpoint.h5, then a chain of three stops; every resume must end bit-identical.
  /// `phases`: the phases the fit must pass through.
  void check_every_phase(const Fit& fit, const std::string& name, const std::vector<std::string>& phases) {
    const KMeansResult want = fit(nullptr);
    const int total = count_boundaries(fit);
    ASSERT_GT(total, 10) << name << ": too few step boundaries to test";
    const std::vector<Boundary> saved = saved_boundaries(fit);
    std::vector<std::pair<int, std::string>> stops;  // boundary, what it is
    for (std::size_t i = 0; i < saved.size();) {
      std::size_t j = i;
      while (j < saved.size() && saved[j].phase == saved[i].phase && saved[j].run == saved[i].run) ++j;
      const std::string group = saved[i].phase + " (run " + std::to_string(saved[i].run) + ")";
      ASSERT_EQ(saved[i].step, 1) << name << ": " << group << " does not start at step 1";
      stops.push_back({saved[i].index - 1, group + " step 0"});
      stops.push_back({saved[i].index, group + " step 1"});
      stops.push_back({saved[(i + j) / 2].index, group + " step " + std::to_string(saved[(i + j) / 2].step)});
      stops.push_back({saved[j - 1].index, group + " step " + std::to_string(saved[j - 1].step) + " (its last)"});
      i = j;
    }
    stops.push_back({total, "the last boundary"});
    for (const std::string& phase : phases)
      EXPECT_TRUE(std::any_of(saved.begin(), saved.end(), [&](const Boundary& b) { return b.phase == phase; }))
          << name << ": the fit never checkpointed in phase " << phase;
    for (const auto& [stop, what] : stops)
      for (bool through_file : {false, true})
        expect_same_result(stop_and_resume(fit, {stop}, dir_ / "c.h5", through_file), want,
                           name + ", stopped at boundary " + std::to_string(stop) + " of " +
                               std::to_string(total) + ": " + what + (through_file ? ", through the file" : ""));
    expect_same_result(stop_and_resume(fit, {total / 5, total / 5, total / 3}, dir_ / "c.h5", true), want,
                       name + ", stopped three times, through the file");
  }
};

TEST_F(CheckpointResume, LloydWithRestartsAndRandomSwapResumesBitIdentical) {
  const Matrix<float> x = uniform_points(6000, 2, 3);
  auto backend = make_cpu_backend(2);
  LloydParams p;
  p.n_clusters = 15;
  p.n_init = 3;
  p.max_iter = 40;
  p.tol = 0.0;
  p.seed = 11;
  p.refine = Refine::random_swap;
  p.swap_trials = 25;
  const Fit fit = [&](const Checkpointing* cp) {
    auto data = backend->upload(x.view());
    return fit_lloyd(*backend, *data, p, {}, cp);
  };
  check_every_phase(fit, "lloyd k-means++ + swap", {"runs", "swap", "final"});
}

// The default --refine auto picks random swap on small data (swap_pays): its checkpoints must
// resume like every other phase's (issue 15.6: they were refused as damaged).
TEST_F(CheckpointResume, LloydWithAutoRefineResumesBitIdentical) {
  const Matrix<float> x = uniform_points(6000, 2, 3);
  auto backend = make_cpu_backend(2);
  LloydParams p;
  p.n_clusters = 15;
  p.n_init = 2;
  p.max_iter = 40;
  p.tol = 0.0;
  p.seed = 12;
  p.refine = Refine::auto_select;  // swap_pays: 6000 x 15 x 25 trials is far below its budget
  p.swap_trials = 25;
  const Fit fit = [&](const Checkpointing* cp) {
    auto data = backend->upload(x.view());
    return fit_lloyd(*backend, *data, p, {}, cp);
  };
  check_every_phase(fit, "lloyd, --refine auto", {"runs", "swap", "final"});
}

TEST_F(CheckpointResume, LloydFromScalableInitResumesBitIdentical) {
  const Matrix<float> x = uniform_points(5000, 3, 5);
  auto backend = make_cpu_backend(2);
  LloydParams p;
  p.n_clusters = 12;
  p.n_init = 2;
  p.max_iter = 50;
  p.tol = 1e-6;
  p.seed = 4;
  p.init.init = Init::scalable_kmeans_pp;
  const Fit fit = [&](const Checkpointing* cp) {
    auto data = backend->upload(x.view());
    return fit_lloyd(*backend, *data, p, {}, cp);
  };
  check_every_phase(fit, "lloyd k-means||", {"runs"});
}

TEST_F(CheckpointResume, MiniBatchResumesBitIdentical) {
  const Matrix<float> x = uniform_points(8000, 4, 9);
  auto backend = make_cpu_backend(2);
  MiniBatchParams p;
  p.n_clusters = 10;
  p.batch_size = 256;
  p.max_iter = 4;
  p.seed = 21;
  p.max_no_improvement = 0;  // run every step
  p.n_init = 3;  // init candidates scored before the steps: their scores are in the state
  const Fit fit = [&](const Checkpointing* cp) {
    auto data = backend->upload(x.view());
    return fit_minibatch(*backend, *data, p, {}, cp);
  };
  check_every_phase(fit, "mini-batch", {"steps"});
  // With early stopping on: its smoothed-inertia state must survive the checkpoint too.
  p.max_no_improvement = 10;
  p.batch_size = 64;
  p.max_iter = 20;
  check_every_phase(fit, "mini-batch with early stop", {"steps"});
}

TEST_F(CheckpointResume, PeriodicSavesAreTheStatesAResumeNeeds) {
  const Matrix<float> x = uniform_points(4000, 2, 8);
  auto backend = make_cpu_backend(2);
  LloydParams p;
  p.n_clusters = 10;
  p.n_init = 2;
  p.max_iter = 30;
  p.tol = 0.0;
  auto data = backend->upload(x.view());
  const KMeansResult want = fit_lloyd(*backend, *data, p);
  std::vector<FitState> saved;
  Checkpointing cp;
  cp.every = 7;
  cp.save = [&](const FitState& s) { saved.push_back(s); };
  expect_same_result(fit_lloyd(*backend, *data, p, {}, &cp), want, "with saves");
  ASSERT_GE(saved.size(), 2u);
  for (const FitState& s : saved) {
    EXPECT_EQ(s.step % 7, 0) << "saved off the interval";
    Checkpointing resume;
    resume.resume = &s;
    auto fresh = backend->upload(x.view());
    expect_same_result(fit_lloyd(*backend, *fresh, p, {}, &resume), want,
                       "resumed from run " + std::to_string(s.run) + " step " + std::to_string(s.step));
  }
}

TEST_F(CheckpointResume, DamagedOrForeignFilesAreInputErrors) {
  const std::string path = (dir_ / "not_a_checkpoint.h5").string();
  const Matrix<float> x = uniform_points(10, 2, 1);
  write_features(path, x.view(), {"a", "b"});
  try {
    read_checkpoint(path);
    FAIL() << "a features file read as a checkpoint";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("not a segforge checkpoint"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_checkpoint((dir_ / "missing.h5").string()), InputError);
}

// ---- validation: one row per check of validate_checkpoint / validate_resume ------------------

/// A good Lloyd state in phase "runs", run 1, step 3 of a [4 x 2] fit with n_init 2.
FitState good_state() {
  FitState s;
  s.algorithm = "lloyd";
  s.phase = "runs";
  s.settings = "k=4";
  s.rng = {1, 2, 3, 4};
  s.run = 1;
  s.step = 3;
  s.centres = Matrix<float>(4, 2, 0.5f);
  s.previous = Matrix<float>(4, 2, 0.25f);
  s.best_centroids = Matrix<float>(4, 2, 0.75f);
  s.best_inertia = 10.0;
  s.best_n_iter = 5;
  s.run_inertia = {10.0};
  return s;
}

struct StateCase {
  std::string name;
  std::function<void(FitState&)> mutate;
  std::string expected;
};

class CheckpointValidation : public test::TempDirTest, public ::testing::WithParamInterface<StateCase> {};

// Each mutation goes through checkpoint.h5 (the C++ writer writes whatever it is given) and
// must come back as one InputError naming the file and the dataset or attribute.
TEST_P(CheckpointValidation, DamagedStateIsAnInputErrorNamingFileAndDataset) {
  const std::string file = (dir_ / "ck.h5").string();
  FitState s = good_state();
  write_checkpoint(file, s);
  ASSERT_NO_THROW(read_checkpoint(file));
  GetParam().mutate(s);
  write_checkpoint(file, s);
  try {
    const FitState back = read_checkpoint(file);
    validate_resume(back, "lloyd", 4, 2, 2, 50, file);
    FAIL() << "accepted";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.exit_code(), 2);
    EXPECT_EQ(what.rfind(file + ":", 0), 0u) << what;
    EXPECT_NE(what.find(GetParam().expected), std::string::npos) << what;
    EXPECT_NE(what.find("start afresh without --resume"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

INSTANTIATE_TEST_SUITE_P(
    Checks, CheckpointValidation,
    ::testing::Values(
        StateCase{"phase", [](FitState& s) { s.phase = "later"; }, "unknown algorithm/phase 'lloyd/later'"},
        StateCase{"rng_zero", [](FitState& s) { s.rng = {}; }, "generator state"},
        StateCase{"no_centres", [](FitState& s) { s.centres = Matrix<float>(); }, ":/centres: damaged checkpoint: shape [0 x 0]"},
        StateCase{"centres_nan", [](FitState& s) { s.centres = Matrix<float>(4, 2, kNaN); },
                  ":/centres: damaged checkpoint: row 0 (0-based), column 0 is NaN"},
        StateCase{"centres_inf", [](FitState& s) { s.centres(3, 1) = std::numeric_limits<float>::infinity(); },
                  "row 3 (0-based), column 1 is Inf"},
        StateCase{"previous_shape", [](FitState& s) { s.previous = Matrix<float>(3, 2); },
                  ":/previous: damaged checkpoint: shape [3 x 2], expected [4 x 2]"},
        StateCase{"previous_nan", [](FitState& s) { s.previous(1, 0) = kNaN; }, ":/previous"},
        StateCase{"previous_missing", [](FitState& s) { s.previous = Matrix<float>(); }, "missing at iteration 3"},
        StateCase{"best_shape", [](FitState& s) { s.best_centroids = Matrix<float>(4, 3); },
                  ":/best/centroids: damaged checkpoint: shape [4 x 3]"},
        StateCase{"best_nan", [](FitState& s) { s.best_centroids = Matrix<float>(4, 2, kNaN); }, ":/best/centroids"},
        StateCase{"best_missing", [](FitState& s) { s.best_centroids = Matrix<float>(); }, "best_inertia"},
        StateCase{"best_inertia_nan", [](FitState& s) { s.best_inertia = std::nan(""); }, "best_inertia is nan"},
        StateCase{"counts_negative", [](FitState& s) { s.counts = {1, -2, 3, 4}; },
                  ":/counts: damaged checkpoint: value 1 (0-based) is -2"},
        StateCase{"counts_length", [](FitState& s) { s.counts = {1, 2}; }, "2 values for 4 centres"},
        StateCase{"best_counts_nan", [](FitState& s) { s.best_counts = {1, 2, std::nan(""), 4}; }, ":/best/counts"},
        StateCase{"run_inertia_inf", [](FitState& s) { s.run_inertia = {HUGE_VAL}; }, ":/run_inertia"},
        StateCase{"run_inertia_count", [](FitState& s) { s.run_inertia = {1.0, 2.0}; }, "2 scores while run 1"},
        StateCase{"negative_step", [](FitState& s) { s.step = -1; }, "attribute step is -1"},
        StateCase{"negative_n_empty", [](FitState& s) { s.n_empty = -4; }, "attribute n_empty is -4"},
        StateCase{"best_run", [](FitState& s) { s.best_run = 3; }, "best_run 3 is not one of the 1 finished runs"},
        StateCase{"ewa", [](FitState& s) { s.has_ewa = true; s.ewa = std::nan(""); }, "attribute ewa"},
        StateCase{"swap_without_best", [](FitState& s) {
                    s.phase = "swap";
                    s.best_centroids = Matrix<float>();
                    s.best_inertia = HUGE_VAL;
                  }, "missing in phase swap"},
        StateCase{"best_before_any_run", [](FitState& s) {
                    s.run = 0;
                    s.run_inertia.clear();
                  }, ":/best/centroids: damaged checkpoint: present before any run finished"},
        StateCase{"final_without_previous", [](FitState& s) {
                    s.phase = "final";
                    s.previous = Matrix<float>();
                  }, ":/previous: damaged checkpoint: missing at iteration 3"},
        StateCase{"best_counts_length", [](FitState& s) { s.best_counts = {1, 2, 3}; },
                  ":/best/counts: damaged checkpoint: 3 values for 4 centres"},
        StateCase{"swaps_accepted", [](FitState& s) {
                    s.phase = "swap";
                    s.swaps_accepted = 9;
                  }, "swaps_accepted exceeds"},
        StateCase{"minibatch_counts", [](FitState& s) {
                    s.algorithm = "minibatch";
                    s.phase = "steps";
                    s.counts.clear();
                  }, ":/counts: damaged checkpoint: 0 values for 4 centres"},
        // Against the resuming run (validate_resume): K = 4, D = 2, n_init = 2, max_iter = 50.
        StateCase{"other_k", [](FitState& s) {
                    s.centres = Matrix<float>(5, 2);
                    s.previous = Matrix<float>(5, 2);
                    s.best_centroids = Matrix<float>(5, 2);
                  }, "shape [5 x 2], but this run has n_clusters=4 and n_features=2"},
        StateCase{"other_algorithm", [](FitState& s) {
                    s.algorithm = "minibatch";
                    s.phase = "steps";
                    s.counts = {1, 1, 1, 1};
                  }, "written by a minibatch fit, resumed by a lloyd one"},
        StateCase{"run_past_n_init", [](FitState& s) {
                    s.run = 2;
                    s.run_inertia = {1, 2};
                  }, "this run has n_init=2"},
        StateCase{"step_past_max_iter", [](FitState& s) { s.step = 50; }, "past this run's max_iter=50"}),
    [](const ::testing::TestParamInfo<StateCase>& info) { return info.param.name; });

// ---- the program: signals, exit status, files ------------------------------------------------

class CheckpointCli : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    data_ = path("d.h5");
    write_features(data_, uniform_points(20000, 3, 17).view(), {"a", "b", "c"});
  }
  /// The fit every test runs: slow enough (uniform data, tol 0) to be stopped mid-way.
  std::vector<std::string> fit_args(const std::string& model, const std::string& labels) const {
    return {"fit", data_, "-k", "40", "--n-init", "2", "--tol", "0", "--max-iter", "150", "--refine", "none",
            "--device", "cpu", "--seed", "5", "-o", model, "--labels", labels};
  }

  pid_t spawn(std::vector<std::string> args) const {
    args.insert(args.begin(), SEGFORGE_BINARY);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = path("log.txt");
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    EXPECT_EQ(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    return pid;
  }

  static int wait_status(pid_t pid) {
    int raw = 0;
    waitpid(pid, &raw, 0);
    if (WIFEXITED(raw)) return WEXITSTATUS(raw);
    return WIFSIGNALED(raw) ? 128 + WTERMSIG(raw) : -1;
  }

  int run(std::vector<std::string> args) const { return wait_status(spawn(std::move(args))); }

  std::string log() const {
    std::ifstream in(path("log.txt"));
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  void expect_same_outputs(const std::string& model, const std::string& labels) const {
    const Model got = read_model(model), want = read_model(path("ref.h5"));
    EXPECT_EQ(got.centroids.values(), want.centroids.values()) << "centroids differ";
    EXPECT_EQ(got.attributes.at("inertia"), want.attributes.at("inertia"));
    EXPECT_EQ(got.attributes.at("n_iter"), want.attributes.at("n_iter"));
    EXPECT_EQ(read_labels(labels), read_labels(path("ref_labels.h5")));
  }

  std::string data_;
};

TEST_F(CheckpointCli, SigtermWritesACheckpointExits75AndResumeIsBitIdentical) {
  ASSERT_EQ(run(fit_args(path("ref.h5"), path("ref_labels.h5"))), 0) << log();
  for (int signal : {SIGTERM, SIGUSR1}) {
    const std::string ck = path("ck.h5");
    auto args = fit_args(path("m.h5"), path("l.h5"));
    args.insert(args.end(), {"--checkpoint", ck, "--checkpoint-every", "20"});
    const pid_t pid = spawn(args);
    ASSERT_TRUE(test::wait_for_file(ck, pid)) << "no checkpoint before the run ended\n" << log();
    kill(pid, signal);
    ASSERT_EQ(wait_status(pid), 75) << log();
    EXPECT_NE(log().find("continue with --resume " + ck), std::string::npos) << log();
    EXPECT_FALSE(fs::exists(path("m.h5"))) << "an interrupted fit wrote a model";
    const FitState state = read_checkpoint(ck);
    EXPECT_EQ(state.algorithm, "lloyd");

    auto resume = fit_args(path("m.h5"), path("l.h5"));
    resume.insert(resume.end(), {"--resume", ck});
    ASSERT_EQ(run(resume), 0) << log();
    expect_same_outputs(path("m.h5"), path("l.h5"));
    EXPECT_FALSE(fs::exists(ck)) << "a finished run keeps its checkpoint";
    fs::remove(path("m.h5"));
    fs::remove(path("l.h5"));
  }
}

// Issue 15.6: a checkpoint written during the random-swap trials resumes (it was refused as
// damaged), and the resumed model is the uninterrupted one.
TEST_F(CheckpointCli, SigtermDuringRandomSwapResumesBitIdentical) {
  auto swap_args = [&](const std::string& model, const std::string& labels) {
    return std::vector<std::string>{"fit", data_, "-k", "40", "--n-init", "1", "--max-iter", "20", "--refine", "swap",
                                    "--swap-trials", "3000", "--device", "cpu", "--seed", "5", "-o", model,
                                    "--labels", labels};
  };
  ASSERT_EQ(run(swap_args(path("ref.h5"), path("ref_labels.h5"))), 0) << log();
  const std::string ck = path("ck.h5");
  auto args = swap_args(path("m.h5"), path("l.h5"));
  args.insert(args.end(), {"--checkpoint", ck, "--checkpoint-every", "1"});
  const pid_t pid = spawn(args);
  // Wait for a checkpoint written in the swap phase (each save replaces the file atomically).
  bool in_swap = false;
  for (int i = 0; i < 20000 && !in_swap; ++i) {
    if (fs::exists(ck)) {
      try {
        in_swap = read_checkpoint(ck).phase == "swap";
      } catch (const InputError&) {
      }
    }
    if (!in_swap) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (waitpid(pid, nullptr, WNOHANG) == pid) break;
  }
  ASSERT_TRUE(in_swap) << "never saw a checkpoint of the swap phase\n" << log();
  kill(pid, SIGTERM);
  ASSERT_EQ(wait_status(pid), 75) << log();
  const std::string phase = read_checkpoint(ck).phase;
  EXPECT_TRUE(phase == "swap" || phase == "final") << phase;
  auto resume = swap_args(path("m.h5"), path("l.h5"));
  resume.insert(resume.end(), {"--resume", ck});
  ASSERT_EQ(run(resume), 0) << log();
  expect_same_outputs(path("m.h5"), path("l.h5"));
}

// Out of core the rows of a contiguous file are mapped from it; another program truncating the
// file mid-fit makes the lost pages raise SIGBUS (or the next window's read fail): either way one
// line, status 1, no model.
TEST_F(CheckpointCli, InputTruncatedOutOfCoreExitsOneWithOneLine) {
  const std::string ck = path("ck.h5");
  auto args = fit_args(path("m.h5"), path("l.h5"));
  *std::find(args.begin(), args.end(), std::string("150")) = "100000";  // --max-iter: runs until stopped
  args.insert(args.end(), {"--memory-budget", "1M", "--checkpoint", ck, "--checkpoint-every", "1"});
  const pid_t pid = spawn(args);
  ASSERT_TRUE(test::wait_for_file(ck, pid)) << "no checkpoint before the run ended\n" << log();
  fs::resize_file(data_, 4096);
  ASSERT_EQ(wait_status(pid), 1) << log();
  // Past the note that the rows stream from the file: the error, one line.
  const std::string text = log();
  const std::string note = "streaming them from the file, 12288 rows at a time\n";
  const auto after_note = text.find(note);
  ASSERT_NE(after_note, std::string::npos) << text;
  const std::string error = text.substr(after_note + note.size());
  EXPECT_EQ(error.rfind("segforge: ", 0), 0u) << text;
  EXPECT_TRUE(error.find("shrank while it was being read") != std::string::npos ||
              error.find("d.h5") != std::string::npos) << text;
  EXPECT_EQ(std::count(error.begin(), error.end(), '\n'), 1) << text;
  EXPECT_FALSE(fs::exists(path("m.h5")));
}

TEST_F(CheckpointCli, SigkillAtAnyMomentLeavesAWholeCheckpoint) {
  ASSERT_EQ(run(fit_args(path("ref.h5"), path("ref_labels.h5"))), 0) << log();
  const std::string ck = path("ck.h5");
  // A checkpoint every iteration, so a kill often lands while one is being written.
  std::mt19937 rng(1);
  // Kills within 20 ms of a checkpoint: a fit of a few hundred ms (passes got faster) still gets
  // several before it ends.
  std::uniform_int_distribution<int> delay_ms(0, 20);
  int kills = 0;
  for (int round = 0; round < 4; ++round) {
    auto args = fit_args(path("m.h5"), path("l.h5"));
    args.insert(args.end(), {"--checkpoint-every", "1"});
    if (fs::exists(ck))
      args.insert(args.end(), {"--resume", ck});
    else
      args.insert(args.end(), {"--checkpoint", ck});
    const pid_t pid = spawn(args);
    if (!test::wait_for_file(ck, pid)) break;  // finished
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    kill(pid, SIGKILL);
    if (wait_status(pid) != 128 + SIGKILL) break;  // it finished first
    ++kills;
    ASSERT_TRUE(fs::exists(ck));
    EXPECT_NO_THROW(read_checkpoint(ck)) << "round " << round << ": the checkpoint was damaged";
  }
  EXPECT_GE(kills, 2) << "the fit ended too soon to be killed mid-way";
  auto args = fit_args(path("m.h5"), path("l.h5"));
  if (fs::exists(ck)) args.insert(args.end(), {"--resume", ck});
  ASSERT_EQ(run(args), 0) << log();
  expect_same_outputs(path("m.h5"), path("l.h5"));
}

TEST_F(CheckpointCli, BadCheckpointOptionsExit2WithOneMessageAndNoOutputs) {
  const std::string ck = path("ck.h5");
  struct Case {
    std::vector<std::string> extra;
    std::string message;
  };
  // A checkpoint of this run, stopped at once, for the mismatch case.
  {
    auto args = fit_args(path("m.h5"), path("l.h5"));
    args.insert(args.end(), {"--checkpoint", ck, "--checkpoint-every", "1"});
    const pid_t pid = spawn(args);
    ASSERT_TRUE(test::wait_for_file(ck, pid)) << log();
    kill(pid, SIGTERM);
    ASSERT_EQ(wait_status(pid), 75) << log();
  }
  // A checkpoint of this run with NaN centres (issue 15.5: such a state was resumed).
  {
    FitState bad = read_checkpoint(ck);
    bad.centres = Matrix<float>(bad.centres.rows(), bad.centres.cols(), std::numeric_limits<float>::quiet_NaN());
    write_checkpoint(path("nan_ck.h5"), bad);
  }
  const std::vector<Case> cases = {
      {{"--resume", path("nan_ck.h5")},
       path("nan_ck.h5") + ":/centres: damaged checkpoint: row 0 (0-based), column 0 is NaN"},
      {{"--resume", path("missing.h5")}, "--resume " + path("missing.h5") + ": no such file"},
      // The features file as the checkpoint: resuming would overwrite it with the checkpoint.
      {{"--resume", data_}, "is the same file as features"},
      {{"--checkpoint-every", "5"}, "--checkpoint-every needs --checkpoint FILE"},
      {{"--checkpoint", path("nofolder/ck.h5")}, "does not exist; create it first"},
      {{"--checkpoint", path("ck.txt")}, "unknown file type"},
  };
  for (const Case& c : cases) {
    fs::remove(path("log.txt"));
    auto args = fit_args(path("m.h5"), path("l.h5"));
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    EXPECT_EQ(run(args), 2) << log();
    EXPECT_NE(log().find(c.message), std::string::npos) << log();
    EXPECT_FALSE(fs::exists(path("m.h5")));
    EXPECT_FALSE(fs::exists(path("l.h5")));
  }
  // Another K or seed than the checkpoint's: refused, naming what differs.
  fs::remove(path("log.txt"));
  auto args = fit_args(path("m.h5"), path("l.h5"));
  args[3] = "41";
  args.insert(args.end(), {"--resume", ck});
  EXPECT_EQ(run(args), 2) << log();
  EXPECT_NE(log().find("k: 41 now, 40 in the checkpoint"), std::string::npos) << log();
  EXPECT_FALSE(fs::exists(path("m.h5")));
  EXPECT_TRUE(fs::exists(ck)) << "a refused resume removed the checkpoint";
}

}  // namespace
