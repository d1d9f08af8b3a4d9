#pragma once
// Per-donor state of `rfm`, shared by the gifts pass (rfm.cpp) and the events and attributes
// passes (rfm_extras.cpp). Everything here grows with donors, not with rows.

#include <algorithm>
#include <climits>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "dates.hpp"
#include "fields.hpp"
#include "segforge/prep/rfm.hpp"

namespace segforge::prep {

/// Hash for maps keyed by std::string and looked up by std::string_view without a copy.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIndex = std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>>;

/// Dense indices for distinct strings (donor ids, campaigns, channels, levels), in order of
/// first add. Open addressing over 8-byte slots (the hash's top half and index + 1) with the
/// strings and their hashes kept once, in order: profiling showed the node-based map's
/// allocations and rehashes as a tenth of `rfm` with 1.5M donors.
class Interner {
 public:
  /// The index of `s`, added when new. Exports repeat a value on consecutive rows (a donor's
  /// gifts, a campaign): the last one is compared before hashing.
  std::int32_t add(std::string_view s) {
    if (last_ >= 0 && names_[static_cast<std::size_t>(last_)] == s) return last_;
    return last_ = add(s, text_hash(s));
  }
  /// As add, with `h` = text_hash(s) computed by the caller (hash(i) of another Interner).
  std::int32_t add(std::string_view s, std::uint64_t h) {
    if (2 * (names_.size() + 1) > slots_.size()) grow();
    const std::size_t mask = slots_.size() - 1;
    const std::uint64_t tag = h & ~std::uint64_t{0xFFFFFFFF};
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const std::uint64_t slot = slots_[i];
      if (slot == 0) {
        const auto index = static_cast<std::int32_t>(names_.size());
        slots_[i] = tag | (static_cast<std::uint64_t>(index) + 1);
        names_.emplace_back(s);
        hashes_.push_back(h);
        return index;
      }
      if ((slot & ~std::uint64_t{0xFFFFFFFF}) == tag) {
        const auto index = static_cast<std::int32_t>((slot & 0xFFFFFFFF) - 1);
        if (names_[static_cast<std::size_t>(index)] == s) return index;
      }
    }
  }
  /// -1 when absent.
  std::int32_t find(std::string_view s) const {
    if (slots_.size() == 0) return -1;
    const std::uint64_t h = text_hash(s);
    const std::size_t mask = slots_.size() - 1;
    const std::uint64_t tag = h & ~std::uint64_t{0xFFFFFFFF};
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const std::uint64_t slot = slots_[i];
      if (slot == 0) return -1;
      if ((slot & ~std::uint64_t{0xFFFFFFFF}) == tag) {
        const auto index = static_cast<std::int32_t>((slot & 0xFFFFFFFF) - 1);
        if (names_[static_cast<std::size_t>(index)] == s) return index;
      }
    }
  }
  /// Starts loading the slot of a string with hash `h` (for an add a little later).
  void prefetch(std::uint64_t h) const {
    if (slots_.size() > 0) __builtin_prefetch(slots_.data() + (h & (slots_.size() - 1)));
  }
  const std::string& name(std::int32_t i) const { return names_[static_cast<std::size_t>(i)]; }
  std::uint64_t hash(std::int32_t i) const { return hashes_[static_cast<std::size_t>(i)]; }
  std::int32_t size() const { return static_cast<std::int32_t>(names_.size()); }
  /// Empty again, keeping the table's capacity.
  void clear() {
    slots_.clear();
    names_.clear();
    hashes_.clear();
    last_ = -1;
  }

 private:
  void grow() {
    WordTable slots(std::max<std::size_t>(64, 2 * slots_.size()));
    const std::size_t mask = slots.size() - 1;
    for (std::size_t index = 0; index < names_.size(); ++index) {
      const std::uint64_t h = hashes_[index];
      std::size_t i = h & mask;
      while (slots[i] != 0) i = (i + 1) & mask;
      slots[i] = (h & ~std::uint64_t{0xFFFFFFFF}) | (index + 1);
    }
    slots_ = std::move(slots);
  }

  WordTable slots_;
  std::vector<std::string> names_;
  std::vector<std::uint64_t> hashes_;
  std::int32_t last_ = -1;
};

struct Donor {
  Day first_gift = INT32_MAX;
  Day last_gift = INT32_MIN;
  std::int32_t gifts = 0;
  std::int32_t refunds = 0;
  std::int32_t zero_transactions = 0;
  std::int32_t gifts_12m = 0;
  double total = 0.0;  // every transaction, refunds included
  double largest = 0.0;
  double amount_12m = 0.0;
  double amount_prev_12m = 0.0;
  std::int32_t opens_12m = 0;
  std::int32_t clicks_12m = 0;
  std::int32_t attended_12m = 0;
  Day last_engagement = INT32_MIN;
  std::vector<std::int32_t> campaigns;  // sorted, distinct
  std::vector<std::pair<std::int32_t, std::int32_t>> channels;  // (channel, gifts)
};

/// A transaction: one row, or the rows sharing a transaction id and a donor.
struct Transaction {
  std::int32_t donor = 0;
  Day day = 0;
  double net = 0.0;
  double gross = 0.0;  // sum of |row amounts|: the scale of "zero" for the net
  std::int32_t campaign = -1;
  std::int32_t channel = -1;
  std::int64_t line = 0;  // the CSV line of its last row, for messages
};

/// Everything the passes build.
struct RfmState {
  Day as_of = 0;
  Interner donor_ids;
  std::vector<Donor> donors;
  Interner campaigns;
  Interner channels;
  bool has_campaign = false;
  bool has_channel = false;
  RfmSummary summary;
  /// When set, each transaction is passed here as it is folded in (for_each_transaction).
  std::function<void(const CleanTransaction&)> on_transaction;
  // Events.
  bool has_events = false;
  Day first_event = INT32_MAX;
  // Attributes: per categorical column, per donor, the level (-1: no attributes row).
  std::vector<std::string> categorical;
  std::vector<Interner> levels;
  std::vector<std::vector<std::int32_t>> donor_levels;
};

/// The events and attributes passes (rfm_extras.cpp); they need as-of and the donors.
void read_events(const RfmParams& params, RfmState& state);
void read_attributes(const RfmParams& params, RfmState& state);

/// The column names recognised for a donor id in every file.
const std::vector<std::string>& id_column_names();

}  // namespace segforge::prep
