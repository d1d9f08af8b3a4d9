// report.html: the page renders every table with or without plotly.js, escapes what it embeds,
// references nothing outside itself; the report command; and the page opened in headless
// Chromium (Debian's chromium, driven by playwright-core from npm when installed, else
// --dump-dom): no console errors, every chart drew its SVG (and the 3-D one its WebGL canvas),
// and a screenshot is kept as a test artifact under the build folder (test-artifacts/).

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>
#include <sstream>

#include "segforge/backend.hpp"
#include "segforge/io.hpp"
#include "segforge/report.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace segforge {
namespace {

fs::path repo_root() { return fs::path(SEGFORGE_FIXTURES).parent_path().parent_path(); }
fs::path artifacts_dir() { return fs::path(SEGFORGE_BINARY).parent_path().parent_path() / "test-artifacts"; }

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// ---- the page -----------------------------------------------------------------------------------

ReportInput small_input() {
  ReportInput in;
  in.title = "Test report";
  in.feature_names = {"recency_days", "monetary_total"};
  in.n_samples = 3;
  SegmentProfile a, b;
  a.segment = 0;
  a.size = 2;
  a.share = 2.0 / 3;
  a.centre = a.centre_original = {1.0, 2.0};
  a.z_scores = {0.7, -0.2};
  a.top_features = {0, 1};
  b = a;
  b.segment = 1;
  b.size = 1;
  b.share = 1.0 / 3;
  b.z_scores = {-1.4, 0.4};
  in.profiles = {a, b};
  in.dictionary = {{"Lapsed </script><b>Donors", "desc & more", "call"}, {"Active Donors", "d", "mail"}};
  in.views.points = Matrix<float>(3, 3, 0.5f);
  in.views.point_labels = {0, 0, 1};
  in.views.centres = Matrix<float>(2, 3, 0.0f);
  in.views.explained = {0.7, 0.3, 0.0};
  return in;
}

TEST(ReportPage, TablesWithoutChartsAndEscaping) {
  const std::string page = render_report_html(small_input());
  EXPECT_NE(page.find("Segment profiles"), std::string::npos);
  EXPECT_NE(page.find("Segment dictionary"), std::string::npos);
  EXPECT_NE(page.find("Lapsed &lt;/script&gt;&lt;b&gt;Donors"), std::string::npos);  // HTML-escaped in tables
  EXPECT_NE(page.find("Lapsed \\u003c/script\\u003e"), std::string::npos);           // and in the embedded JSON
  EXPECT_EQ(count(page, "</script>"), count(page, "<script"));  // no early end of a script element
  EXPECT_EQ(page.find("class=\"chart\""), std::string::npos);   // no plotly: no chart containers
  EXPECT_EQ(page.find("Choosing K</h2>"), std::string::npos);   // no sweep given
  // Self-contained: nothing loaded from elsewhere.
  EXPECT_FALSE(std::regex_search(page, std::regex(R"((src|href)\s*=\s*["']?(https?:)?//)")));
}

TEST(ReportPage, WithSweepStabilityAndCharts) {
  ReportInput in = small_input();
  in.plotly_js = "/* plotly stand-in: '</script>' inside a string */ var Plotly = {};";
  SweepResult s;
  s.recommended_k = 2;
  s.reason = "K=2: chosen by silhouette";
  SweepRecord r;
  r.k = 2;
  r.inertia = 10;
  s.records = {r};
  in.sweep = s;
  StabilityResult st;
  st.runs = 3;
  st.jaccard_mean = {0.9, 0.5};
  st.jaccard_min = {0.8, 0.4};
  st.segment_verdicts = {"stable", "unstable"};
  st.verdict = "unstable: ...";
  in.stability = st;
  const std::string page = render_report_html(in);
  EXPECT_NE(page.find("Recommended number of segments: <b>K = 2</b>"), std::string::npos);
  for (const char* id : {"chart-elbow", "chart-silhouette-k", "chart-gap", "chart-indices", "chart-heatmap",
                         "chart-pca-2d", "chart-pca-3d", "chart-stability"})
    EXPECT_NE(page.find(std::string("id=\"") + id + "\""), std::string::npos) << id;
  EXPECT_NE(page.find("'<\\/script>'"), std::string::npos);  // the library's "</script" escaped
  EXPECT_EQ(count(page, "</script>"), count(page, "<script"));
}

// ---- the command and the browser ------------------------------------------------------------------

class ReportCli : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    // Donors in four groups, with a log1p scaler as segforge-prep writes.
    std::mt19937 gen(41);
    std::normal_distribution<float> noise(0.0f, 0.25f);
    const float centres[4][4] = {{2, -0.5f, 2, 0.5f}, {-1, -1, -1, -2}, {-1, 1.5f, 0, 1}, {0.5f, 0, -1.5f, 1}};
    Matrix<float> x(2400, 4);
    for (std::int64_t i = 0; i < x.rows(); ++i)
      for (int j = 0; j < 4; ++j) x(i, j) = centres[i % 4][j] + noise(gen);
    Scaler s;
    s.mean = {4.0, 1.0, 3.0, 6.0};
    s.scale = {1.0, 0.5, 1.0, 0.5};
    s.transform = {"log1p", "log1p", "log1p", "log1p"};
    write_features(path("donors.h5"), x.view(), {"recency_days", "frequency_gifts", "monetary_total", "tenure_days"},
                   {}, s);
  }
  int run(const std::string& command, std::string* output = nullptr) const { return shell(command, output); }
  int segforge(const std::string& args, std::string* output = nullptr) const {
    return run(std::string(SEGFORGE_BINARY) + " " + args, output);
  }
  /// fit, sweep, stability, report: the demo's steps on small data.
  void make_report(const std::string& extra = "") {
    std::string out;
    ASSERT_EQ(segforge("fit " + path("donors.h5") + " -k 4 --seed 3 --device cpu -o " + path("model.h5") +
                           " --labels " + path("segments.csv"),
                       &out),
              0)
        << out;
    ASSERT_EQ(segforge("sweep " + path("donors.h5") + " --k 2:7 --gap-refs 4 --device cpu -o " + path("sweep.json"), &out), 0)
        << out;
    ASSERT_EQ(segforge("stability " + path("donors.h5") + " -k 4 --runs 3 --device cpu -o " + path("stability.json"), &out), 0)
        << out;
    ASSERT_EQ(segforge("report " + path("model.h5") + " --features " + path("donors.h5") + " --labels " +
                           path("segments.csv") + " --sweep " + path("sweep.json") + " --stability " +
                           path("stability.json") + " --device cpu -o " + path("report.html") + extra,
                       &out),
              0)
        << out;
  }
};

TEST_F(ReportCli, WithoutPlotlyTheReportStillComes) {
  make_report();
  std::string out;
  // SEGFORGE_PLOTLY_JS naming a missing file: a report without charts, with a note.
  ASSERT_EQ(run("SEGFORGE_PLOTLY_JS=" + path("missing.js") + " " + SEGFORGE_BINARY + " report " + path("model.h5") +
                    " --features " + path("donors.h5") + " --sweep " + path("sweep.json") + " -o " + path("plain.html"),
                &out),
            0)
      << out;
  const std::string page = read_file(path("plain.html"));
  EXPECT_NE(page.find("No charts:"), std::string::npos);
  EXPECT_NE(page.find("Recommended number of segments: <b>K = 4</b>"), std::string::npos);
  EXPECT_NE(page.find("Segment dictionary"), std::string::npos);
  EXPECT_EQ(page.find("class=\"chart\""), std::string::npos);
  // Bad input: a missing --plotly file, a sweep file that is not one, features of another shape.
  EXPECT_EQ(segforge("report " + path("model.h5") + " --features " + path("donors.h5") + " --plotly " +
                         path("nope.js") + " -o " + path("bad.html"),
                     &out),
            2)
      << out;
  std::ofstream(path("notsweep.json")) << "{\"format\": \"other\"}";
  EXPECT_EQ(segforge("report " + path("model.h5") + " --features " + path("donors.h5") + " --sweep " +
                         path("notsweep.json") + " -o " + path("bad.html"),
                     &out),
            2)
      << out;
  Matrix<float> other(10, 3, 1.0f);
  write_features(path("other.h5"), other.view(), {"a", "b", "c"});
  EXPECT_EQ(segforge("report " + path("model.h5") + " --features " + path("other.h5") + " -o " + path("bad.html"), &out), 2)
      << out;
  EXPECT_FALSE(fs::exists(path("bad.html")));
}

constexpr const char* kPlaywrightCheck = R"JS(
const { chromium } = require(process.argv[2]);
(async () => {
  const browser = await chromium.launch({ executablePath: process.argv[3], args: ['--no-sandbox', '--disable-gpu',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
      '--enable-unsafe-swiftshader'] });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors = [];
  page.on('console', m => { if (m.type() === 'error') errors.push('console: ' + m.text()); });
  page.on('pageerror', e => errors.push('pageerror: ' + e.message));
  page.on('requestfailed', r => errors.push('request failed: ' + r.url()));
  await page.goto('file://' + process.argv[4]);
  await page.waitForSelector('body[data-report-ready]', { timeout: 90000 });
  const result = await page.evaluate(() => ({
    ready: document.body.getAttribute('data-report-ready'),
    drawn: Number(document.body.getAttribute('data-charts-drawn')),
    charts: Array.from(document.querySelectorAll('.chart')).map(c => ({
      id: c.id, kind: c.getAttribute('data-kind'),
      svg: c.querySelectorAll('svg.main-svg').length, marks: c.querySelectorAll('path, rect').length,
      canvas: c.querySelectorAll('canvas').length })) }));
  await page.screenshot({ path: process.argv[5], fullPage: true });
  await browser.close();
  result.errors = errors;
  console.log('RESULT ' + JSON.stringify(result));
})().catch(e => { console.log('FAILED ' + e); process.exit(1); });
)JS";

/// Opens `html` in headless Chromium (playwright-core when installed, else --dump-dom): the page
/// reports ready, `charts` charts drew with no error, the 3-D one its WebGL canvas; the
/// screenshot is kept as test-artifacts/`shot`.
/// `dir`: the test's temporary folder (for the scripts and the browser profile).
void expect_every_chart_drawn(const fs::path& dir, const std::string& html, int charts, const std::string& shot) {
  auto path = [&](const std::string& name) { return (dir / name).string(); };
  auto run = [&](const std::string& command, std::string* output = nullptr) {
    return test::run_shell(command, dir / "log.txt", output);
  };
  const std::string chromium = test::chromium_binary();
  fs::create_directories(artifacts_dir());
  const std::string screenshot = (artifacts_dir() / shot).string();
  fs::remove(screenshot);
  // The page's own bookkeeping (data-report-ready, data-errors) serves both ways of looking.
  const fs::path playwright = repo_root() / "node_modules/playwright-core";
  const std::string node = test::which("node");
  std::string out;
  if (!node.empty() && fs::exists(playwright)) {
    std::ofstream(path("check.js")) << kPlaywrightCheck;
    ASSERT_EQ(run("timeout 240 " + node + " " + path("check.js") + " " + playwright.string() + " " + chromium + " " +
                      html + " " + screenshot,
                  &out),
              0)
        << out;
    const auto at = out.find("RESULT ");
    ASSERT_NE(at, std::string::npos) << out;
    const std::string result = out.substr(at);
    std::cout << "  [measured] " << result.substr(0, 400) << "\n";
    EXPECT_NE(result.find("\"ready\":\"1\""), std::string::npos) << result;
    EXPECT_NE(result.find("\"drawn\":" + std::to_string(charts)), std::string::npos) << result;
    EXPECT_NE(result.find("\"errors\":[]"), std::string::npos) << result;
    EXPECT_EQ(count(result, "\"svg\":0"), 0) << "a chart without its SVG: " << result;
    EXPECT_EQ(count(result, "\"kind\":\"webgl\""), 1) << result;
    EXPECT_EQ(std::regex_search(result, std::regex("\"kind\":\"webgl\"[^}]*\"canvas\":0")), false)
        << "the 3-D chart drew no WebGL canvas: " << result;
  } else {
    // Without playwright-core: chromium --dump-dom after the charts drew, and --screenshot.
    const std::string flags = " --headless --no-sandbox --disable-gpu --disable-background-networking "
                              "--disable-component-update --disable-sync --no-first-run --enable-unsafe-swiftshader "
                              "--virtual-time-budget=20000 --user-data-dir=" + path("profile");
    ASSERT_EQ(run("timeout 240 " + chromium + flags + " --dump-dom file://" + html + " > " +
                  path("dom.html") + " 2>/dev/null"),
              0);
    const std::string dom = read_file(path("dom.html"));
    EXPECT_NE(dom.find("data-report-ready=\"1\""), std::string::npos);
    EXPECT_NE(dom.find("data-charts-drawn=\"" + std::to_string(charts) + "\""), std::string::npos);
    EXPECT_EQ(dom.find("data-errors="), std::string::npos);
    EXPECT_GE(count(dom, "class=\"main-svg\""), charts);
    EXPECT_GE(count(dom, "<canvas"), 1);
    run("timeout 240 " + chromium + flags + " --window-size=1400,5000 --screenshot=" + screenshot + " file://" +
        html);
  }
  EXPECT_TRUE(fs::exists(screenshot)) << screenshot;
  if (fs::exists(screenshot)) EXPECT_GT(fs::file_size(screenshot), 50000u);
  std::cout << "  [artifact] " << screenshot << "\n";
}

TEST_F(ReportCli, OpensInHeadlessChromiumWithEveryChartDrawn) {
  const std::string chromium = test::chromium_binary();
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs Debian's chromium)";
  const fs::path plotly = repo_root() / "node_modules/plotly.js-dist-min/plotly.min.js";
  if (!fs::exists(plotly)) GTEST_SKIP() << "plotly.js is not installed: run `npm ci` in " << repo_root();
  make_report();
  const std::string page = read_file(path("report.html"));
  ASSERT_NE(page.find("id=\"chart-pca-3d\""), std::string::npos);
  const int charts = count(page, "class=\"chart\"");
  EXPECT_EQ(charts, 9);  // 4 sweep curves, silhouette plot, heat map, 2-D, 3-D, stability
  expect_every_chart_drawn(path(""), path("report.html"), charts, "report.png");
}

// A DBSCAN model: the outliers as segment -1 (grey, no centre, left out of the silhouette as
// fit's metrics leave them out), the k-distance curve with the model's eps, DBSCAN's stability;
// every chart draws in Chromium.
TEST_F(ReportCli, DbscanModelWithOutliersTheEpsCurveAndStability) {
  // The donors plus 40 rows scattered far from the groups: outliers at any sensible eps.
  Matrix<float> x = read_features(path("donors.h5")).x;
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> far(-8.0f, 8.0f);
  std::vector<float> values(x.data(), x.data() + x.size());
  for (int i = 0; i < 40; ++i)
    for (int j = 0; j < 4; ++j) values.push_back(far(gen) + (far(gen) > 0 ? 12.0f : -12.0f));
  const Matrix<float> noisy(x.rows() + 40, 4, values);
  write_features(path("noisy.h5"), noisy.view(), {"recency_days", "frequency_gifts", "monetary_total", "tenure_days"});
  std::string out;
  ASSERT_EQ(segforge("dbscan-eps " + path("noisy.h5") + " --min-samples 10 --device cpu -o " + path("eps.json"), &out), 0) << out;
  nlohmann::json curve;
  std::ifstream(path("eps.json")) >> curve;
  const std::string eps = std::to_string(curve.at("eps").get<double>());
  ASSERT_EQ(segforge("fit " + path("noisy.h5") + " --algorithm dbscan --eps " + eps + " --min-samples 10 --device cpu -o " +
                         path("model.h5") + " --labels " + path("segments.csv") + " --metrics " + path("metrics.json"),
                     &out),
            0)
      << out;
  nlohmann::json metrics;
  std::ifstream(path("metrics.json")) >> metrics;
  const int k = metrics.at("k").get<int>();
  const std::int64_t n_noise = metrics.at("n_noise").get<std::int64_t>();
  ASSERT_EQ(k, 4) << out;
  ASSERT_GE(n_noise, 40) << out;
  ASSERT_EQ(segforge("stability " + path("noisy.h5") + " --algorithm dbscan --eps " + eps +
                         " --min-samples 10 --runs 3 --device cpu -o " + path("stability.json"),
                     &out),
            0)
      << out;
  ASSERT_EQ(segforge("report " + path("model.h5") + " --features " + path("noisy.h5") + " --dbscan-eps " + path("eps.json") +
                         " --stability " + path("stability.json") + " --device cpu -o " + path("report.html"),
                     &out),
            0)
      << out;
  const std::string page = read_file(path("report.html"));
  EXPECT_NE(page.find("K = 4 and the outliers"), std::string::npos);
  EXPECT_NE(page.find("id=\"choosing-eps\""), std::string::npos);
  EXPECT_NE(page.find("DBSCAN found the number of segments itself"), std::string::npos);
  // The outliers' profile row: segment -1, its size fit's n_noise.
  EXPECT_TRUE(std::regex_search(page, std::regex("<tr><td>-1</td><td class=\"nowrap\"><span class=\"swatch\" style=\"background:#b0b0b0\"></span>Outliers</td><td class=\"num\">" +
                                                 std::to_string(n_noise) + "</td>")))
      << "no outliers row of " << n_noise;
  // The report's silhouette (exact: fewer rows than --silhouette-rows) is fit's, over the
  // clustered rows only.
  const std::string opening = "id=\"segforge-data\">";
  const auto data_at = page.find(opening);
  ASSERT_NE(data_at, std::string::npos);
  const auto data_end = page.find("</script>", data_at);
  const auto data = nlohmann::json::parse(page.substr(data_at + opening.size(), data_end - data_at - opening.size()));
  EXPECT_NEAR(data.at("silhouette").at("score").get<double>(), metrics.at("silhouette").get<double>(), 1e-6);
  EXPECT_EQ(data.at("silhouette").at("by_segment").size(), 5u);
  EXPECT_TRUE(data.at("silhouette").at("by_segment").at(4).empty());
  EXPECT_EQ(data.at("pca").at("centres").at("x").size(), 4u);  // the outliers have no centre
  EXPECT_EQ(data.at("segments").at(4).at("name"), "Outliers");
  EXPECT_NEAR(data.at("eps").at("model_eps").get<double>(), std::stod(eps), 1e-6);
  // K-Means-only inputs are refused for a DBSCAN model, and the other way round.
  EXPECT_EQ(segforge("report " + path("model.h5") + " --features " + path("noisy.h5") + " --drift " + path("eps.json") +
                         " --device cpu -o " + path("bad.html"),
                     &out),
            2)
      << out;
  EXPECT_NE(out.find("DBSCAN model"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(path("bad.html")));

  const std::string chromium = test::chromium_binary();
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs Debian's chromium)";
  if (!fs::exists(repo_root() / "node_modules/plotly.js-dist-min/plotly.min.js"))
    GTEST_SKIP() << "plotly.js is not installed: run `npm ci` in " << repo_root();
  const int charts = count(page, "class=\"chart\"");
  EXPECT_EQ(charts, 6);  // eps curve, silhouette, heat map, 2-D, 3-D, stability
  expect_every_chart_drawn(path(""), path("report.html"), charts, "report-dbscan.png");
}

// An agglomerative model: the report labels the rows by the model's leaves (fit's segments), and
// draws the top of the tree with the cut between the last merge kept and the first undone.
TEST_F(ReportCli, AgglomerativeModelDrawsTheTree) {
  std::string out;
  ASSERT_EQ(segforge("fit " + path("donors.h5") + " --algorithm agglomerative -k 4 --device cpu -o " + path("model.h5") +
                         " --labels " + path("segments.csv"),
                     &out),
            0)
      << out;
  ASSERT_EQ(segforge("report " + path("model.h5") + " --features " + path("donors.h5") + " --device cpu -o " + path("report.html"),
                     &out),
            0)
      << out;
  const std::string page = read_file(path("report.html"));
  EXPECT_NE(page.find("id=\"tree\""), std::string::npos);
  const std::string opening = "id=\"segforge-data\">";
  const auto at = page.find(opening);
  ASSERT_NE(at, std::string::npos);
  const auto data = nlohmann::json::parse(page.substr(at + opening.size(), page.find("</script>", at) - at - opening.size()));
  const Model model = read_model(path("model.h5"));
  const auto& g = data.at("dendrogram");
  EXPECT_EQ(g.at("n_leaves").get<std::int64_t>(), 2400);
  // 30 drawn leaves, each inside one segment, the segments consecutive and all four there; the
  // sizes add up to every row.
  const auto segs = g.at("leaf_segment").get<std::vector<double>>();
  ASSERT_EQ(segs.size(), 30u);
  std::set<int> seen;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    ASSERT_GE(segs[i], 0);
    if (i > 0 && segs[i] != segs[i - 1]) EXPECT_EQ(seen.count(static_cast<int>(segs[i])), 0u) << "segment split in the drawing";
    seen.insert(static_cast<int>(segs[i]));
  }
  EXPECT_EQ(seen.size(), 4u);
  double total = 0;
  for (double v : g.at("leaf_size").get<std::vector<double>>()) total += v;
  EXPECT_EQ(total, 2400.0);
  const double cut = g.at("cut").get<double>();
  const std::int64_t m = model.hierarchy_merges.rows();
  EXPECT_GT(cut, model.hierarchy_merges(m - 4, 2));  // the 4th-last merge is kept (below the cut)
  EXPECT_LT(cut, model.hierarchy_merges(m - 3, 2));  // the last 3 are undone
  // The report's segment sizes are fit's.
  const auto sizes = data.at("segments");
  for (int c = 0; c < 4; ++c) EXPECT_EQ(sizes.at(c).at("size").get<std::int64_t>(), model.segment_sizes[static_cast<std::size_t>(c)]);

  const std::string chromium = test::chromium_binary();
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs Debian's chromium)";
  if (!fs::exists(repo_root() / "node_modules/plotly.js-dist-min/plotly.min.js"))
    GTEST_SKIP() << "plotly.js is not installed: run `npm ci` in " << repo_root();
  const int charts = count(page, "class=\"chart\"");
  EXPECT_EQ(charts, 5);  // tree, silhouette, heat map, 2-D, 3-D
  expect_every_chart_drawn(path(""), path("report.html"), charts, "report-agglomerative.png");
}

TEST_F(ReportCli, AtLaptopWidthNoAxisIsClippedNoLabelsOverlapAndWideTablesScroll) {
  const std::string chromium = test::chromium_binary();
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs Debian's chromium)";
  const fs::path plotly = repo_root() / "node_modules/plotly.js-dist-min/plotly.min.js";
  const fs::path playwright = repo_root() / "node_modules/playwright-core";
  const std::string node = test::which("node");
  if (!fs::exists(plotly) || !fs::exists(playwright) || node.empty())
    GTEST_SKIP() << "plotly.js, playwright-core or node is not installed: run `npm ci` in " << repo_root();
  // Six groups on 12 features with long names: a Calinski–Harabasz index in the thousands (the
  // right-hand axis the review saw clipped), six long centre names, a profile table wider than
  // a laptop's screen; original values in the tens of thousands and near zero.
  std::mt19937 gen(43);
  std::normal_distribution<float> noise(0.0f, 0.35f);
  const int d = 12, k = 6;
  std::vector<std::vector<float>> centres(k, std::vector<float>(d));
  std::uniform_real_distribution<float> spread(-2.5f, 2.5f);
  for (auto& c : centres)
    for (auto& v : c) v = spread(gen);
  Matrix<float> x(3000, d);
  for (std::int64_t i = 0; i < x.rows(); ++i)
    for (int j = 0; j < d; ++j) x(i, j) = centres[i % k][j] + noise(gen);
  std::vector<std::string> names = {"recency_days", "frequency_gifts_lifetime", "monetary_total_lifetime",
                                    "tenure_days_since_first", "largest_gift_amount", "gifts_last_12_months",
                                    "amount_last_12_months", "trend_12m_ratio_of_amounts",
                                    "country_united_kingdom_share", "annual_household_income", "campaign_responses",
                                    "web_visits_per_month"};
  Scaler s;
  s.mean.assign(d, 0.0);
  s.scale.assign(d, 1.0);
  s.transform.assign(d, "identity");
  s.mean[9] = 60000.0;  // income: tens of thousands
  s.scale[9] = 20000.0;
  s.scale[8] = 1e-7;  // a share that is ~0 everywhere
  write_features(path("wide.h5"), x.view(), names, {}, s);
  std::string out;
  ASSERT_EQ(segforge("fit " + path("wide.h5") + " -k 6 --seed 1 --device cpu -o " + path("wide_model.h5"), &out), 0) << out;
  ASSERT_EQ(segforge("sweep " + path("wide.h5") + " --k 2:7 --gap-refs 2 --device cpu -o " + path("wide_sweep.json"), &out), 0)
      << out;
  ASSERT_EQ(segforge("report " + path("wide_model.h5") + " --features " + path("wide.h5") + " --sweep " +
                         path("wide_sweep.json") + " --device cpu -o " + path("wide.html"),
                     &out),
            0)
      << out;
  const std::string html = read_file(path("wide.html"));
  // The analyst's numbers in what the page shows (not the inlined library or the chart data): no
  // exponents, the header's inertia with thousands separators.
  const auto body = html.find("<body>"), data = html.find("id=\"segforge-data\"");
  ASSERT_NE(body, std::string::npos);
  ASSERT_NE(data, std::string::npos);
  const std::string page = html.substr(body, data - body);
  EXPECT_FALSE(std::regex_search(page, std::regex(R"([0-9]e[-+][0-9])"))) << "an exponent in the page's text";
  EXPECT_TRUE(std::regex_search(page, std::regex(R"(, inertia [0-9]{1,3}(,[0-9]{3})*(\.[0-9]{1,4})? )"))) << "header";
  fs::create_directories(artifacts_dir());
  const std::string screenshot = (artifacts_dir() / "report-1366.png").string();
  std::ofstream(path("layout.js")) << test::kLayoutCheck;
  ASSERT_EQ(run("timeout 240 " + node + " " + path("layout.js") + " " + playwright.string() + " " + chromium + " " +
                    path("wide.html") + " " + screenshot,
                &out),
            0)
      << out;
  const auto at = out.find("RESULT ");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string result = out.substr(at);
  std::cout << "  [measured] " << result.substr(0, 600) << "\n  [artifact] " << screenshot << "\n";
  EXPECT_NE(result.find("\"problems\":[]"), std::string::npos) << result;
}

}  // namespace
}  // namespace segforge
