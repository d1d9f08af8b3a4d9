#pragma once
// /feature_roles, shared by the features and model readers and writers (features.cpp).

#include <string>
#include <vector>

#include "hdf5_util.hpp"

namespace segforge::io {

/// The root's /feature_roles as text when present, else empty. InputError naming the file when
/// it is not a 1-D string dataset; its length and words are checked by validate_feature_roles.
std::vector<std::string> read_feature_roles(hid_t file, const std::string& path);
/// Writes `roles` as /feature_roles (UTF-8 strings) when not empty.
void write_feature_roles(hid_t file, const std::vector<std::string>& roles, const std::string& path);

}  // namespace segforge::io
