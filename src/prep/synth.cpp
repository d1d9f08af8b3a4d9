// Synthetic donors (five behavioural segments, streamed to CSV) and Gaussian blobs (HDF5, the
// true centres and labels stored with the features). Every draw comes from segforge::Rng, so a
// seed gives the same files everywhere.

#include <date/date.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include <unistd.h>

#include "../io/atomic_file.hpp"
#include "dates.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/prep/synth.hpp"
#include "segforge/rng.hpp"

namespace segforge::prep {

namespace {

enum Segment { loyal_monthly, mid_annual, lapsed_major, event_one_off, new_small, n_segments };
constexpr std::array<double, n_segments> kShare = {0.25, 0.20, 0.10, 0.25, 0.20};

/// A CSV file written through a temporary name and renamed when complete.
class CsvOut {
 public:
  explicit CsvOut(const std::string& path) : out_(path) {
    const int fd = out_.create_exclusive();
    file_.reset(::fdopen(fd, "wb"));
    if (!file_) {
      ::close(fd);
      throw RuntimeFailure(path + ": cannot create (" + std::strerror(errno) + ")");
    }
    std::setvbuf(file_.get(), nullptr, _IOFBF, std::size_t{1} << 20);
  }
  void line(const std::string& text) { write(text.data(), text.size()); }
  void write(const char* data, std::size_t n) {
    if (std::fwrite(data, 1, n, file_.get()) != n) failed();
  }
  void commit() {
    if (std::fclose(file_.release()) != 0) failed();
    out_.commit();
  }

 private:
  [[noreturn]] void failed() {
    const int e = errno;
    throw RuntimeFailure(out_.path() + ": write failed (" + std::strerror(e) + ")" + io::write_advice(e));
  }
  io::TempOutput out_;
  std::unique_ptr<FILE, int (*)(FILE*)> file_{nullptr, &std::fclose};
};

/// Appends rows without iostreams: 20M lines must not cost minutes.
class LineBuilder {
 public:
  LineBuilder& text(std::string_view s) {
    buf_.append(s);
    return *this;
  }
  LineBuilder& integer(std::int64_t v) {
    char tmp[24];
    auto [end, ec] = std::to_chars(tmp, tmp + sizeof tmp, v);
    buf_.append(tmp, end);
    return *this;
  }
  LineBuilder& day(Day d) {
    const date::year_month_day ymd{date::sys_days{date::days{d}}};
    char tmp[11];
    std::snprintf(tmp, sizeof tmp, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
    buf_.append(tmp, 10);
    return *this;
  }
  LineBuilder& cents(std::int64_t c) {
    if (c < 0) {
      buf_ += '-';
      c = -c;
    }
    integer(c / 100);
    buf_ += '.';
    buf_ += static_cast<char>('0' + (c % 100) / 10);
    buf_ += static_cast<char>('0' + c % 10);
    return *this;
  }
  LineBuilder& sep() {
    buf_ += ',';
    return *this;
  }
  void end_line(CsvOut& out) {
    buf_ += '\n';
    if (buf_.size() > (std::size_t{1} << 16)) flush(out);
  }
  void flush(CsvOut& out) {
    out.write(buf_.data(), buf_.size());
    buf_.clear();
  }

 private:
  std::string buf_;
};

struct Gift {
  Day day;
  std::int64_t cents;
  std::string campaign;
  const char* channel;
};

Day year_of(Day d) { return static_cast<Day>(static_cast<int>(date::year_month_day{date::sys_days{date::days{d}}}.year())); }

Day day_of(int y, unsigned m, unsigned d) {
  return static_cast<Day>(date::sys_days{date::year{y} / date::month{m} / date::day{d}}.time_since_epoch().count());
}

/// Uniform integer in [lo, hi].
std::int64_t between(Rng& rng, std::int64_t lo, std::int64_t hi) { return lo + rng.below(hi - lo + 1); }

/// A standard normal deviate (Box-Muller on two uniforms from the seeded stream).
double normal(Rng& rng) {
  const double u1 = 1.0 - rng.uniform();  // (0, 1]
  const double u2 = rng.uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * 3.14159265358979323846 * u2);
}

Segment draw_segment(Rng& rng) {
  double u = rng.uniform();
  for (int s = 0; s < n_segments; ++s) {
    if (u < kShare[static_cast<std::size_t>(s)]) return static_cast<Segment>(s);
    u -= kShare[static_cast<std::size_t>(s)];
  }
  return new_small;
}

/// One donor's gifts, by segment; `start` and `end` bound the history [start, end).
std::vector<Gift> donor_gifts(Segment s, Rng& rng, Day start, Day end) {
  std::vector<Gift> g;
  const Day span = end - start;
  switch (s) {
    case loyal_monthly: {
      const std::int64_t amount = 500 * between(rng, 2, 10);  // 10 to 50, in steps of 5
      const Day tenure = static_cast<Day>(between(rng, std::min<Day>(730, span - 1), std::min<Day>(8 * 365, span - 1)));
      const Day stop = end - static_cast<Day>(between(rng, 1, 30));
      for (double t = end - tenure; t < stop; t += 30.44)
        g.push_back({static_cast<Day>(t), amount, "monthly_giving", "direct_debit"});
      break;
    }
    case mid_annual: {
      const std::int64_t base = 100 * between(rng, 50, 300);
      const int years = static_cast<int>(between(rng, 3, 10));
      const int last = year_of(end - 1) - (day_of(year_of(end - 1), 12, 24) >= end ? 1 : 0);
      for (int y = last - years + 1; y <= last; ++y) {
        const Day d = day_of(y, 12, static_cast<unsigned>(between(rng, 1, 24)));
        if (d < start || d >= end || rng.uniform() < 0.15) continue;
        const auto cents = static_cast<std::int64_t>(static_cast<double>(base) * (0.8 + 0.4 * rng.uniform()));
        g.push_back({d, cents, "christmas_appeal_" + std::to_string(y), "mail"});
      }
      if (g.empty())  // every year skipped: keep the last one
        g.push_back({std::min<Day>(day_of(last, 12, 10), end - 1), base, "christmas_appeal_" + std::to_string(last), "mail"});
      break;
    }
    case lapsed_major: {
      const Day last = end - static_cast<Day>(between(rng, 2 * 365, std::min<Day>(5 * 365, span - 1)));
      const int n = static_cast<int>(between(rng, 1, 4));
      for (int k = 0; k < n; ++k) {
        const Day d = k == 0 ? last : last - static_cast<Day>(between(rng, 30, std::max<Day>(31, last - start)));
        if (d < start) continue;
        const auto cents = static_cast<std::int64_t>(50000.0 * std::pow(20.0, rng.uniform()));  // 500 to 10000
        g.push_back({d, cents, "major_gifts", rng.uniform() < 0.6 ? "cheque" : "bank_transfer"});
      }
      break;
    }
    case event_one_off: {
      const Day d = start + static_cast<Day>(rng.below(span));
      const bool gala = rng.uniform() < 0.4;
      g.push_back({d, 100 * between(rng, gala ? 40 : 15, gala ? 120 : 60),
                   (gala ? "gala_" : "fun_run_") + std::to_string(year_of(d)), "event"});
      break;
    }
    case new_small:
    case n_segments: {
      const Day first = end - static_cast<Day>(between(rng, 1, std::min<Day>(180, span)));
      const int n = static_cast<int>(between(rng, 1, 3));
      for (int k = 0; k < n; ++k) {
        const Day d = first + static_cast<Day>(k == 0 ? 0 : rng.below(end - first));
        g.push_back({d, 100 * between(rng, 5, 30), rng.uniform() < 0.5 ? "spring_appeal" : "emergency_appeal",
                     "online"});
      }
      break;
    }
  }
  std::sort(g.begin(), g.end(), [](const Gift& a, const Gift& b) { return a.day < b.day; });
  return g;
}

/// Monthly e-mail opens and clicks (probabilities by segment) over the last two years, and
/// attendance at the events of event givers.
void donor_events(Segment s, Rng& rng, Day end, const std::vector<Gift>& gifts, std::int64_t id,
                  LineBuilder& line, CsvOut& out, std::int64_t& rows) {
  static constexpr std::array<double, n_segments> kOpen = {0.6, 0.3, 0.05, 0.1, 0.7};
  static constexpr std::array<double, n_segments> kClick = {0.15, 0.1, 0.01, 0.02, 0.3};
  const Day from = s == new_small && !gifts.empty() ? gifts.front().day : end - 730;
  for (Day d = from + static_cast<Day>(rng.below(28)); d < end; d += 30) {
    if (rng.uniform() < kOpen[static_cast<std::size_t>(s)]) {
      line.integer(id).sep().day(d).sep().text("open").end_line(out);
      ++rows;
      if (rng.uniform() < kClick[static_cast<std::size_t>(s)] / kOpen[static_cast<std::size_t>(s)]) {
        line.integer(id).sep().day(d).sep().text("click").end_line(out);
        ++rows;
      }
    }
  }
  if (s == event_one_off)
    for (const Gift& g : gifts) {
      line.integer(id).sep().day(g.day).sep().text("attend").end_line(out);
      ++rows;
    }
}

}  // namespace

std::vector<std::string> synth_segment_names() {
  return {"loyal_monthly", "mid_annual", "lapsed_major", "event_one_off", "new_small"};
}

SynthDonorsSummary write_synth_donors(const std::string& gifts_path, const std::string& events_path,
                                      const std::string& truth_path, const SynthDonorsParams& p) {
  if (p.n_donors < 1) throw InputError("synth donors: -n " + std::to_string(p.n_donors) + ": must be at least 1");
  if (p.years < 3 || p.years > 50)
    throw InputError("synth donors: --years " + std::to_string(p.years) + ": must be between 3 and 50");
  if (!(p.refund_rate >= 0.0 && p.refund_rate < 1.0))
    throw InputError("synth donors: --refund-rate must be in [0, 1)");
  const Day end = static_cast<Day>(p.end.time_since_epoch().count());
  const Day start = end - p.years * 365;

  CsvOut gifts(gifts_path);
  std::unique_ptr<CsvOut> events, truth;
  if (!events_path.empty()) events = std::make_unique<CsvOut>(events_path);
  if (!truth_path.empty()) truth = std::make_unique<CsvOut>(truth_path);
  LineBuilder gl, el, tl;
  gl.text("donor_id,gift_date,amount,campaign,channel").end_line(gifts);
  if (events) el.text("donor_id,event_date,event_type").end_line(*events);
  if (truth) tl.text("donor_id,segment").end_line(*truth);

  SynthDonorsSummary summary;
  summary.segment_sizes.assign(n_segments, 0);
  const auto names = synth_segment_names();
  Rng rng(p.seed);
  for (std::int64_t i = 0; i < p.n_donors; ++i) {
    const std::int64_t id = 100001 + i;
    // Each donor draws from its own stream, so the events file does not change the gifts.
    Rng donor(rng.split());
    Rng donor_events_rng(donor.split());
    const Segment s = draw_segment(donor);
    ++summary.segment_sizes[static_cast<std::size_t>(s)];
    const std::vector<Gift> g = donor_gifts(s, donor, start, end);
    for (const Gift& gift : g) {
      gl.integer(id).sep().day(gift.day).sep().cents(gift.cents).sep().text(gift.campaign).sep().text(gift.channel).end_line(gifts);
      ++summary.gift_rows;
      if (donor.uniform() < p.refund_rate) {
        const Day d = gift.day + static_cast<Day>(between(donor, 1, 30));
        if (d < end) {
          gl.integer(id).sep().day(d).sep().cents(-gift.cents).sep().text(gift.campaign).sep().text(gift.channel).end_line(gifts);
          ++summary.gift_rows;
        }
      }
    }
    if (events) donor_events(s, donor_events_rng, end, g, id, el, *events, summary.event_rows);
    if (truth) tl.integer(id).sep().text(names[static_cast<std::size_t>(s)]).end_line(*truth);
  }
  gl.flush(gifts);
  gifts.commit();
  if (events) {
    el.flush(*events);
    events->commit();
  }
  if (truth) {
    tl.flush(*truth);
    truth->commit();
  }
  summary.donors = p.n_donors;
  return summary;
}

void write_synth_blobs(const std::string& path, const SynthBlobsParams& p, const std::string& centers_path) {
  if (p.n_samples < 1 || p.n_features < 1 || p.n_clusters < 1)
    throw InputError("synth blobs: -n, -d and -k must be at least 1");
  if (p.n_clusters > p.n_samples)
    throw InputError("synth blobs: -k " + std::to_string(p.n_clusters) + " is more than -n " +
                     std::to_string(p.n_samples) + "; every cluster needs a row");
  if (!(p.spread > 0.0) || !(p.std_dev > 0.0)) throw InputError("synth blobs: --spread and --std must be > 0");
  Rng rng(p.seed);
  const int k = p.n_clusters, d = p.n_features;
  Matrix<float> centres(k, d);
  for (std::int64_t i = 0; i < centres.size(); ++i)
    centres.data()[i] = static_cast<float>(p.spread * (2.0 * rng.uniform() - 1.0));
  Matrix<float> x(p.n_samples, d);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(p.n_samples));
  std::vector<std::int64_t> sizes(static_cast<std::size_t>(k), 0);
  Ids ids;
  ids.numeric.resize(labels.size());
  for (std::int64_t i = 0; i < p.n_samples; ++i) {
    // Every cluster gets a row first, then labels are drawn uniformly.
    const auto c = static_cast<std::int32_t>(i < k ? i : rng.below(k));
    labels[static_cast<std::size_t>(i)] = c;
    ++sizes[static_cast<std::size_t>(c)];
    for (int j = 0; j < d; ++j) x(i, j) = static_cast<float>(centres(c, j) + p.std_dev * normal(rng));
    ids.numeric[static_cast<std::size_t>(i)] = i;
  }
  std::vector<std::string> names;
  for (int j = 0; j < d; ++j) names.push_back("x" + std::to_string(j));
  const std::map<std::string, std::string> attributes = {
      {"source", "segforge-prep synth blobs"}, {"n_clusters", std::to_string(k)},
      {"seed", std::to_string(p.seed)},         {"spread", std::to_string(p.spread)},
      {"std", std::to_string(p.std_dev)},       {"as_of", "synthetic"}};
  if (!centers_path.empty()) {
    Model truth;
    truth.centroids = centres;
    truth.feature_names = names;
    truth.segment_sizes = sizes;
    for (int c = 0; c < k; ++c) truth.segment_names.push_back("blob " + std::to_string(c));
    truth.attributes = attributes;
    truth.attributes["algorithm"] = "ground truth";
    write_model(centers_path, truth);
  }
  FeatureExtras truth;
  truth.matrices.emplace("centers", centres.view());
  truth.int32s.emplace("labels", labels);
  write_features(path, x.view(), names, ids, {}, attributes, truth);
}

}  // namespace segforge::prep
