// --scaler-from: the training file's columns and scaling, and the new records' columns put in
// its order. Definitions: include/segforge/prep/scaler_from.hpp.

#include "segforge/prep/scaler_from.hpp"

#include <algorithm>
#include <cmath>

#include "segforge/error.hpp"

namespace segforge::prep {

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

/// What to do when the new data cannot make a training column. The names are rfm's
/// (rfm.hpp); a table's columns come from the training's names, so a missing one is caught
/// when the table is read.
std::string missing_hint(const std::string& name) {
  for (const char* e : {"opens_12m", "clicks_12m", "events_attended_12m", "days_since_engagement"})
    if (name == e) return "pass --events EVENTS.csv, as for the training file";
  if (name == "distinct_campaigns")
    return "the new gifts file needs a campaign column, as the training's had (--campaign-col)";
  if (name.starts_with("channel_share_"))
    return "the new gifts file needs a channel column, as the training's had (--channel-col)";
  return "prepare the new records from the same kinds of input, with the same options "
         "(--events, --attributes and --categorical, column flags), as the training file";
}

}  // namespace

TrainingScaling read_training_scaling(const std::string& path) {
  const FeatureFileInfo info = inspect_features(path);
  TrainingScaling t;
  t.path = path;
  t.names = info.feature_names;
  t.attributes = info.attributes;
  t.scaler = read_scaler(path);
  const std::string hint = "; pass the features file segforge-prep wrote for the training data";
  if (t.scaler.empty())
    throw InputError("--scaler-from " + path + ": the file has no /scaler, so there is no scaling to reuse" + hint);
  for (std::size_t j = 0; j < t.names.size(); ++j) {
    const std::string& tr = t.scaler.transform[j];
    if (tr != "identity" && tr != "log1p" && tr != "signed_log1p")
      throw InputError(path + ":/scaler/transform: unknown transform '" + tr + "' for feature '" + t.names[j] +
                       "'; expected identity, log1p or signed_log1p" + hint);
    const double scale = t.scaler.scale[j];
    if (!(scale > 0.0) || !std::isfinite(scale) || !std::isfinite(t.scaler.mean[j]))
      throw InputError(path + ":/scaler: feature '" + t.names[j] + "' has mean " + std::to_string(t.scaler.mean[j]) +
                       " and scale " + std::to_string(scale) + "; the scale must be a positive number" + hint);
  }
  const auto clip = t.attributes.find("clip_quantile");
  if (clip != t.attributes.end() && clip->second != "none" && t.scaler.clip_low.empty())
    throw InputError("--scaler-from " + path + ": the training data were winsorized (clip_quantile " + clip->second +
                     ") but the file has no /scaler/clip_low and clip_high (an older segforge-prep wrote it); "
                     "prepare the training data again and refit, so its clip bounds can be reapplied");
  return t;
}

AlignSummary align_to_training(RawFeatures& f, const TrainingScaling& t, const std::string& input) {
  const std::int64_t n = f.values.rows();
  const auto d_here = static_cast<std::int64_t>(f.names.size());
  const auto d = static_cast<std::int64_t>(t.names.size());
  auto group = [&](std::int64_t j) {
    return f.groups.empty() ? std::string() : f.groups[static_cast<std::size_t>(j)];
  };
  auto index_here = [&](const std::string& name) -> std::int64_t {
    const auto it = std::find(f.names.begin(), f.names.end(), name);
    return it == f.names.end() ? -1 : it - f.names.begin();
  };
  auto index_training = [&](const std::string& name) -> std::int64_t {
    const auto it = std::find(t.names.begin(), t.names.end(), name);
    return it == t.names.end() ? -1 : it - t.names.begin();
  };
  // The groups the new data has (a channel column, each categorical column).
  std::vector<std::string> groups_here;
  for (std::int64_t j = 0; j < d_here; ++j)
    if (const std::string g = group(j); !g.empty() && std::find(groups_here.begin(), groups_here.end(), g) == groups_here.end())
      groups_here.push_back(g);
  // Per group with merged levels, its "other" bucket: the group's last column (rfm appends it).
  std::map<std::string, std::int64_t> bucket;
  for (const auto& [g, merged] : f.levels_in_other)
    for (std::int64_t j = 0; j < d_here; ++j)
      if (group(j) == g) bucket[g] = j;

  AlignSummary a;
  RawFeatures out;
  out.values = Matrix<double>(n, d, 0.0);
  out.ids = std::move(f.ids);
  out.names = t.names;
  out.kinds.assign(static_cast<std::size_t>(d), FeatureKind::indicator);
  out.may_be_negative.assign(static_cast<std::size_t>(d), false);
  out.groups.assign(static_cast<std::size_t>(d), "");
  std::vector<bool> used(static_cast<std::size_t>(d_here), false);
  std::vector<std::int64_t> absent;  // training levels the new data has no column for
  std::vector<bool> filled(static_cast<std::size_t>(d), false);  // unseen levels added into
  auto add_column = [&](std::int64_t from, std::int64_t to) {
    for (std::int64_t r = 0; r < n; ++r) out.values(r, to) += f.values(r, from);
  };
  for (std::int64_t k = 0; k < d; ++k) {
    const auto kk = static_cast<std::size_t>(k);
    const std::string& name = t.names[kk];
    if (const std::int64_t j = index_here(name); j >= 0) {
      const auto jj = static_cast<std::size_t>(j);
      add_column(j, k);
      out.kinds[kk] = f.kinds[jj];
      out.may_be_negative[kk] = f.may_be_negative[jj];
      out.groups[kk] = group(j);
      used[jj] = true;
      continue;
    }
    const auto g = std::find_if(groups_here.begin(), groups_here.end(),
                                [&](const std::string& p) { return name.starts_with(p); });
    if (g == groups_here.end())
      throw InputError(input + ": the training file " + t.path + " (--scaler-from) has feature '" + name +
                       "', which cannot be made from the new data; " + missing_hint(name));
    out.groups[kk] = *g;
    absent.push_back(k);
  }
  std::vector<bool> row_dropped(static_cast<std::size_t>(n), false);
  for (std::int64_t j = 0; j < d_here; ++j) {
    const auto jj = static_cast<std::size_t>(j);
    const std::string g = group(j);
    const bool is_bucket = !g.empty() && bucket.count(g) > 0 && bucket.at(g) == j;
    const std::int64_t levels = is_bucket ? f.levels_in_other.at(g) : 1;
    const std::int64_t other = g.empty() ? -1 : index_training(g + "other");
    if (used[jj]) {
      if (is_bucket) a.levels_to_other += levels;  // matched the training's own "other" by name
      continue;
    }
    if (g.empty()) {
      a.dropped_columns.push_back(f.names[jj]);
    } else if (other >= 0) {
      add_column(j, other);
      filled[static_cast<std::size_t>(other)] = true;
      a.levels_to_other += levels;
    } else {
      a.levels_dropped += levels;
      for (std::int64_t r = 0; r < n; ++r)
        if (f.values(r, j) != 0.0) row_dropped[static_cast<std::size_t>(r)] = true;
    }
  }
  a.rows_with_dropped_levels = std::count(row_dropped.begin(), row_dropped.end(), true);
  for (std::int64_t k : absent)
    if (!filled[static_cast<std::size_t>(k)]) a.zero_columns.push_back(t.names[static_cast<std::size_t>(k)]);
  f = std::move(out);
  return a;
}

std::vector<SummaryItem> scaler_from_items(const TrainingScaling& t, const AlignSummary& a) {
  std::vector<SummaryItem> items;
  items.push_back({"scaler_from", "columns and scaling from", t.path});
  const std::pair<const char*, const char*> copied[] = {
      {"log", "log transforms"}, {"clip_quantile", "winsorized at quantile"}, {"scale", "scaling"}};
  for (const auto& [key, label] : copied)
    if (const auto it = t.attributes.find(key); it != t.attributes.end()) items.push_back({key, label, it->second});
  if (!a.zero_columns.empty())
    items.push_back({"zero_columns", "training levels absent here (0 columns)", join(a.zero_columns)});
  if (!a.dropped_columns.empty())
    items.push_back({"dropped_columns", "columns the training lacks, dropped", join(a.dropped_columns)});
  items.push_back({"levels_to_other", "unseen levels counted as <column>_other", std::to_string(a.levels_to_other)});
  items.push_back({"levels_dropped", "unseen levels dropped (no _other column)", std::to_string(a.levels_dropped)});
  if (a.levels_dropped > 0)
    items.push_back({"rows_with_dropped_levels", "rows with a dropped level", std::to_string(a.rows_with_dropped_levels)});
  return items;
}

}  // namespace segforge::prep
