#pragma once
// Checkpoints of a K-Means fit: what a driver needs to carry on exactly where it stopped, so that
// a resumed run ends with the model an uninterrupted run would have written, bit for bit.
//
// The drivers stop only at step boundaries (before a Lloyd iteration, a random-swap trial or a
// mini-batch step), never inside a backend call. They hold no file or signal code: the caller
// passes a Checkpointing with `save` (writes the state, atomically) and `stop_requested` (polled
// at every boundary; tools/ sets it from SIGTERM or SIGUSR1).

#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "segforge/matrix.hpp"

namespace segforge {

/// A driver's state at a step boundary.
struct FitState {
  std::string algorithm;  ///< "lloyd" or "minibatch"
  /// lloyd: "runs" (the n_init restarts), "swap" (random-swap trials), "final" (Lloyd after the
  /// swaps); minibatch: "steps".
  std::string phase;
  /// What the run was started with (settings and the data's checksum); a resume must match.
  std::string settings;
  std::array<std::uint64_t, 4> rng{};  ///< the driver's generator
  int run = 0;                         ///< lloyd "runs": the n_init run in progress
  std::int64_t step = 0;               ///< the next iteration, trial or mini-batch step
  Matrix<float> centres;               ///< the centres the next step starts from
  /// lloyd: the centres the rows were last labelled with (empty before iteration 1); a resume
  /// labels the rows with them again, so the first iteration counts changed labels as before.
  Matrix<float> previous;
  std::vector<double> counts;  ///< minibatch: per-centre counts
  int n_empty = 0;             ///< lloyd: empty clusters re-seeded so far in this run

  // The best run so far (lloyd) and the init candidates' scores (both).
  Matrix<float> best_centroids;
  std::vector<double> best_counts;
  double best_inertia = std::numeric_limits<double>::infinity();
  int best_n_iter = 0;
  bool best_converged = false;
  int best_n_empty = 0;
  int best_run = 0;
  std::vector<double> run_inertia;
  int swaps_accepted = 0;

  // minibatch: reassignment clock and early-stop state.
  std::int64_t since_reassign = 0;
  bool has_ewa = false;
  double ewa = 0.0;
  bool has_ewa_min = false;
  double ewa_min = 0.0;
  int no_improvement = 0;
};

/// How a driver checkpoints. Everything optional: a default Checkpointing never saves or stops.
struct Checkpointing {
  /// Save every `every` steps (Lloyd iterations, swap trials or mini-batch steps); 0: only when
  /// asked to stop.
  std::int64_t every = 0;
  /// Polled at every step boundary. When it returns true the driver saves and throws
  /// Interrupted (exit 75).
  std::function<bool()> stop_requested;
  /// Writes the state (atomically: a kill mid-write must leave the previous file whole).
  std::function<void(const FitState&)> save;
  /// Resume from this state instead of starting afresh (its `settings` already checked).
  const FitState* resume = nullptr;
  /// Copied into every saved state.
  std::string settings;
  /// Where the state goes, for the Interrupted message.
  std::string path;
};

/// checkpoint.h5: the matrices as datasets, the scalars as root attributes. Written to a
/// temporary file and renamed over `path`. Implemented in src/io.
void write_checkpoint(const std::string& path, const FitState& state);
/// InputError (exit 2) naming the file when it is missing, not a segforge checkpoint, or damaged.
FitState read_checkpoint(const std::string& path);
/// `v` as C99 hex-float text ("%a"): exact, so settings written this way compare equal only
/// when the doubles are (checkpoint attributes, a fit's settings fingerprint).
std::string hex_float(double v);

}  // namespace segforge
