#pragma once
// Seeded synthetic data: donors with a known segment structure (for the demo, tests and the
// 20M-row scale run) and Gaussian blobs with known centres (for benchmarks). The same seed
// gives the same files on every platform (segforge::Rng, no std:: distributions).

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace segforge::prep {

/// The donor segments synth donors draws from, with their share of donors.
///   loyal_monthly     monthly direct-debit gifts of 10-50 for 2-8 years, still giving
///   mid_annual        one Christmas-appeal gift of 50-300 a year for 3-10 years
///   lapsed_major      1-4 gifts of 500-10000 by cheque or transfer, last 2-5 years ago
///   event_one_off     a single gift of 15-120 at a gala or fun run
///   new_small         1-3 online gifts of 5-30, the first within the last 6 months
std::vector<std::string> synth_segment_names();

struct SynthDonorsParams {
  std::int64_t n_donors = 10000;
  std::uint64_t seed = 42;
  int years = 6;  ///< history before `end`
  /// The first day not covered (use it as --as-of). Fixed by default, so files are
  /// reproducible whatever the date.
  std::chrono::sys_days end = std::chrono::sys_days{std::chrono::year{2024} / 1 / 1};
  double refund_rate = 0.005;  ///< share of gifts refunded later (a negative row)
};

struct SynthDonorsSummary {
  std::int64_t donors = 0;
  std::int64_t gift_rows = 0;
  std::int64_t event_rows = 0;
  std::vector<std::int64_t> segment_sizes;  ///< [segments], in synth_segment_names() order
};

/// Writes gifts (donor_id,gift_date,amount,campaign,channel), and when the paths are not
/// empty, events (donor_id,event_date,event_type: open, click, attend) and the truth
/// (donor_id,segment). Streams: memory does not grow with n_donors. Each file is written to a
/// temporary name and renamed when complete.
SynthDonorsSummary write_synth_donors(const std::string& gifts_path, const std::string& events_path,
                                      const std::string& truth_path, const SynthDonorsParams& params);

struct SynthBlobsParams {
  std::int64_t n_samples = 100000;
  int n_features = 8;
  int n_clusters = 8;
  std::uint64_t seed = 42;
  double spread = 10.0;   ///< centres uniform in [-spread, spread]^d
  double std_dev = 1.0;   ///< isotropic noise
};

/// Writes blobs to `path` with their ground truth beside them: /features [N x D], /ids (row
/// numbers), /centers [K x D] float32 (the true centres) and /labels [N] int32 (the blob each
/// row was drawn from; `segforge score blobs.h5 --labels blobs.h5` reads it). When
/// `centers_path` is not empty, the true centres also go there in model format (/centroids,
/// segment sizes), usable as `segforge fit --init`.
void write_synth_blobs(const std::string& path, const SynthBlobsParams& params,
                       const std::string& centers_path = "");

}  // namespace segforge::prep
