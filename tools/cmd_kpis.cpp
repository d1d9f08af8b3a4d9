// `segforge kpis EXPORT.csv LABELS --as-of DATE -o kpis.json`: per segment, over a window after
// the as-of date, retention, average gift and revenue per member, and with --campaign the
// response rate per arm and the lift of treated over control (Newcombe's interval). docs/kpis.md.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "cli_common.hpp"
#include "segforge/error.hpp"
#include "segforge/io.hpp"
#include "segforge/kpis.hpp"
#include "segforge/outputs.hpp"

namespace segforge::cli {

namespace {

struct KpiOptions {
  KpiParams params;
  std::string as_of, model, output, negatives = "net", on_bad_row = "error", delimiter = "auto", decimal = "auto";
  bool keep_duplicates = false;
};

void parse_export_options(KpiOptions& o) {
  prep::RfmParams& p = o.params.gifts;
  if (o.negatives == "net") p.negatives = prep::Negatives::net;
  else if (o.negatives == "drop") p.negatives = prep::Negatives::drop;
  else throw InputError("--negatives " + o.negatives + ": unknown; use net or drop");
  if (o.on_bad_row == "error") p.on_bad_row = prep::BadRows::error;
  else if (o.on_bad_row == "skip") p.on_bad_row = prep::BadRows::skip;
  else throw InputError("--on-bad-row " + o.on_bad_row + ": unknown; use error or skip");
  if (o.delimiter == "auto") p.delimiter = 0;
  else if (o.delimiter == "tab") p.delimiter = '\t';
  else if (o.delimiter.size() == 1 && o.delimiter != "\"") p.delimiter = o.delimiter[0];
  else throw InputError("--delimiter " + o.delimiter + ": use one character, tab or auto");
  if (o.decimal == "auto") p.decimal = 0;
  else if (o.decimal == "." || o.decimal == ",") p.decimal = o.decimal[0];
  else throw InputError("--decimal " + o.decimal + ": use . or , (or auto)");
  p.drop_duplicates = !o.keep_duplicates;
}

json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json segment_json(const SegmentKpis& s) {
  return {{"segment", s.segment},
          {"name", s.name},
          {"members", s.members},
          {"retained", s.retained},
          {"retention", number(s.retention)},
          {"gifts", s.gifts},
          {"gift_amount", s.gift_amount},
          {"average_gift", number(s.average_gift)},
          {"net_revenue", s.net_revenue},
          {"revenue_per_member", number(s.revenue_per_member)}};
}

json arm_json(const ArmKpis& a) {
  return {{"members", a.members},
          {"responders", a.responders},
          {"response_rate", number(a.response_rate)},
          {"amount", a.amount},
          {"amount_per_member", number(a.amount_per_member)}};
}

json campaign_segment_json(const CampaignSegmentKpis& c) {
  json j = {{"segment", c.segment}, {"name", c.name}, {"treated", arm_json(c.treated)}, {"control", arm_json(c.control)}};
  if (c.has_lift) {
    j["lift"] = c.lift;
    j["lift_ci95"] = {c.lift_interval.low, c.lift_interval.high};
    j["amount_lift"] = number(c.amount_lift);
  } else {
    j["lift"] = nullptr;
    j["lift_ci95"] = nullptr;
    j["amount_lift"] = nullptr;
  }
  return j;
}

json kpis_json(const KpiResult& r, const KpiOptions& o) {
  json j = json_output("segforge-kpis");
  j["export"] = o.params.gifts.gifts_path;
  j["labels"] = o.params.labels_path;
  j["as_of"] = r.as_of;
  j["window_days"] = r.window_days;
  j["window_end"] = r.window_end;
  j["last_transaction"] = r.last_transaction;
  j["n_members"] = r.n_members;
  j["members_not_in_export"] = r.members_not_in_export;
  j["window_transactions"] = r.window_transactions;
  j["window_donors_unlabelled"] = r.window_donors_unlabelled;
  j["segments"] = json::array();
  for (const SegmentKpis& s : r.segments) j["segments"].push_back(segment_json(s));
  j["overall"] = segment_json(r.overall);
  j["campaigns"] = json::array();
  if (!o.params.campaign_path.empty()) {
    j["campaign_file"] = o.params.campaign_path;
    j["lift_interval"] = "Newcombe (1998) hybrid score interval, method 10, 95%";
    for (const CampaignKpis& c : r.campaigns) {
      json cj = {{"campaign", c.campaign}, {"rows", c.rows}, {"rows_unlabelled", c.rows_unlabelled}};
      cj["segments"] = json::array();
      for (const CampaignSegmentKpis& s : c.segments) cj["segments"].push_back(campaign_segment_json(s));
      cj["overall"] = campaign_segment_json(c.overall);
      j["campaigns"].push_back(std::move(cj));
    }
  }
  j["warnings"] = r.warnings;
  return j;
}

std::string pct(double v) {
  if (!std::isfinite(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * v);
  return buf;
}

std::string money(double v) {
  if (!std::isfinite(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

void print_table(const KpiResult& r) {
  std::printf("KPIs of %lld members, window %s to %s (%d days)\n", static_cast<long long>(r.n_members),
              r.as_of.c_str(), r.window_end.c_str(), r.window_days);
  int w = 28;  // the widest name sets the column
  for (const SegmentKpis& s : r.segments) w = std::max(w, static_cast<int>(s.name.size()));
  std::printf("  %-*s %9s %10s %8s %12s %12s\n", w, "segment", "members", "retention", "gifts", "average gift",
              "rev/member");
  auto row = [w](const SegmentKpis& s) {
    std::printf("  %-*s %9lld %10s %8lld %12s %12s\n", w, s.name.c_str(), static_cast<long long>(s.members),
                pct(s.retention).c_str(), static_cast<long long>(s.gifts), money(s.average_gift).c_str(),
                money(s.revenue_per_member).c_str());
  };
  for (const SegmentKpis& s : r.segments) row(s);
  row(r.overall);
  for (const CampaignKpis& c : r.campaigns) {
    std::printf("campaign %s: response rate treated / control, lift (95%% Newcombe interval)\n",
                c.campaign.empty() ? "(one campaign)" : c.campaign.c_str());
    auto line = [w](const CampaignSegmentKpis& s) {
      std::printf("  %-*s %7s of %-6lld %7s of %-6lld ", w, s.name.c_str(), pct(s.treated.response_rate).c_str(),
                  static_cast<long long>(s.treated.members), pct(s.control.response_rate).c_str(),
                  static_cast<long long>(s.control.members));
      if (s.has_lift)
        std::printf("%+.1f pp [%+.1f, %+.1f]\n", 100.0 * s.lift, 100.0 * s.lift_interval.low,
                    100.0 * s.lift_interval.high);
      else
        std::printf("no lift (an arm has no member)\n");
    };
    for (const CampaignSegmentKpis& s : c.segments) line(s);
    line(c.overall);
  }
  for (const std::string& w : r.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
}

int run_kpis(KpiOptions& o) {
  OutputSet outputs;
  outputs.input(o.params.gifts.gifts_path, "export");
  outputs.input(o.params.labels_path, "labels");
  if (!o.model.empty()) outputs.input(o.model, "--model");
  if (!o.params.campaign_path.empty()) outputs.input(o.params.campaign_path, "--campaign");
  if (!o.output.empty()) outputs.output(o.output, "-o", {".json"});
  parse_export_options(o);
  o.params.as_of = prep::parse_date_option(o.as_of, "--as-of");
  if (!o.model.empty()) o.params.segment_names = read_model(o.model).segment_names;
  const KpiResult r = compute_kpis(o.params);
  print_table(r);
  if (!o.output.empty()) {
    write_text_atomic(o.output, kpis_json(r, o).dump(2) + "\n");
    outputs.commit();
  }
  return 0;
}

}  // namespace

Command add_kpis_command(CLI::App& parent) {
  auto options = std::make_shared<KpiOptions>();
  KpiOptions& o = *options;
  prep::GiftColumns& g = o.params.gifts.gift_columns;
  CampaignColumns& c = o.params.campaign_columns;
  auto* cmd = parent.add_subcommand(
      "kpis", "Segment KPIs over a window after as-of (retention, average gift, revenue) and campaign lift");
  cmd->add_option("export", o.params.gifts.gifts_path, "the gifts/transactions CSV that segforge-prep rfm read")
      ->required();
  cmd->add_option("labels", o.params.labels_path, "labels.h5 (with /ids) or segments.csv of the members as of --as-of")
      ->required();
  cmd->add_option("--as-of", o.as_of, "YYYY-MM-DD: the labels' as-of, the first day of the window")->required();
  cmd->add_option("--window-days", o.params.window_days, "days of the window after --as-of")->capture_default_str();
  cmd->add_option("--campaign", o.params.campaign_path, "CAMPAIGN.csv: id, campaign, arm (treated|control), "
                  "responded, amount");
  cmd->add_option("--model", o.model, "model.h5 whose segment names label a labels.h5");
  cmd->add_option("-o,--output", o.output, "kpis.json to write");
  auto* cols = cmd->add_option_group("export columns", "as for segforge-prep rfm (default: recognised)");
  cols->add_option("--id-col", g.id, "donor id");
  cols->add_option("--date-col", g.date, "gift date");
  cols->add_option("--amount-col", g.amount, "amount");
  cols->add_option("--quantity-col", g.quantity, "quantity (amount = quantity x unit price)");
  cols->add_option("--unit-price-col", g.unit_price, "unit price");
  cols->add_option("--transaction-col", g.transaction, "transaction id (rows grouped); none: each row");
  auto* camp = cmd->add_option_group("campaign columns", "default: recognised");
  camp->add_option("--campaign-id-col", c.id, "member id");
  camp->add_option("--campaign-col", c.campaign, "campaign name (none: one campaign)");
  camp->add_option("--arm-col", c.arm, "treated or control");
  camp->add_option("--responded-col", c.responded, "1/0, yes/no, true/false");
  camp->add_option("--response-amount-col", c.amount, "amount given in response");
  cmd->add_option("--date-format", o.params.gifts.date_format, "strptime-style (default: detected)");
  cmd->add_option("--negatives", o.negatives, "net|drop, as for segforge-prep rfm")->capture_default_str();
  cmd->add_option("--on-bad-row", o.on_bad_row, "error|skip")->capture_default_str();
  cmd->add_flag("--keep-duplicates", o.keep_duplicates, "as for segforge-prep rfm");
  cmd->add_option("--delimiter", o.delimiter, "auto, tab or one character")->capture_default_str();
  cmd->add_option("--decimal", o.decimal, ". or , (auto)")->capture_default_str();
  return {cmd, [options] { return run_kpis(*options); }};
}

}  // namespace segforge::cli
