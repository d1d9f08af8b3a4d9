// segforge-prep: CRM exports and numeric tables to features.h5, and synthetic data. Parses the
// options into the prep library's types, runs, prints the cleaning summary on stderr.
// Errors: InputError and CLI11 parse errors print one line and exit 2; runtime failures exit 1.

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>

#include "segforge/number_format.hpp"
#include "segforge/outputs.hpp"
#include "segforge/error.hpp"
#include "segforge/prep.hpp"
#include "segforge/segments.hpp"
#include "../src/prep/fields.hpp"

#ifndef SEGFORGE_VERSION
#define SEGFORGE_VERSION "0.1.0"
#endif

namespace segforge::prep::cli {
namespace {


// ---- option text to library types ----------------------------------------------------------

BadRows parse_bad_rows(const std::string& text) {
  if (text == "error") return BadRows::error;
  if (text == "skip") return BadRows::skip;
  throw InputError("--on-bad-row " + text + ": unknown; use error or skip");
}

Negatives parse_negatives(const std::string& text) {
  if (text == "net") return Negatives::net;
  if (text == "drop") return Negatives::drop;
  throw InputError("--negatives " + text + ": unknown; use net or drop");
}

Scaling parse_scaling(const std::string& text) {
  if (text == "standard") return Scaling::standard;
  if (text == "robust") return Scaling::robust;
  if (text == "none") return Scaling::none;
  throw InputError("--scale " + text + ": unknown; use standard, robust or none");
}

char parse_delimiter(const std::string& text) {
  if (text.empty() || text == "auto") return 0;
  if (text == "tab" || text == "\\t" || text == "\t") return '\t';
  if (text.size() == 1 && text != "\"" && text != "\n" && text != "\r") return text[0];
  throw InputError("--delimiter " + text + ": use one character, tab or auto");
}

char parse_decimal(const std::string& text) {
  if (text.empty() || text == "auto") return 0;
  if (text == "." || text == ",") return text[0];
  throw InputError("--decimal " + text + ": use . or , (or auto: either mark in ;-separated files)");
}

/// Text from input files reaches the terminal only through this: control characters and
/// bytes that are not UTF-8 are escaped (line by line: '\n' separates a summary's lines).
std::string terminal_text(const std::string& text) { return printable(text); }


const std::vector<std::string> kH5 = {".h5", ".hdf5"};

// ---- printing -------------------------------------------------------------------------------

void print_items(const std::vector<SummaryItem>& items) {
  for (const auto& item : items) {
    if (item.key == "warnings") continue;  // printed last, as warnings
    if (item.key == "audience") continue;  // printed with the feature roles (print_roles)
    if (item.value.find('\n') == std::string::npos) {
      std::fprintf(stderr, "  %-44s %s\n", item.label.c_str(), terminal_text(item.value).c_str());
      continue;
    }
    std::fprintf(stderr, "  %s:\n", item.label.c_str());
    std::size_t begin = 0;
    while (begin <= item.value.size()) {
      const std::size_t end = std::min(item.value.find('\n', begin), item.value.size());
      std::fprintf(stderr, "    %s\n", terminal_text(item.value.substr(begin, end - begin)).c_str());
      begin = end + 1;
    }
  }
}

void print_warnings(const std::vector<std::string>& warnings) {
  for (const auto& w : warnings) std::fprintf(stderr, "segforge-prep: warning: %s\n", terminal_text(w).c_str());
}

// ---- transforms shared by rfm and table -------------------------------------------------------

struct TransformOptions {
  bool no_log = false;
  std::vector<std::string> log_columns;
  double clip_quantile = 0.0;
  std::string scale = "standard";
  std::string level_weight = "block";
  std::string scaler_from;

  /// Returns --scaler-from, which excludes the options it replaces.
  CLI::Option* add(CLI::App* app, bool table) {
    CLI::Option* log = table ? app->add_option("--log-columns", log_columns, "columns to log1p before scaling")
                                   ->delimiter(',')
                             : app->add_flag("--no-log", no_log, "no log1p on money and count features");
    CLI::Option* clip = app->add_option("--clip-quantile", clip_quantile,
                                        "winsorize money, count and day features at [1-q, q], e.g. 0.99 (0: off)")
                            ->capture_default_str();
    CLI::Option* scaling = app->add_option("--scale", scale, "standard|robust|none")->capture_default_str();
    CLI::Option* weight = app->add_option("--level-weight", level_weight,
                                          "block: each one-hot column's levels together weigh as one feature; "
                                          "column: each level as a feature (standard scaling)")
                              ->capture_default_str();
    return app
        ->add_option("--scaler-from", scaler_from,
                     "TRAIN.h5: prepare new records like this training file (its columns, transforms, "
                     "clip bounds, mean and scale) for segforge predict")
        ->excludes(log)
        ->excludes(clip)
        ->excludes(scaling)
        ->excludes(weight);
  }
  TransformParams params() const {
    TransformParams p;
    p.log = !no_log;
    p.log_columns = log_columns;
    p.clip_quantile = clip_quantile;
    p.scaling = parse_scaling(scale);
    if (level_weight != "block" && level_weight != "column")
      throw InputError("--level-weight " + level_weight + ": unknown; use block or column");
    p.weight_level_blocks = level_weight == "block";
    return p;
  }
};

/// Reads the --scaler-from file, when given, before any work.
std::optional<TrainingScaling> training_scaling(const TransformOptions& o, const std::string& output) {
  if (o.scaler_from.empty()) return std::nullopt;
  std::error_code ec;
  if (std::filesystem::equivalent(o.scaler_from, output, ec))
    throw InputError("-o " + output + ": is the --scaler-from file; write the new records to another file");
  return read_training_scaling(o.scaler_from);
}

/// Transforms and scales `features`: fitted on them, or the training file's (--scaler-from).
/// Returns the items describing it, for the summary.
Prepared prepare(RawFeatures& features, const TransformParams& tp, const std::optional<TrainingScaling>& training,
                 const std::string& input, std::vector<SummaryItem>& items) {
  if (!training) {
    Prepared prepared = transform(features, tp);
    items = transform_items(tp, prepared);
    if (tp.weight_level_blocks && tp.scaling == Scaling::standard) {
      const int blocks = weight_level_blocks(features, prepared);
      if (blocks > 0) items.push_back({"level_weight", "one-hot blocks weighing as one feature", std::to_string(blocks)});
      const int shares = weight_share_blocks(features, prepared);
      if (shares > 0) items.push_back({"share_weight", "share blocks on one common scale", std::to_string(shares)});
    }
    return prepared;
  }
  const AlignSummary a = align_to_training(features, *training, input);
  items = scaler_from_items(*training, a);
  return apply_scaler(features, training->scaler, training->path);
}

// ---- feature roles and audience (what segforge fit names segments from) -----------------------

struct RoleOptions {
  std::vector<std::string> settings;  // --role COLUMN=ROLE
  std::string audience = "auto";

  void add(CLI::App* app) {
    app->add_option("--role", settings,
                    "COLUMN=ROLE: a feature's role for the automatic segment names "
                    "(recency|tenure|frequency|monetary|engagement|other; default: inferred, see docs/segments.md)");
    app->add_option("--audience", audience,
                    "auto|donors|customers: the words and outreach of the names (auto: donors when a "
                    "feature name mentions gift or donat)")
        ->check(CLI::IsMember({"auto", "donors", "customers"}))
        ->capture_default_str();
  }

  /// The form and the role word of every --role, before any work (the columns are known later).
  void check() const {
    for (const auto& setting : settings) parse_role_setting(setting);
  }
};

struct ChosenRoles {
  std::vector<FeatureRole> roles;  ///< [n_features]
  std::vector<bool> set;           ///< [n_features] by --role
  Audience audience = Audience::donors;
  std::string audience_source;     ///< "set", "from the training file", "inferred: ..."
};

/// Each feature's role: inferred from its name (segments.hpp's table), then --role; with
/// --scaler-from the training file's (stored, or inferred for an older file), which a --role
/// or --audience may not contradict (new records are named by the model fitted on the training).
ChosenRoles choose_roles(const RoleOptions& o, const std::vector<std::string>& names,
                         const std::optional<TrainingScaling>& training) {
  ChosenRoles c;
  std::vector<FeatureRole> inferred = feature_roles(names);
  std::string stored_audience;
  if (training) {
    inferred = feature_roles(names, inspect_features(training->path).feature_roles);
    if (const auto a = training->attributes.find("audience"); a != training->attributes.end()) stored_audience = a->second;
  }
  c.roles = inferred;
  c.set = apply_role_settings(o.settings, names, c.roles);
  for (std::size_t j = 0; j < names.size(); ++j)
    if (training && c.roles[j] != inferred[j])
      throw InputError("--role: the training file " + training->path + " gives '" + names[j] + "' the role " +
                       feature_role_name(inferred[j]) + ", and --scaler-from reuses it; leave out --role (set roles "
                       "when preparing the training file, or with segforge fit --role)");
  const Audience requested = *parse_audience(o.audience);
  const Audience training_audience = resolve_audience(Audience::automatic, stored_audience, names);
  if (training && requested != Audience::automatic && requested != training_audience)
    throw InputError("--audience " + o.audience + ": the training file " + training->path + " is for " +
                     audience_name(training_audience) + ", and --scaler-from reuses it; leave out --audience");
  c.audience = resolve_audience(requested, stored_audience, names);
  c.audience_source = requested != Audience::automatic ? "set"
                      : !stored_audience.empty()       ? "from " + training->path
                      : c.audience == Audience::donors ? "inferred: a feature name mentions gift or donat"
                                                       : "inferred: no feature name mentions gift or donat";
  return c;
}

/// One line per role present, its features in file order, "(set)" after those --role set.
void print_roles(const ChosenRoles& c, const std::vector<std::string>& names) {
  std::fprintf(stderr, "  feature roles (for the segment names; --role COLUMN=ROLE sets one):\n");
  for (std::size_t r = 0; r < kFeatureRoleNames.size(); ++r) {
    std::string line;
    for (std::size_t j = 0; j < names.size(); ++j) {
      if (static_cast<std::size_t>(c.roles[j]) != r) continue;
      line += (line.empty() ? "" : ", ") + names[j] + (c.set[j] ? " (set)" : "");
    }
    if (!line.empty()) std::fprintf(stderr, "    %-11s %s\n", kFeatureRoleNames[r], terminal_text(line).c_str());
  }
  std::fprintf(stderr, "  %-44s %s (%s)\n", "audience of the names", audience_name(c.audience).c_str(),
               terminal_text(c.audience_source).c_str());
}

// ---- rfm ------------------------------------------------------------------------------------

struct RfmOptions {
  RfmParams params;
  std::string output, as_of, negatives = "net", on_bad_row = "error", delimiter = "auto", decimal = "auto";
  std::string excluded;
  bool keep_duplicates = false;
  TransformOptions transform;
  RoleOptions roles;
};

int run_rfm(RfmOptions& o) {
  RfmParams& p = o.params;
  // Every file this run reads and writes, checked against each other before any work.
  segforge::OutputSet outputs;
  outputs.input(p.gifts_path, "gifts");
  outputs.input(p.events_path, "--events");
  outputs.input(p.attributes_path, "--attributes");
  outputs.input(o.transform.scaler_from, "--scaler-from");
  outputs.output(o.output, "-o", kH5);
  if (!o.excluded.empty()) outputs.output(o.excluded, "--excluded", {".csv"});
  p.decimal = parse_decimal(o.decimal);
  p.negatives = parse_negatives(o.negatives);
  p.on_bad_row = parse_bad_rows(o.on_bad_row);
  p.delimiter = parse_delimiter(o.delimiter);
  p.drop_duplicates = !o.keep_duplicates;
  if (!o.as_of.empty()) p.as_of = parse_date_option(o.as_of, "--as-of");
  // Parsed before the work, so a bad value fails at once; --scaler-from replaces them.
  const TransformParams tp = o.transform.scaler_from.empty() ? o.transform.params() : TransformParams{};
  o.roles.check();
  const std::optional<TrainingScaling> training = training_scaling(o.transform, o.output);
  if (training) p.known_columns = training->names;

  const auto t0 = std::chrono::steady_clock::now();
  RfmResult r = compute_rfm(p);
  std::vector<SummaryItem> transform_summary;
  const Prepared prepared = prepare(r.features, tp, training, p.gifts_path, transform_summary);
  r.summary.n_features = prepared.x.cols();
  std::vector<SummaryItem> items = summary_items(r.summary);
  for (auto& item : transform_summary) items.push_back(std::move(item));
  items.push_back({"source", "made by", "segforge-prep rfm"});
  if (!o.excluded.empty())
    items.push_back({"excluded_file", "donors left out listed in", o.excluded});
  const ChosenRoles roles = choose_roles(o.roles, prepared.names, training);
  items.push_back({"audience", "audience of the names", audience_name(roles.audience)});
  write_prepared(o.output, prepared, items, feature_role_names(roles.roles));
  if (!o.excluded.empty()) write_excluded_csv(o.excluded, r.excluded);
  outputs.commit();  // features.h5 and excluded.csv together
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::fprintf(stderr, "segforge-prep rfm: %s\n", p.gifts_path.c_str());
  print_items(items);
  print_roles(roles, prepared.names);
  std::fprintf(stderr, "wrote %s: %lld donors x %lld features, as-of %s (%.1f s)\n", o.output.c_str(),
               static_cast<long long>(r.summary.n_samples), static_cast<long long>(r.summary.n_features),
               r.summary.as_of.c_str(), seconds);
  print_warnings(r.summary.warnings);
  return 0;
}

void add_rfm(CLI::App& app, RfmOptions& o, CLI::App*& cmd) {
  RfmParams& p = o.params;
  cmd = app.add_subcommand("rfm", "Gifts or transactions (+ events, attributes) to per-donor features");
  cmd->add_option("gifts", p.gifts_path, "GIFTS.csv: one row per gift or invoice line")->required();
  cmd->add_option("-o,--output", o.output, "features.h5 to write")->required();
  cmd->add_option("--events", p.events_path, "EVENTS.csv: donor id, date, type (open/click/attend)");
  cmd->add_option("--attributes", p.attributes_path, "DONORS.csv: one row per donor");
  cmd->add_option("--categorical", p.categorical, "attribute columns to one-hot encode")->delimiter(',');
  CLI::Option* max_levels =
      cmd->add_option("--max-levels", p.max_levels, "channels and levels kept per column (rest: other)")
          ->capture_default_str();
  auto* cols = cmd->add_option_group("columns", "gifts columns (default: recognised from the header)");
  cols->add_option("--id-col", p.gift_columns.id, "donor id (donor_id, CustomerID, ...)");
  cols->add_option("--date-col", p.gift_columns.date, "gift date (gift_date, InvoiceDate, ...)");
  cols->add_option("--amount-col", p.gift_columns.amount, "amount (else Quantity x UnitPrice)");
  cols->add_option("--quantity-col", p.gift_columns.quantity, "quantity, with --unit-price-col");
  cols->add_option("--unit-price-col", p.gift_columns.unit_price, "unit price, with --quantity-col");
  cols->add_option("--transaction-col", p.gift_columns.transaction, "group rows into transactions (InvoiceNo, ...); none: each row is one");
  cols->add_option("--campaign-col", p.gift_columns.campaign, "campaign or appeal; none to ignore");
  cols->add_option("--channel-col", p.gift_columns.channel, "channel or payment method; none to ignore");
  cols->add_option("--event-id-col", p.event_columns.id, "events: donor id");
  cols->add_option("--event-date-col", p.event_columns.date, "events: date");
  cols->add_option("--event-type-col", p.event_columns.type, "events: type");
  cols->add_option("--attribute-id-col", p.attribute_id_column, "attributes: donor id");
  cmd->add_option("--date-format", p.date_format, "strptime-style, e.g. %d/%m/%Y (default: detected per file)");
  cmd->add_option("--as-of", o.as_of, "YYYY-MM-DD, first day not covered (default: the day after the last transaction)");
  cmd->add_option("--negatives", o.negatives, "net|drop: refunds and negative amounts")->capture_default_str();
  cmd->add_option("--on-bad-row", o.on_bad_row, "error|skip")->capture_default_str();
  cmd->add_flag("--keep-duplicates", o.keep_duplicates, "keep exact duplicate rows (saves 8-16 bytes a row)");
  cmd->add_flag("--strict", p.strict, "small-data warnings (< 500 donors, < 2 years) are errors");
  cmd->add_option("--delimiter", o.delimiter, "field delimiter: auto, tab or one character")->capture_default_str();
  cmd->add_option("--decimal", o.decimal, "decimal mark: . or , (auto: either for ;-separated files)")->capture_default_str();
  cmd->add_option("--threads", p.threads,
                  "CPU threads reading the gifts file (0: all cores, or OMP_NUM_THREADS); the result is the same "
                  "for any number")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--excluded", o.excluded,
                  "EXCLUDED.csv: list the donors left out (no gift: refunds only, or netting to 0) "
                  "with the reason (id,reason,transactions,net_amount)");
  CLI::Option* min_share = cmd->add_option("--min-level-share", p.min_level_share,
                                           "attribute levels rarer than this share of donors go to <column>_other")
                               ->capture_default_str();
  o.transform.add(cmd, false)->excludes(max_levels)->excludes(min_share);  // the training's levels are kept
  o.roles.add(cmd);
}

// ---- table ----------------------------------------------------------------------------------

struct TableOptions {
  TableParams params;
  std::string output, on_bad_row = "error", delimiter = "auto", missing = "error", as_of, decimal = "auto";
  bool keep_duplicates = false;
  TransformOptions transform;
  RoleOptions roles;
};

int run_table(TableOptions& o) {
  TableParams& p = o.params;
  segforge::OutputSet outputs;
  outputs.input(p.path, "table");
  outputs.input(o.transform.scaler_from, "--scaler-from");
  outputs.output(o.output, "-o", kH5);
  p.on_bad_row = parse_bad_rows(o.on_bad_row);
  p.delimiter = parse_delimiter(o.delimiter);
  p.decimal = parse_decimal(o.decimal);
  p.drop_duplicates = !o.keep_duplicates;
  p.missing = parse_missing(o.missing);
  if (!o.as_of.empty()) p.as_of = parse_date_option(o.as_of, "--as-of");
  // Parsed before the work, so a bad value fails at once; --scaler-from replaces them.
  const TransformParams tp = o.transform.scaler_from.empty() ? o.transform.params() : TransformParams{};
  o.roles.check();
  const std::optional<TrainingScaling> training = training_scaling(o.transform, o.output);
  if (training) {
    // Every choice of the training's preparation: its id column, feature columns and their
    // roles, fill values and levels; a file from an older segforge-prep gives its feature
    // names and id column.
    p.plan = table_plan_from(training->path, training->attributes, training->names);
    if (!p.plan) {
      p.columns = training->names;
      p.columns_from = training->path;
      if (const auto it = training->attributes.find("table_id_column"); p.id_column.empty() && it != training->attributes.end())
        p.id_column = it->second;
    }
  }
  TableResult r = read_table(p);
  if (!training) {
    const std::vector<SkewedColumn> skewed = skewed_columns(r.features, tp);
    if (!skewed.empty()) {
      std::string list, names;
      for (const auto& c : skewed) {
        list += (list.empty() ? "" : ", ") + c.name + " " + segforge::analyst_number(c.skewness, 2, 1);
        names += (names.empty() ? "" : ",") + c.name;
      }
      r.summary.warnings.push_back("right-skewed columns (skewness > 2): " + list +
                                   "; their few largest values will pull segments of their own; consider "
                                   "--log-columns " + names);
    }
  }
  std::vector<SummaryItem> transform_summary;
  const Prepared prepared = prepare(r.features, tp, training, p.path, transform_summary);
  r.summary.n_features = prepared.x.cols();
  std::vector<SummaryItem> items = summary_items(r.summary);
  for (auto& item : table_items(r.summary)) items.push_back(std::move(item));
  for (auto& item : transform_summary) items.push_back(std::move(item));
  items.push_back({"source", "made by", "segforge-prep table"});
  const ChosenRoles roles = choose_roles(o.roles, prepared.names, training);
  items.push_back({"audience", "audience of the names", audience_name(roles.audience)});
  write_prepared(o.output, prepared, items, feature_role_names(roles.roles));
  outputs.commit();
  std::fprintf(stderr, "segforge-prep table: %s\n", p.path.c_str());
  std::vector<SummaryItem> shown = items;  // the column list aligned for reading
  for (auto& item : shown)
    if (item.key == "table_columns") item.value = describe_columns(r.summary);
  print_items(shown);
  print_roles(roles, prepared.names);
  std::fprintf(stderr, "wrote %s: %lld rows x %lld features\n", o.output.c_str(),
               static_cast<long long>(r.summary.n_samples), static_cast<long long>(r.summary.n_features));
  print_warnings(r.summary.warnings);
  return 0;
}

void add_table(CLI::App& app, TableOptions& o, CLI::App*& cmd) {
  TableParams& p = o.params;
  cmd = app.add_subcommand("table", "A CSV table (one row per record) to a feature matrix");
  cmd->add_option("table", p.path, "TABLE.csv")->required();
  cmd->add_option("-o,--output", o.output, "features.h5 to write")->required();
  cmd->add_option("--id-col", p.id_column,
                  "id column (default: a recognised name, else a unique id-like column; none for no ids)");
  auto* features = cmd->add_option("--features,--columns", p.columns,
                                   "feature columns, in this order (default: detected; see docs/prep.md)")
                       ->delimiter(',');
  auto* exclude = cmd->add_option("--exclude", p.exclude, "columns never to use")->delimiter(',');
  auto* categorical = cmd->add_option("--categorical", p.categorical, "columns to one-hot encode")->delimiter(',');
  auto* dates = cmd->add_option("--date-columns", p.date_columns, "date columns to count in days before --as-of (dates are also detected)")
                    ->delimiter(',');
  auto* date_format = cmd->add_option("--date-format", p.date_format, "strptime-style, e.g. %d-%m-%Y (default: detected per column)");
  cmd->add_option("--as-of", o.as_of, "YYYY-MM-DD for date columns (default: the day after the latest date)");
  auto* missing = cmd->add_option("--missing", o.missing, "error|median|mean|drop: empty values in number and date columns")
                      ->capture_default_str();
  auto* max_levels = cmd->add_option("--max-levels", p.levels.max_levels, "levels kept per categorical column (rest: <column>_other)")
                         ->capture_default_str();
  auto* min_share = cmd->add_option("--min-level-share", p.levels.min_share,
                                    "levels rarer than this share of rows go to <column>_other")
                        ->capture_default_str();
  cmd->add_option("--on-bad-row", o.on_bad_row, "error|skip")->capture_default_str();
  cmd->add_flag("--keep-duplicates", o.keep_duplicates, "keep exact duplicate rows");
  cmd->add_option("--delimiter", o.delimiter, "field delimiter: auto, tab or one character")->capture_default_str();
  cmd->add_option("--decimal", o.decimal, "decimal mark: . or , (auto: either for ;-separated files)")->capture_default_str();
  CLI::Option* scaler_from = o.transform.add(cmd, true);
  o.roles.add(cmd);
  // The training file fixes these (its roles, levels and fill values).
  for (CLI::Option* opt : {features, exclude, categorical, dates, date_format, missing, max_levels, min_share})
    scaler_from->excludes(opt);
}

// ---- synth ----------------------------------------------------------------------------------

struct SynthOptions {
  SynthDonorsParams donors;
  std::string donors_out, events_out, truth_out, end;
  SynthBlobsParams blobs;
  std::string blobs_out, centers_out;
};

int run_synth_donors(SynthOptions& o) {
  segforge::OutputSet outputs;
  outputs.output(o.donors_out, "-o", {".csv"});
  if (!o.events_out.empty()) outputs.output(o.events_out, "--events", {".csv"});
  if (!o.truth_out.empty()) outputs.output(o.truth_out, "--truth", {".csv"});
  if (!o.end.empty()) o.donors.end = parse_date_option(o.end, "--end");
  const SynthDonorsSummary s = write_synth_donors(o.donors_out, o.events_out, o.truth_out, o.donors);
  outputs.commit();
  const auto names = synth_segment_names();
  std::fprintf(stderr, "wrote %s: %lld gift rows from %lld donors (use --as-of %s)\n", o.donors_out.c_str(),
               static_cast<long long>(s.gift_rows), static_cast<long long>(s.donors),
               format_date(o.donors.end).c_str());
  if (!o.events_out.empty())
    std::fprintf(stderr, "wrote %s: %lld event rows\n", o.events_out.c_str(), static_cast<long long>(s.event_rows));
  for (std::size_t k = 0; k < names.size(); ++k)
    std::fprintf(stderr, "  %-16s %10lld donors\n", names[k].c_str(), static_cast<long long>(s.segment_sizes[k]));
  return 0;
}

int run_synth_blobs(SynthOptions& o) {
  segforge::OutputSet outputs;
  outputs.output(o.blobs_out, "-o", kH5);
  if (!o.centers_out.empty()) outputs.output(o.centers_out, "--centers", kH5);
  write_synth_blobs(o.blobs_out, o.blobs, o.centers_out);
  outputs.commit();
  std::fprintf(stderr, "wrote %s: %lld x %d in %d blobs, with the true /centers and /labels\n",
               o.blobs_out.c_str(), static_cast<long long>(o.blobs.n_samples), o.blobs.n_features,
               o.blobs.n_clusters);
  if (!o.centers_out.empty())
    std::fprintf(stderr, "wrote %s: the true centres as a model (segforge fit --init)\n", o.centers_out.c_str());
  return 0;
}

void add_synth(CLI::App& app, SynthOptions& o, CLI::App*& donors, CLI::App*& blobs) {
  auto* synth = app.add_subcommand("synth", "Synthetic data with a known structure");
  synth->require_subcommand(1);
  donors = synth->add_subcommand("donors", "Gifts (and events) of donors from five known segments");
  donors->add_option("-n,--donors", o.donors.n_donors, "donors")->capture_default_str();
  donors->add_option("-o,--output", o.donors_out, "gifts.csv to write")->required();
  donors->add_option("--events", o.events_out, "events.csv to write");
  donors->add_option("--truth", o.truth_out, "truth.csv to write (donor_id,segment)");
  donors->add_option("--seed", o.donors.seed, "random seed")->capture_default_str();
  donors->add_option("--years", o.donors.years, "years of history")->capture_default_str();
  donors->add_option("--end", o.end, "first day not covered, YYYY-MM-DD (default 2024-01-01)");
  donors->add_option("--refund-rate", o.donors.refund_rate, "share of gifts refunded")->capture_default_str();

  blobs = synth->add_subcommand("blobs", "Gaussian blobs with known centres (benchmarks)");
  blobs->add_option("-n,--samples", o.blobs.n_samples, "rows")->capture_default_str();
  blobs->add_option("-d,--features", o.blobs.n_features, "features")->capture_default_str();
  blobs->add_option("-k,--clusters", o.blobs.n_clusters, "blobs")->capture_default_str();
  blobs->add_option("-o,--output", o.blobs_out, "blobs.h5 to write")->required();
  blobs->add_option("--centers", o.centers_out, "also write the true centres as a model file (for fit --init)");
  blobs->add_option("--seed", o.blobs.seed, "random seed")->capture_default_str();
  blobs->add_option("--spread", o.blobs.spread, "centres uniform in [-spread, spread]")->capture_default_str();
  blobs->add_option("--std", o.blobs.std_dev, "noise standard deviation")->capture_default_str();
}

}  // namespace
}  // namespace segforge::prep::cli

int main(int argc, char** argv) {
  using namespace segforge::prep::cli;
  CLI::App app{"segforge-prep: CRM exports and tables to the features.h5 that segforge clusters"};
  app.set_version_flag("--version", std::string("segforge-prep ") + SEGFORGE_VERSION);
  app.require_subcommand(1);
  RfmOptions rfm;
  TableOptions table;
  SynthOptions synth;
  CLI::App *rfm_cmd = nullptr, *table_cmd = nullptr, *donors_cmd = nullptr, *blobs_cmd = nullptr;
  add_rfm(app, rfm, rfm_cmd);
  add_table(app, table, table_cmd);
  add_synth(app, synth, donors_cmd, blobs_cmd);
  try {
    app.parse(argc, argv);
    if (*rfm_cmd) return run_rfm(rfm);
    if (*table_cmd) return run_table(table);
    if (*donors_cmd) return run_synth_donors(synth);
    if (*blobs_cmd) return run_synth_blobs(synth);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cerr << "segforge-prep: " << terminal_text(e.what()) << "; see --help\n";
    return 2;
  } catch (const segforge::Error& e) {
    std::cerr << "segforge-prep: " << terminal_text(e.what()) << '\n';
    return e.exit_code();
  } catch (const std::bad_alloc&) {
    std::cerr << "segforge-prep: out of memory; use a machine with more memory or a smaller input\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "segforge-prep: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
