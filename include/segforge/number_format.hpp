#pragma once
// Numbers for people: the one formatter the report and the command-line summaries use for values
// an analyst reads (centres in original units, inertia, index values). printf's %g writes
// "6.62e+04" and "3.514e-08"; a fundraiser reads "66,200" and "0".

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace segforge {

/// `v` for an analyst: `significant` significant digits, but never more than `max_decimals`
/// decimals and never fewer than the integer digits (so 66234.6 is "66,235", not "6.623e+04",
/// and a value that rounds to zero at `max_decimals` decimals, such as 3.514e-08, is "0");
/// thousands separators; trailing zeros after the point dropped; no "-0"; "–" for NaN and Inf.
/// Examples (defaults): 66234.6 → "66,235", 12050 → "12,050", 1.23456 → "1.235",
/// 0.012345 → "0.0123", -0.5 → "-0.5", 3.514e-08 → "0", 21613.2799 → "21,613".
inline std::string analyst_number(double v, int significant = 4, int max_decimals = 4) {
  if (!std::isfinite(v)) return "–";
  const double a = std::fabs(v);
  int decimals = a > 0 ? significant - 1 - static_cast<int>(std::floor(std::log10(a))) : 0;
  decimals = std::clamp(decimals, 0, std::max(0, max_decimals));
  char buf[512];  // %.*f of the largest double: 309 integer digits plus the decimals
  std::snprintf(buf, sizeof buf, "%.*f", decimals, a);
  std::string digits = buf;
  std::string fraction;
  if (const auto point = digits.find('.'); point != std::string::npos) {
    fraction = digits.substr(point + 1);
    digits.resize(point);
    while (!fraction.empty() && fraction.back() == '0') fraction.pop_back();
  }
  if (fraction.empty() && digits.find_first_not_of('0') == std::string::npos) return "0";
  std::string out = v < 0 ? "-" : "";
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  if (!fraction.empty()) out += "." + fraction;
  return out;
}

}  // namespace segforge
