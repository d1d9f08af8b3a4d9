// Automatic segment names, descriptions and suggested outreach from the profiles' z-scores.
// The rules are written out in docs/segments.md and include/segforge/segments.hpp; they depend
// only on the profiles, the feature roles and the audience, so a model always gets the same names.

#include <algorithm>
#include <array>
#include <optional>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "segforge/error.hpp"
#include "segforge/number_format.hpp"
#include "segforge/segments.hpp"

namespace segforge {

namespace {

/// |z| at or above this is notable (half a standard deviation from the mean customer).
constexpr double kNotable = 0.5;
constexpr int kMaxDescriptors = 3;

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

bool contains_any(const std::string& s, std::initializer_list<const char*> words) {
  return std::any_of(words.begin(), words.end(), [&](const char* w) { return s.find(w) != std::string::npos; });
}

constexpr int kRoles = 5;  // recency, tenure, frequency, monetary, engagement

struct Descriptor {
  FeatureRole role;
  double z;
  std::string word;
};

// The report's formatter (segforge/number_format.hpp): "12,050" and "0", never "6.99e-09".
std::string format_value(double v) { return std::isfinite(v) ? analyst_number(v, 3) : "?"; }

std::string format_z(double z) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.1f", z);
  return buf;
}

std::string with_thousands(std::int64_t v) {
  std::string s = std::to_string(v), out;
  int count = 0;
  for (auto it = s.rbegin(); it != s.rend(); ++it) {
    if (count > 0 && count % 3 == 0 && *it != '-') out.insert(out.begin(), ',');
    out.insert(out.begin(), *it);
    ++count;
  }
  return out;
}

/// The descriptor words of one segment, before the noun (at most kMaxDescriptors, strongest
/// first by |z|, then put in slot order).
std::vector<Descriptor> descriptors(const std::array<std::optional<double>, kRoles>& z, bool donors) {
  std::vector<Descriptor> all;
  auto add = [&](FeatureRole role, const char* high, const char* low) {
    const auto& v = z[static_cast<int>(role)];
    if (!v) return;
    if (*v >= kNotable && high) all.push_back({role, *v, high});
    if (*v <= -kNotable && low) all.push_back({role, *v, low});
  };
  add(FeatureRole::recency, "Lapsed", "Active");
  add(FeatureRole::tenure, "Long-standing", "New");
  add(FeatureRole::monetary, donors ? "Major" : "High-Value", donors ? "Small" : "Low-Value");
  add(FeatureRole::frequency, "Loyal", "Occasional");
  add(FeatureRole::engagement, "Engaged", "Disengaged");
  // "New" already says recent: drop "Active" beside it.
  const bool is_new = std::any_of(all.begin(), all.end(), [](const Descriptor& d) { return d.word == "New"; });
  if (is_new) std::erase_if(all, [](const Descriptor& d) { return d.word == "Active"; });
  std::vector<Descriptor> kept = all;
  std::stable_sort(kept.begin(), kept.end(), [](const Descriptor& a, const Descriptor& b) { return std::abs(a.z) > std::abs(b.z); });
  if (kept.size() > kMaxDescriptors) kept.resize(kMaxDescriptors);
  // Word order: status (recency, tenure), value, frequency, engagement.
  auto slot = [](FeatureRole r) {
    switch (r) {
      case FeatureRole::recency: return 0;
      case FeatureRole::tenure: return 1;
      case FeatureRole::monetary: return 2;
      case FeatureRole::frequency: return 3;
      case FeatureRole::engagement: return 4;
      case FeatureRole::other: break;
    }
    return 5;
  };
  std::stable_sort(kept.begin(), kept.end(),
                   [&](const Descriptor& a, const Descriptor& b) { return slot(a.role) < slot(b.role); });
  return kept;
}

bool has_word(const std::vector<Descriptor>& ds, const std::string& word) {
  return std::any_of(ds.begin(), ds.end(), [&](const Descriptor& d) { return d.word == word; });
}

std::string phrase(const Descriptor& d, bool donors) {
  const char* verb = donors ? "give" : "buy";
  switch (d.role) {
    case FeatureRole::recency:
      return d.z > 0 ? std::string("last ") + (donors ? "gave" : "bought") + " long ago"
                     : std::string(donors ? "gave" : "bought") + " recently";
    case FeatureRole::tenure:
      return d.z > 0 ? std::string("have been ") + (donors ? "supporters" : "customers") + " for a long time"
                     : "joined recently";
    case FeatureRole::monetary: return std::string(verb) + (d.z > 0 ? " large amounts" : " small amounts");
    case FeatureRole::frequency: return std::string(verb) + (d.z > 0 ? " often" : " rarely");
    case FeatureRole::engagement: return d.z > 0 ? "engage a lot (opens, clicks, visits)" : "rarely engage";
    case FeatureRole::other: break;
  }
  return "";
}

std::string name_prefix(const std::string& feature_name) {
  const auto cut = feature_name.rfind('_');
  return cut == std::string::npos || cut == 0 ? std::string() : feature_name.substr(0, cut);
}

/// The one-hot block feature j belongs to ("channel" for "channel_2": prep names levels
/// <column>_<level>), or "" when it is not a level. Levels share the prefix, and their centres
/// (the segment's share of each level) lie in [0, 1] and sum to at most 1; two money columns
/// amount_web and amount_store share a prefix but not that.
std::string block_of(const SegmentProfile& p, const std::vector<std::string>& feature_names, std::size_t j) {
  const std::string prefix = name_prefix(feature_names[j]);
  if (prefix.empty()) return prefix;
  double sum = 0.0;
  int levels = 0;
  for (std::size_t k = 0; k < feature_names.size(); ++k) {
    if (name_prefix(feature_names[k]) != prefix) continue;
    // The share comes back through the inverse scaling in float32: 1 may read 1.0000001.
    const double share = p.centre_original[k];
    if (!(share >= -1e-6 && share <= 1.0 + 1e-6)) return "";
    sum += share;
    ++levels;
  }
  return levels >= 2 && sum <= 1.0 + 1e-5 ? prefix : "";
}

/// "High income, Low age": the two notable features of largest |z| (none notable: none). A
/// second level of a one-hot block already named says nothing new ("High channel_2" implies
/// "Low channel_1"), so the next feature is named instead.
std::optional<std::string> feature_words(const SegmentProfile& p, const std::vector<std::string>& feature_names) {
  std::string words;
  int named = 0;
  std::set<std::string> blocks;
  for (int j : p.top_features) {
    if (named == 2 || std::abs(p.z_scores[j]) < kNotable) break;
    const std::string block = block_of(p, feature_names, static_cast<std::size_t>(j));
    if (!block.empty() && !blocks.insert(block).second) continue;
    // "High channel_2" reads better than "Low channel_1": a block's notable high level, if any.
    int say = j;
    if (!block.empty() && p.z_scores[j] < 0)
      for (std::size_t k = 0; k < feature_names.size(); ++k)
        if (name_prefix(feature_names[k]) == block && p.z_scores[k] >= kNotable &&
            (say == j || p.z_scores[k] > p.z_scores[static_cast<std::size_t>(say)]))
          say = static_cast<int>(k);
    words += std::string(named ? ", " : "") + (p.z_scores[say] > 0 ? "High " : "Low ") + feature_names[say];
    ++named;
  }
  if (named == 0) return std::nullopt;
  return words;
}

std::string outreach(const std::vector<Descriptor>& ds, bool donors, bool rfm) {
  if (!rfm) return "Tailor the message to what sets this segment apart (its distinctive features above); test it against a control group.";
  const bool lapsed = has_word(ds, "Lapsed"), fresh = has_word(ds, "New");
  const bool major = has_word(ds, "Major") || has_word(ds, "High-Value");
  const bool small = has_word(ds, "Small") || has_word(ds, "Low-Value");
  const bool loyal = has_word(ds, "Loyal"), occasional = has_word(ds, "Occasional");
  const bool engaged = has_word(ds, "Engaged"), disengaged = has_word(ds, "Disengaged");
  if (donors) {
    if (lapsed && major) return "Personal win-back: a call or letter from a gift officer that recognises past generosity and asks what changed.";
    if (lapsed) return "Reactivation appeal with a modest ask and an impact update; suppress after 2-3 unanswered contacts.";
    if (fresh) return "Welcome journey: a fast thank-you, an impact story and an invitation to a second gift within 90 days.";
    if (major) return "Stewardship: personal thanks, impact reports and events; consider a major-gift or legacy conversation.";
    if (loyal) return "Recognise their loyalty; ask for an upgrade or a move to monthly giving.";
    if (engaged && small) return "Convert engagement: an ask tied to the content they open; test a higher ask.";
    if (disengaged) return "Lower the contact frequency and try another channel before suppressing.";
    if (small || occasional) return "Low-cost digital appeals; test mid-level asks.";
    return "Standard appeal cadence; watch for movement between segments.";
  }
  if (lapsed && major) return "Win-back offer from an account manager for past high spenders; ask what changed.";
  if (lapsed) return "Reactivation campaign with a time-limited incentive; suppress after 2-3 unanswered contacts.";
  if (fresh) return "Onboarding series: welcome, best-sellers, and an incentive for the second purchase.";
  if (major) return "VIP treatment: early access, loyalty rewards, personal service.";
  if (loyal) return "Loyalty programme and cross-sell recommendations.";
  if (engaged && small) return "Convert engagement: personalised offers based on what they browse and open.";
  if (disengaged) return "Reduce contact frequency; try another channel or a preference centre.";
  if (small || occasional) return "Low-cost automated campaigns; test bundles and thresholds for free shipping.";
  return "Standard campaign cadence; watch for movement between segments.";
}

}  // namespace

namespace {
using R = FeatureRole;
// First match wins, so the more specific patterns come first: "days_since_first_gift" is
// tenure before "days_since" makes it recency; "totalmonths" (KDD-98: months since the last
// gift) is recency before any money pattern. Income is wealth, not value to the organisation,
// so it has no money pattern and stays `other`.
constexpr RoleRule kRoleRules[] = {
    {R::other, "channel_share"},  // a share of gifts by channel (channel_share_event is no event)
    {R::recency, "recen"},        {R::recency, "since_last"},    {R::recency, "last_gift"},
    {R::recency, "last_purchase"}, {R::recency, "last_order"},   {R::recency, "lapse"},
    {R::recency, "totalmonths"},  {R::recency, "months_since"},
    {R::tenure, "tenure"},        {R::tenure, "first_gift"},     {R::tenure, "since_first"},
    {R::tenure, "first_purchase"}, {R::tenure, "age_days"},      {R::tenure, "member_since"},
    {R::tenure, "customer_since"}, {R::tenure, "months_active"},
    {R::recency, "days_since"},
    {R::frequency, "freq"},       {R::frequency, "count"},       {R::frequency, "n_gifts"},
    {R::frequency, "num_"},       {R::frequency, "number_of"},   {R::frequency, "orders"},
    {R::frequency, "transactions"}, {R::frequency, "purchases"}, {R::frequency, "gifts_"},
    {R::monetary, "monet"},       {R::monetary, "amount"},       {R::monetary, "amnt"},
    {R::monetary, "value"},       {R::monetary, "spend"},        {R::monetary, "revenue"},
    {R::monetary, "sum_"},        {R::monetary, "gift"},         {R::monetary, "largest"},
    {R::monetary, "avg_"},        {R::monetary, "mean"},         {R::monetary, "donation"},
    {R::monetary, "mnt"},
    {R::engagement, "open"},      {R::engagement, "click"},      {R::engagement, "engag"},
    {R::engagement, "visit"},     {R::engagement, "session"},    {R::engagement, "event"},
    {R::engagement, "email"},     {R::engagement, "response"},   {R::engagement, "accepted"},
    {R::engagement, "attend"},    {R::engagement, "volunteer"},
};

constexpr NameWord kNameWords[] = {
    {"Lapsed", R::recency, +1},        {"Active", R::recency, -1},
    {"Long-standing", R::tenure, +1},  {"New", R::tenure, -1},
    {"Major", R::monetary, +1},        {"High-Value", R::monetary, +1},
    {"Small", R::monetary, -1},        {"Low-Value", R::monetary, -1},
    {"Loyal", R::frequency, +1},       {"Occasional", R::frequency, -1},
    {"Engaged", R::engagement, +1},    {"Disengaged", R::engagement, -1},
};
}  // namespace

std::span<const RoleRule> role_rules() { return kRoleRules; }
std::span<const NameWord> name_words() { return kNameWords; }

FeatureRole feature_role(const std::string& feature_name) {
  const std::string s = lower(feature_name);
  for (const RoleRule& r : kRoleRules)
    if (s.find(r.pattern) != std::string::npos) return r.role;
  return FeatureRole::other;
}

std::vector<FeatureRole> feature_roles(const std::vector<std::string>& feature_names,
                                       const std::vector<std::string>& given) {
  std::vector<FeatureRole> out;
  for (std::size_t j = 0; j < feature_names.size(); ++j) {
    std::optional<FeatureRole> r;
    if (given.size() == feature_names.size() && !given[j].empty()) r = parse_feature_role(given[j]);
    out.push_back(r.value_or(feature_role(feature_names[j])));
  }
  return out;
}

std::vector<std::string> feature_role_names(const std::vector<FeatureRole>& roles) {
  std::vector<std::string> out;
  out.reserve(roles.size());
  for (FeatureRole r : roles) out.push_back(feature_role_name(r));
  return out;
}

RoleSetting parse_role_setting(const std::string& setting) {
  const auto eq = setting.rfind('=');
  if (eq == std::string::npos || eq == 0)
    throw InputError("--role " + setting + ": write COLUMN=ROLE, e.g. --role totalmonths=recency");
  const std::string word = setting.substr(eq + 1);
  const auto role = parse_feature_role(word);
  if (!role) throw InputError("--role " + setting + ": unknown role '" + word + "'; use " + feature_role_list());
  return {setting.substr(0, eq), *role};
}

std::vector<bool> apply_role_settings(const std::vector<std::string>& settings,
                                      const std::vector<std::string>& feature_names,
                                      std::vector<FeatureRole>& roles) {
  std::vector<bool> set(feature_names.size(), false);
  for (const std::string& setting : settings) {
    const RoleSetting rs = parse_role_setting(setting);
    std::size_t j = 0;
    while (j < feature_names.size() && lower(feature_names[j]) != lower(rs.column)) ++j;
    if (j == feature_names.size()) {
      std::string list;
      for (const auto& f : feature_names) list += (list.empty() ? "" : ", ") + f;
      throw InputError("--role " + setting + ": no feature '" + rs.column + "'; the features are " + list);
    }
    roles[j] = rs.role;
    set[j] = true;
  }
  return set;
}

Audience infer_audience(const std::vector<std::string>& feature_names) {
  const bool gifts = std::any_of(feature_names.begin(), feature_names.end(),
                                 [](const std::string& f) { return contains_any(lower(f), {"gift", "donat"}); });
  return gifts ? Audience::donors : Audience::customers;
}

Audience resolve_audience(Audience requested, const std::string& stored,
                          const std::vector<std::string>& feature_names) {
  if (requested != Audience::automatic) return requested;
  if (const auto a = parse_audience(stored); a && *a != Audience::automatic) return *a;
  return infer_audience(feature_names);
}

void make_names_unique(std::vector<std::string>& names) {
  std::map<std::string, int> seen;
  std::set<std::string> taken(names.begin(), names.end());
  for (auto& name : names) {
    const int n = ++seen[name];
    if (n == 1) continue;
    int suffix = n;
    std::string candidate = name + " " + std::to_string(suffix);
    while (taken.count(candidate)) candidate = name + " " + std::to_string(++suffix);
    taken.insert(candidate);
    name = candidate;
  }
}

std::vector<SegmentEntry> name_segments(const std::vector<SegmentProfile>& profiles,
                                        const std::vector<std::string>& feature_names,
                                        const std::vector<FeatureRole>& given_roles, Audience audience) {
  const auto d = feature_names.size();
  const std::vector<FeatureRole> roles =
      given_roles.size() == d ? given_roles : feature_roles(feature_names);
  bool rfm = false;
  for (std::size_t j = 0; j < d; ++j) rfm = rfm || roles[j] != FeatureRole::other;
  const bool donors = resolve_audience(audience, "", feature_names) == Audience::donors;
  const std::string noun = donors ? "Donors" : "Customers";

  std::vector<SegmentEntry> out;
  std::vector<std::vector<Descriptor>> used(profiles.size());
  for (std::size_t s = 0; s < profiles.size(); ++s) {
    const SegmentProfile& p = profiles[s];
    SegmentEntry e;
    std::string detail;
    // The most distinctive features, in original units, for the description.
    for (int j : p.top_features) {
      if (!detail.empty()) detail += ", ";
      detail += feature_names[j] + " " + format_value(p.centre_original[j]) + " (z " + format_z(p.z_scores[j]) + ")";
    }
    const std::string head = with_thousands(p.size) + " " + lower(noun) + " (" +
                             format_value(std::round(p.share * 1000.0) / 10.0) + "%)";
    if (rfm) {
      std::array<std::optional<double>, kRoles> z;
      std::array<int, kRoles> count{};
      std::array<bool, kRoles> high{}, low{};
      for (std::size_t j = 0; j < d; ++j) {
        const int r = static_cast<int>(roles[j]);
        if (r >= kRoles) continue;
        z[r] = z[r].value_or(0.0) + p.z_scores[j];
        ++count[r];
        high[r] = high[r] || p.z_scores[j] >= kNotable;
        low[r] = low[r] || p.z_scores[j] <= -kNotable;
      }
      // A role whose features are notable in opposite directions (income up, spending down;
      // web visits down, campaign responses up) has no one word: it says nothing.
      for (int r = 0; r < kRoles; ++r) {
        if (z[r]) *z[r] /= count[r];
        if (high[r] && low[r]) z[r].reset();
      }
      used[s] = descriptors(z, donors);
      std::string words;
      std::vector<std::string> phrases;
      for (const auto& ds : used[s]) {
        words += ds.word + " ";
        phrases.push_back(phrase(ds, donors));
      }
      e.name = words + noun;
      if (used[s].empty()) e.name = feature_words(p, feature_names).value_or("Typical " + noun);
      std::string said;
      for (std::size_t i = 0; i < phrases.size(); ++i)
        said += (i == 0 ? "" : (i + 1 == phrases.size() ? " and " : ", ")) + phrases[i];
      const bool typical = e.name == "Typical " + noun;
      e.description = head + (!said.empty() ? " who " + said
                              : typical    ? ", close to the average on every feature"
                                           : ", not set apart by recency, frequency, value or engagement") +
                      ". Most distinctive: " + detail + ".";
    } else {
      e.name = feature_words(p, feature_names).value_or("Average profile");
      e.description = head + ". Most distinctive: " + detail + ".";
    }
    e.outreach = outreach(used[s], donors, rfm);
    out.push_back(std::move(e));
  }

  // Uniqueness: segments that share a name get their strongest feature not yet named.
  std::map<std::string, int> count;
  for (const auto& e : out) ++count[e.name];
  for (std::size_t s = 0; s < out.size(); ++s) {
    if (count[out[s].name] < 2) continue;
    const SegmentProfile& p = profiles[s];
    std::vector<int> order(d);
    for (std::size_t j = 0; j < d; ++j) order[j] = static_cast<int>(j);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return std::abs(p.z_scores[a]) > std::abs(p.z_scores[b]); });
    for (int j : order) {
      const bool role_named = std::any_of(used[s].begin(), used[s].end(), [&](const Descriptor& x) { return x.role == roles[j]; });
      const bool feature_named = out[s].name.find(feature_names[j]) != std::string::npos;
      if (role_named || feature_named || p.z_scores[j] == 0.0) continue;
      out[s].name += std::string(" (") + (p.z_scores[j] > 0 ? "high " : "low ") + feature_names[j] + ")";
      break;
    }
  }
  std::vector<std::string> names;
  for (const auto& e : out) names.push_back(e.name);
  make_names_unique(names);
  for (std::size_t s = 0; s < out.size(); ++s) out[s].name = names[s];
  return out;
}

}  // namespace segforge
