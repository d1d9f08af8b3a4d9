// Checkpoints: a fit stopped at any step boundary and resumed (from memory or from the file)
// ends with the model of the uninterrupted fit, bit for bit; SIGTERM makes the program write a
// checkpoint and exit 75; SIGKILL at any moment leaves the previous checkpoint whole.

#include <gtest/gtest.h>
#include <signal.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
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

class CheckpointResume : public test::TempDirTest {
 protected:

  void check_every_phase(const Fit& fit, const std::string& name) {
    const KMeansResult want = fit(nullptr);
    const int total = count_boundaries(fit);
    ASSERT_GT(total, 10) << name << ": too few step boundaries to test";
    // First boundary, early, middle, late and last; then a chain of three stops.
    for (int stop : {1, 2, total / 4, total / 2, 3 * total / 4, total})
      expect_same_result(stop_and_resume(fit, {stop}, dir_ / "c.h5", false), want,
                         name + ", stopped at boundary " + std::to_string(stop) + " of " + std::to_string(total));
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
  check_every_phase(fit, "lloyd k-means++ + swap");
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
  check_every_phase(fit, "lloyd k-means||");
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
  const Fit fit = [&](const Checkpointing* cp) {
    auto data = backend->upload(x.view());
    return fit_minibatch(*backend, *data, p, {}, cp);
  };
  check_every_phase(fit, "mini-batch");
  // With early stopping on: its smoothed-inertia state must survive the checkpoint too.
  p.max_no_improvement = 10;
  p.batch_size = 64;
  p.max_iter = 20;
  check_every_phase(fit, "mini-batch with early stop");
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

TEST_F(CheckpointCli, SigkillAtAnyMomentLeavesAWholeCheckpoint) {
  ASSERT_EQ(run(fit_args(path("ref.h5"), path("ref_labels.h5"))), 0) << log();
  const std::string ck = path("ck.h5");
  // A checkpoint every iteration, so a kill often lands while one is being written.
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> delay_ms(0, 150);
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
  const std::vector<Case> cases = {
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
