// Feature roles and the audience as data (issue 14.4): segforge-prep infers, prints, sets
// (--role, --audience) and stores them (/feature_roles, attribute audience); fit names from the
// stored roles and copies them into the model; report names from the model's; the readers
// refuse bad values; --scaler-from reuses them. References: roles and names worked out by hand
// from docs/segments.md for tables built here.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/validate.hpp"
#include "test_prep_support.hpp"

using namespace segforge;
using segforge::test::PrepDir;
using segforge::test::run_binary;
using segforge::test::run_prep;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// 40 customers in two equal groups that differ only in Income (z = ±1 by hand: two equal
/// groups at mean ± d have z = ±1); Age is spread alike in both (z = 0). Under Income's inferred
/// role (other: income is wealth, docs/segments.md) the names are the feature words "High
/// Income" / "Low Income"; as monetary they are "High-Value Customers" / "Low-Value Customers".
std::string customers_csv() {
  std::string text = "customer_id,Income,Age\n";
  for (int i = 0; i < 40; ++i) {
    const int income = i < 20 ? 90000 + 1000 * (i % 2) : 30000 + 1000 * (i % 2);
    text += "C" + std::to_string(1000 + i) + "," + std::to_string(income) + "," + std::to_string(30 + 10 * (i % 4)) + "\n";
  }
  return text;
}

std::vector<std::string> segment_names(const std::string& model) {
  std::vector<std::string> names = read_model(model).segment_names;
  std::sort(names.begin(), names.end());
  return names;
}

/// A features file [n x 2] with the given names and roles (empty: no /feature_roles, as an older
/// segforge-prep wrote it) and attributes; two groups at ±1 on column 0 (z = ±1).
std::string write_two_groups(const PrepDir& dir, const std::string& file, const std::vector<std::string>& names,
                             const std::vector<std::string>& roles, const std::map<std::string, std::string>& attributes = {}) {
  std::vector<float> v;
  for (int i = 0; i < 40; ++i) {
    v.push_back(i < 20 ? 1.0f : -1.0f);
    v.push_back(0.2f * (static_cast<float>(i % 4) - 1.5f));  // far less spread: K=2 splits on column 0
  }
  const Matrix<float> x(40, 2, v);
  write_features(dir.file(file), x.view(), names, {}, {}, attributes, {}, roles);
  return dir.file(file);
}

TEST(Roles, RfmPrintsAndStoresTheInferredRolesAndAudience) {
  PrepDir dir;
  ASSERT_EQ(run_prep("synth donors -n 600 -o " + dir.file("gifts.csv") + " --events " + dir.file("events.csv"), dir).status, 0);
  const auto out = run_prep("rfm " + dir.file("gifts.csv") + " --events " + dir.file("events.csv") + " -o " + dir.file("f.h5"), dir);
  ASSERT_EQ(out.status, 0) << out.output;
  const Features f = read_features(dir.file("f.h5"));
  ASSERT_EQ(f.feature_roles.size(), f.feature_names.size());
  // By hand from the table in docs/segments.md (first matching row wins).
  const std::map<std::string, std::string> expected = {
      {"recency_days", "recency"},       {"tenure_days", "tenure"},         {"frequency_gifts", "frequency"},
      {"gifts_12m", "frequency"},        {"monetary_total", "monetary"},    {"largest_gift", "monetary"},
      {"clicks_12m", "engagement"},      {"opens_12m", "engagement"},       {"days_since_engagement", "recency"},
      {"channel_share_event", "other"},  {"trend_12m_ratio", "other"}};
  int checked = 0;
  for (std::size_t j = 0; j < f.feature_names.size(); ++j) {
    const auto it = expected.find(f.feature_names[j]);
    if (it == expected.end()) continue;
    EXPECT_EQ(f.feature_roles[j], it->second) << f.feature_names[j];
    ++checked;
  }
  EXPECT_GE(checked, 9) << "the rfm feature names changed; update the expected roles";
  EXPECT_EQ(f.audience, "donors") << "rfm's feature names mention gifts";
  EXPECT_NE(out.output.find("feature roles"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("recency     recency_days"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("donors (inferred"), std::string::npos) << out.output;
  EXPECT_EQ(out.output.find("(set)"), std::string::npos) << "nothing was set";
}

TEST(Roles, TableRoleSetsOneAndFitsNamesFollowIt) {
  PrepDir dir;
  const std::string csv = dir.write("customers.csv", customers_csv());
  // Inferred: Income and Age are `other`; no gift in a name, so the audience is customers.
  auto plain = run_prep("table " + csv + " -o " + dir.file("plain.h5"), dir);
  ASSERT_EQ(plain.status, 0) << plain.output;
  const Features fp = read_features(dir.file("plain.h5"));
  EXPECT_EQ(fp.feature_names, (std::vector<std::string>{"Income", "Age"}));
  EXPECT_EQ(fp.feature_roles, (std::vector<std::string>{"other", "other"}));
  EXPECT_EQ(fp.audience, "customers");

  auto set = run_prep("table " + csv + " -o " + dir.file("set.h5") + " --role income=monetary", dir);
  ASSERT_EQ(set.status, 0) << set.output;
  EXPECT_NE(set.output.find("monetary    Income (set)"), std::string::npos) << set.output;
  const Features fs = read_features(dir.file("set.h5"));
  EXPECT_EQ(fs.feature_roles, (std::vector<std::string>{"monetary", "other"}));

  auto a = run_binary(SEGFORGE_BINARY, "fit " + dir.file("plain.h5") + " -k 2 -o " + dir.file("plain_model.h5"), dir);
  ASSERT_EQ(a.status, 0) << a.output;
  EXPECT_EQ(segment_names(dir.file("plain_model.h5")), (std::vector<std::string>{"High Income", "Low Income"}));
  auto b = run_binary(SEGFORGE_BINARY, "fit " + dir.file("set.h5") + " -k 2 -o " + dir.file("set_model.h5"), dir);
  ASSERT_EQ(b.status, 0) << b.output;
  EXPECT_EQ(segment_names(dir.file("set_model.h5")),
            (std::vector<std::string>{"High-Value Customers", "Low-Value Customers"}));
  // The model keeps the roles and the audience it was named with.
  const Model m = read_model(dir.file("set_model.h5"));
  EXPECT_EQ(m.feature_roles, (std::vector<std::string>{"monetary", "other"}));
  EXPECT_EQ(m.attributes.at("audience"), "customers");
  // fit's own --role and --audience go on top of the stored ones, and the model records them.
  auto c = run_binary(SEGFORGE_BINARY, "fit " + dir.file("plain.h5") + " -k 2 -o " + dir.file("c_model.h5") +
                                           " --role Income=monetary --audience donors", dir);
  ASSERT_EQ(c.status, 0) << c.output;
  EXPECT_EQ(segment_names(dir.file("c_model.h5")), (std::vector<std::string>{"Major Donors", "Small Donors"}));
  const Model mc = read_model(dir.file("c_model.h5"));
  EXPECT_EQ(mc.feature_roles, (std::vector<std::string>{"monetary", "other"}));
  EXPECT_EQ(mc.attributes.at("audience"), "donors");
}

TEST(Roles, TableAudienceIsStoredAndUsed) {
  PrepDir dir;
  const std::string csv = dir.write("customers.csv", customers_csv());
  auto out = run_prep("table " + csv + " -o " + dir.file("f.h5") + " --role Income=monetary --audience donors", dir);
  ASSERT_EQ(out.status, 0) << out.output;
  EXPECT_NE(out.output.find("donors (set)"), std::string::npos) << out.output;
  EXPECT_EQ(read_features(dir.file("f.h5")).audience, "donors");
  auto fit = run_binary(SEGFORGE_BINARY, "fit " + dir.file("f.h5") + " -k 2 -o " + dir.file("m.h5"), dir);
  ASSERT_EQ(fit.status, 0) << fit.output;
  EXPECT_EQ(segment_names(dir.file("m.h5")), (std::vector<std::string>{"Major Donors", "Small Donors"}));
}

TEST(Roles, AFileWithoutStoredRolesGetsInferredOnes) {
  PrepDir dir;
  // An older segforge-prep: no /feature_roles, no audience. recency_days is recency, and
  // monetary_total monetary (docs/segments.md); no gift in a name: customers.
  const std::string f = write_two_groups(dir, "old.h5", {"monetary_total", "recency_days"}, {});
  EXPECT_TRUE(read_features(f).feature_roles.empty());
  auto fit = run_binary(SEGFORGE_BINARY, "fit " + f + " -k 2 -o " + dir.file("m.h5"), dir);
  ASSERT_EQ(fit.status, 0) << fit.output;
  const Model m = read_model(dir.file("m.h5"));
  EXPECT_EQ(m.feature_roles, (std::vector<std::string>{"monetary", "recency"}));
  EXPECT_EQ(m.attributes.at("audience"), "customers");
  EXPECT_EQ(segment_names(dir.file("m.h5")), (std::vector<std::string>{"High-Value Customers", "Low-Value Customers"}));
  // Stored roles win over inference: the same names, monetary_total stored as `other`.
  const std::string g = write_two_groups(dir, "stored.h5", {"monetary_total", "recency_days"}, {"other", "recency"});
  auto fit2 = run_binary(SEGFORGE_BINARY, "fit " + g + " -k 2 -o " + dir.file("m2.h5"), dir);
  ASSERT_EQ(fit2.status, 0) << fit2.output;
  EXPECT_EQ(segment_names(dir.file("m2.h5")), (std::vector<std::string>{"High monetary_total", "Low monetary_total"}));
}

TEST(Roles, ReportNamesFromTheModelsRoles) {
  PrepDir dir;
  // Features without roles (Income inferred `other`); a model without names but with roles.
  const std::string f = write_two_groups(dir, "f.h5", {"Income", "Age"}, {});
  Model model;
  model.centroids = Matrix<float>(2, 2, std::vector<float>{1.0f, 0.0f, -1.0f, 0.0f});
  model.feature_names = {"Income", "Age"};
  const std::string plotly = dir.write("plotly.js", "/* charts are not looked at here */");
  auto report = [&](const std::string& name, const Model& m) {
    write_model(dir.file(name + ".h5"), m);
    auto r = run_binary(SEGFORGE_BINARY, "report " + dir.file(name + ".h5") + " --features " + f + " -o " +
                                             dir.file(name + ".html") + " --plotly " + plotly, dir);
    EXPECT_EQ(r.status, 0) << r.output;
    return read_text(dir.file(name + ".html"));
  };
  const std::string inferred = report("inferred", model);
  EXPECT_NE(inferred.find("High Income"), std::string::npos);
  model.feature_roles = {"monetary", "other"};
  model.attributes["audience"] = "donors";
  const std::string stored = report("stored", model);
  EXPECT_NE(stored.find("Major Donors"), std::string::npos);
  EXPECT_EQ(stored.find("High Income"), std::string::npos);
}

TEST(Roles, BadStoredRolesAndAudienceAreRefused) {
  PrepDir dir;
  struct Case {
    std::vector<std::string> roles;
    std::map<std::string, std::string> attributes;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"monetary", "wealth"}, {}, "/feature_roles: row 1 (0-based) is 'wealth', not a role"},
      {{"monetary", ""}, {}, "/feature_roles: row 1 (0-based) is '', not a role"},
      {{"monetary", "other"}, {{"audience", "martians"}}, "attribute audience is 'martians'; use donors or customers"},
      {{"monetary", "other"}, {{"audience", "auto"}}, "attribute audience is 'auto'"},
  };
  for (const auto& c : cases) {
    const std::string f = write_two_groups(dir, "bad.h5", {"a", "b"}, c.roles, c.attributes);
    try {
      (void)read_features(f);
      ADD_FAILURE() << "accepted " << c.message;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos) << e.what();
    }
    auto fit = run_binary(SEGFORGE_BINARY, "fit " + f + " -k 2 -o " + dir.file("m.h5"), dir);
    EXPECT_EQ(fit.status, 2) << fit.output;
    EXPECT_NE(fit.output.find(c.message), std::string::npos) << fit.output;
    EXPECT_FALSE(std::filesystem::exists(dir.file("m.h5")));
  }
  // A model's roles are checked alike.
  Model model;
  model.centroids = Matrix<float>(2, 2, std::vector<float>{1.0f, 0.0f, -1.0f, 0.0f});
  model.feature_names = {"a", "b"};
  model.feature_roles = {"monetary", "lapsed"};
  write_model(dir.file("bad_model.h5"), model);
  try {
    (void)read_model(dir.file("bad_model.h5"));
    ADD_FAILURE() << "a model with an unknown role was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("bad_model.h5:/feature_roles: row 1 (0-based) is 'lapsed'"), std::string::npos)
        << e.what();
  }
}

TEST(Roles, WrongLengthIsRefused) {
  // The writers assert one role per column, so a short /feature_roles (as h5py could write it)
  // is checked where every reader checks it: validate_feature_roles.
  try {
    validate_feature_roles({"monetary"}, 2, "f.h5", FileKind::features);
    ADD_FAILURE() << "one role for two columns was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("f.h5:/feature_roles: 1 values for 2 columns"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(validate_feature_roles({}, 2, "f.h5", FileKind::features)) << "an older file has none";
  EXPECT_NO_THROW(validate_feature_roles({"Monetary", "OTHER"}, 2, "f.h5", FileKind::features)) << "any case";
}

TEST(Roles, PrepRefusesABadRoleOrColumnAndWritesNothing) {
  PrepDir dir;
  const std::string csv = dir.write("customers.csv", customers_csv());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--role Income=wealth", "--role Income=wealth: unknown role 'wealth'; use recency"},
      {"--role Salary=monetary", "--role Salary=monetary: no feature 'Salary'; the features are Income, Age"},
      {"--role Income", "--role Income: write COLUMN=ROLE"},
      {"--audience martians", "--audience"},
  };
  for (const auto& [args, message] : cases) {
    auto r = run_prep("table " + csv + " -o " + dir.file("out.h5") + " " + args, dir);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << r.output;
    EXPECT_FALSE(std::filesystem::exists(dir.file("out.h5"))) << args;
  }
}

TEST(Roles, ScalerFromReusesTheTrainingRolesAndRefusesAConflict) {
  PrepDir dir;
  const std::string csv = dir.write("customers.csv", customers_csv());
  ASSERT_EQ(run_prep("table " + csv + " -o " + dir.file("train.h5") + " --role Income=monetary --audience donors", dir).status, 0);
  const std::string again = "table " + csv + " --scaler-from " + dir.file("train.h5") + " -o " + dir.file("new.h5");
  auto r = run_prep(again, dir);
  ASSERT_EQ(r.status, 0) << r.output;
  const Features f = read_features(dir.file("new.h5"));
  EXPECT_EQ(f.feature_roles, (std::vector<std::string>{"monetary", "other"}));
  EXPECT_EQ(f.audience, "donors");
  EXPECT_NE(r.output.find("donors (from " + dir.file("train.h5") + ")"), std::string::npos) << r.output;
  std::filesystem::remove(dir.file("new.h5"));
  // The same role again is no conflict; another is refused, as is another audience.
  EXPECT_EQ(run_prep(again + " --role Income=monetary", dir).status, 0);
  std::filesystem::remove(dir.file("new.h5"));
  auto role = run_prep(again + " --role Income=other", dir);
  EXPECT_EQ(role.status, 2) << role.output;
  EXPECT_NE(role.output.find("gives 'Income' the role monetary, and --scaler-from reuses it"), std::string::npos)
      << role.output;
  auto audience = run_prep(again + " --audience customers", dir);
  EXPECT_EQ(audience.status, 2) << audience.output;
  EXPECT_NE(audience.output.find("is for donors, and --scaler-from reuses it"), std::string::npos) << audience.output;
  EXPECT_FALSE(std::filesystem::exists(dir.file("new.h5")));
}

}  // namespace
