#pragma once
// The vocabulary of feature roles and audiences: the words stored in features.h5 and model.h5
// (/feature_roles, attribute `audience`) and accepted by --role and --audience. Header-only so
// that the file readers' checks (src/validate.cpp, in segforge_io) and the naming rules
// (src/segments/names.cpp, in segforge_core) share one list. The inference table and the
// naming rules are in segments.hpp and docs/segments.md.

#include <array>
#include <cctype>
#include <optional>
#include <string>

namespace segforge {

/// What a feature measures; the naming rules speak of roles, never of column names.
enum class FeatureRole { recency, tenure, frequency, monetary, engagement, other };

/// The stored words, in the enum's order.
inline constexpr std::array<const char*, 6> kFeatureRoleNames = {"recency",  "tenure",     "frequency",
                                                                 "monetary", "engagement", "other"};

/// "recency, tenure, frequency, monetary, engagement or other", for messages.
inline std::string feature_role_list() {
  return "recency, tenure, frequency, monetary, engagement or other";
}

/// "recency", "tenure", "frequency", "monetary", "engagement", "other".
inline std::string feature_role_name(FeatureRole role) { return kFeatureRoleNames[static_cast<std::size_t>(role)]; }

/// The inverse of feature_role_name (case-insensitive); none for an unknown word.
inline std::optional<FeatureRole> parse_feature_role(const std::string& word) {
  std::string w = word;
  for (auto& ch : w) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (std::size_t r = 0; r < kFeatureRoleNames.size(); ++r)
    if (w == kFeatureRoleNames[r]) return static_cast<FeatureRole>(r);
  return std::nullopt;
}

/// Who the segments are: donors (gifts, appeals) or customers (purchases, campaigns).
/// `automatic` (--audience auto) is resolved before naming: the stored audience, else
/// infer_audience() (segments.hpp).
enum class Audience { automatic, donors, customers };

/// "donors", "customers" ("auto" for automatic): the stored and the command-line word.
inline std::string audience_name(Audience a) {
  return a == Audience::donors ? "donors" : a == Audience::customers ? "customers" : "auto";
}

/// "donors", "customers" or "auto" (case-insensitive); none for another word.
inline std::optional<Audience> parse_audience(const std::string& word) {
  std::string w = word;
  for (auto& ch : w) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (w == "donors") return Audience::donors;
  if (w == "customers") return Audience::customers;
  if (w == "auto") return Audience::automatic;
  return std::nullopt;
}

}  // namespace segforge
