#pragma once

#include <string>
#include <vector>

#include "segforge/prep/common.hpp"

namespace segforge::prep {

/// The counts of one input file, keys prefixed with `prefix` ("gifts_"); `dated` adds the
/// date rules.
void add_file_items(std::vector<SummaryItem>& items, const FileCounts& counts,
                    const std::string& prefix, bool dated);

}  // namespace segforge::prep
