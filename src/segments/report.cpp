// report.html: the data views (through the Backend) and the page itself.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <limits>
#include <numeric>

#include "segforge/error.hpp"
#include "segforge/metrics.hpp"
#include "segforge/number_format.hpp"
#include "segforge/report.hpp"
#include "segforge/rng.hpp"

namespace segforge {

namespace {

// ---- JSON and HTML text (writers only; the page's data is numbers and strings) ----------------

/// A JSON string literal that is also safe inside <script> (no "</", no U+2028/9 surprises).
std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '<': out += "\\u003c"; break;
      case '>': out += "\\u003e"; break;
      case '&': out += "\\u0026"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else if (c == 0xE2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
                   (static_cast<unsigned char>(s[i + 2]) == 0xA8 || static_cast<unsigned char>(s[i + 2]) == 0xA9)) {
          out += static_cast<unsigned char>(s[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029";
          i += 2;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string json_optional(const std::optional<double>& v) { return v ? json_number(*v) : "null"; }

template <class T, class F>
std::string json_array(const std::vector<T>& values, F each) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ",";
    out += each(values[i]);
  }
  return out + "]";
}

std::string json_numbers(const std::vector<double>& v) { return json_array(v, json_number); }

std::string html(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fmt(const char* format, double v) {
  if (!std::isfinite(v)) return "–";
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

/// A number stored as text (an HDF5 attribute) as analyst_number writes it; other text as is.
std::string number_text(const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  return !text.empty() && end == text.c_str() + text.size() ? analyst_number(v) : text;
}

std::string thousands(std::int64_t v) {
  std::string s = std::to_string(v), out;
  const std::size_t start = (s[0] == '-') ? 1 : 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i > start && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

// ---- the page ---------------------------------------------------------------------------------

constexpr const char* kStyle = R"CSS(
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1d2430; background: #f6f7f9; }
header { background: #1d3557; color: #fff; padding: 20px 32px; }
header h1 { margin: 0 0 6px; font-size: 24px; }
header p { margin: 2px 0; opacity: 0.85; font-size: 14px; }
main { padding: 8px 32px 32px; max-width: 1400px; }
section { background: #fff; border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,0.08); padding: 16px 20px; margin: 18px 0; }
h2 { margin: 4px 0 12px; font-size: 19px; color: #1d3557; }
.recommend { font-size: 18px; padding: 12px 16px; background: #e8f1fb; border-left: 5px solid #1d70b8; border-radius: 4px; }
.recommend b { font-size: 22px; }
.note { background: #fff6db; border-left: 5px solid #e0a800; padding: 8px 12px; border-radius: 4px; margin: 8px 0; }
.warn { background: #fde8e8; border-left: 5px solid #c0392b; padding: 8px 12px; border-radius: 4px; margin: 8px 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(520px, 100%), 1fr)); gap: 12px; }
.chart { min-height: 360px; min-width: 0; }
/* Wide tables (many features) scroll inside their card instead of widening the page. */
.scroll { overflow-x: auto; max-width: 100%; }
.scroll table th, .scroll td.num, .nowrap { white-space: nowrap; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border-bottom: 1px solid #e3e6ea; padding: 6px 8px; text-align: left; vertical-align: top; }
th { background: #f0f2f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pos { color: #b03a2e; } .neg { color: #1f618d; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
footer { color: #66707a; font-size: 12px; padding: 0 32px 24px; }
)CSS";

/// The palette the charts use (Plotly's default), so table swatches match the scatter colours.
constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
std::string colour(std::size_t c) { return kPalette[c % 10]; }
/// DBSCAN's outliers (segment -1) are grey, the segments the palette's colours.
constexpr const char* kOutlierColour = "#b0b0b0";
std::string colour(const ReportInput& in, std::size_t c) {
  return c < in.profiles.size() && in.profiles[c].segment < 0 ? kOutlierColour : colour(c);
}
/// The segments the model found: the profiles less DBSCAN's outliers.
std::size_t cluster_count(const ReportInput& in) {
  std::size_t k = 0;
  for (const auto& p : in.profiles) k += p.segment >= 0;
  return k;
}

/// Installed first, so that any error in a later script is counted on the page itself.
constexpr const char* kErrorHook = R"JS(
window.segforgeErrors = [];
window.addEventListener('error', function (e) { window.segforgeErrors.push(String(e.message)); document.documentElement.setAttribute('data-errors', window.segforgeErrors.length); });
)JS";

constexpr const char* kDraw = R"JS(
(function () {
  var data = JSON.parse(document.getElementById('segforge-data').textContent);
  var palette = data.palette;
  var colourOf = function (c) { return data.segments[c].colour; };
  var config = { displaylogo: false, responsive: true };
  var pending = [];
  // Every 2-D axis: margins grow to fit its tick labels and title (a right-hand second axis
  // would otherwise be clipped at the card's edge), and numbers read as the tables write them:
  // thousands separators, no "k"/"e+04" exponents.
  var axisDefaults = { automargin: true, separatethousands: true, exponentformat: 'none' };
  function withDefaults(axis) {
    var out = {};
    for (var key in axisDefaults) out[key] = axisDefaults[key];
    for (var key2 in axis) out[key2] = axis[key2];
    if (out.title) out.title.standoff = 8;
    return out;
  }
  // `after(el)`, when given, runs once the chart is drawn (for what needs its pixel geometry).
  function draw(id, traces, layout, after) {
    var el = document.getElementById(id);
    if (!el) return;
    var base = { margin: { t: 48, r: 24, b: 56, l: 72 }, height: 380, font: { size: 12 },
                 legend: { orientation: 'h', y: -0.2 } };
    for (var key in layout) base[key] = /^[xy]axis[0-9]*$/.test(key) ? withDefaults(layout[key]) : layout[key];
    ['xaxis', 'yaxis'].forEach(function (a) { if (!base[a]) base[a] = withDefaults({}); });
    // Titles start at the left, away from the toolbar in the top-right corner.
    if (base.title) { base.title.x = 0; base.title.xref = 'container'; base.title.xanchor = 'left'; base.title.pad = { l: 16 }; }
    var drawn = Plotly.newPlot(el, traces, base, config);
    if (after) drawn = drawn.then(function () { return after(el); });
    pending.push(drawn);
  }
  // Names beside the segment centres in the 2-D scatter, placed so that no two overlap and none
  // leaves the plot area: for each centre in turn, the first of 8 directions x 5 distances whose
  // box is free, else the one with the least overlap (boxes measured with the page's font).
  function labelCentres(el, xs, ys, texts, colours) {
    var fl = el._fullLayout, xa = fl.xaxis, ya = fl.yaxis, w = fl._size.w, h = fl._size.h;
    var ctx = document.createElement('canvas').getContext('2d');
    ctx.font = '12px ' + fl.font.family;
    var at = xs.map(function (x, i) { return [xa.l2p(x), ya.l2p(ys[i])]; });
    var boxes = at.map(function (p) { return [p[0] - 9, p[1] - 9, p[0] + 9, p[1] + 9]; });  // the markers
    function overlap(a, b) {
      return Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0])) * Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
    }
    var directions = [[0, -1], [0, 1], [1, 0], [-1, 0], [1, -1], [-1, -1], [1, 1], [-1, 1]];
    var annotations = [];
    texts.forEach(function (text, i) {
      var bw = ctx.measureText(text).width + 10, bh = 20, best = null, bestCost = Infinity;
      [14, 30, 52, 80, 120].forEach(function (r) {
        directions.forEach(function (d) {
          if (bestCost === 0) return;
          var cx = at[i][0] + d[0] * (r + bw / 2), cy = at[i][1] + d[1] * (r + bh / 2);
          var box = [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2];
          var outside = bw * bh - overlap(box, [0, 0, w, h]);
          var cost = 1e6 * outside;
          boxes.forEach(function (b) { cost += overlap(box, b); });
          if (cost < bestCost) { bestCost = cost; best = { box: box, dx: cx - at[i][0], dy: cy - at[i][1] }; }
        });
      });
      boxes.push(best.box);
      annotations.push({ x: xs[i], y: ys[i], xref: 'x', yref: 'y', text: text, showarrow: true, arrowhead: 0,
                         arrowcolor: '#555', ax: best.dx, ay: best.dy, xanchor: 'center', yanchor: 'middle',
                         bgcolor: 'rgba(255,255,255,0.88)', bordercolor: colours[i], borderwidth: 1, borderpad: 3,
                         font: { size: 12 }, captureevents: false });
    });
    return Plotly.relayout(el, { annotations: annotations });
  }
  function vline(k) {
    return [{ type: 'line', x0: k, x1: k, yref: 'paper', y0: 0, y1: 1, line: { dash: 'dot', color: '#c0392b', width: 2 } }];
  }
  if (data.eps) {
    var e = data.eps;
    var epsShapes = [{ type: 'line', xref: 'paper', x0: 0, x1: 1, y0: e.model_eps, y1: e.model_eps,
                       line: { dash: 'dot', color: '#1f77b4', width: 2 } }];
    draw('chart-eps', [{ x: e.x, y: e.y, mode: 'lines', name: 'distance to the ' + e.k + '-th nearest row, sorted' },
                       { x: [e.knee_x], y: [e.suggested], mode: 'markers', name: e.knee_found ? 'knee (--eps auto)' : '90th percentile (no knee)',
                         marker: { size: 16, symbol: 'star', color: '#c0392b' } }],
         { title: { text: 'k-distance curve (k = ' + e.k + '): rows above the dotted line have fewer than k rows within eps' },
           xaxis: { title: { text: 'rows sorted by k-distance (%)' }, range: [0, 100] },
           yaxis: { title: { text: 'k-distance' } }, shapes: epsShapes,
           annotations: [{ xref: 'paper', x: 0, xanchor: 'left', y: e.model_eps, yanchor: 'bottom', showarrow: false,
                           text: 'model eps = ' + e.model_eps_text, bgcolor: 'rgba(255,255,255,0.85)', font: { size: 11, color: '#1f77b4' } }] });
  }
  var sweep = data.sweep;
  if (sweep) {
    var ks = sweep.records.map(function (r) { return r.k; });
    function column(name) { return sweep.records.map(function (r) { return r[name]; }); }
    var rec = sweep.recommended_k > 0 ? vline(sweep.recommended_k) : [];
    var elbow = [{ x: ks, y: column('inertia'), mode: 'lines+markers', name: 'inertia (within sum of squares)' }];
    if (sweep.choices.elbow) {
      var i = ks.indexOf(sweep.choices.elbow);
      elbow.push({ x: [sweep.choices.elbow], y: [sweep.records[i].inertia], mode: 'markers', name: 'Kneedle knee',
                   marker: { size: 16, symbol: 'star', color: '#c0392b' } });
    }
    draw('chart-elbow', elbow, { title: { text: 'Elbow: inertia by K' }, xaxis: { title: { text: 'K' }, dtick: 1 },
                                 yaxis: { title: { text: 'inertia' } }, shapes: rec });
    draw('chart-silhouette-k', [{ x: ks, y: column('silhouette'), mode: 'lines+markers', name: 'mean silhouette',
                                  error_y: { type: 'data', array: column('silhouette_se'), visible: true } }],
         { title: { text: 'Silhouette by K (higher is better)' }, xaxis: { title: { text: 'K' }, dtick: 1 },
           yaxis: { title: { text: 'mean silhouette' } }, shapes: rec });
    draw('chart-gap', [{ x: ks, y: column('gap'), mode: 'lines+markers', name: 'Gap(K) ± s(K)',
                         error_y: { type: 'data', array: column('gap_s'), visible: true } }],
         { title: { text: 'Gap statistic (smallest K with Gap(K) ≥ Gap(K+1) − s(K+1))' },
           xaxis: { title: { text: 'K' }, dtick: 1 }, yaxis: { title: { text: 'Gap' } }, shapes: rec });
    draw('chart-indices', [
        { x: ks, y: column('davies_bouldin'), mode: 'lines+markers', name: 'Davies–Bouldin (lower is better)' },
        { x: ks, y: column('calinski_harabasz'), mode: 'lines+markers', name: 'Calinski–Harabasz (higher is better)', yaxis: 'y2' }],
         { title: { text: 'Davies–Bouldin and Calinski–Harabasz by K' }, xaxis: { title: { text: 'K' }, dtick: 1 },
           yaxis: { title: { text: 'Davies–Bouldin' } },
           yaxis2: { title: { text: 'Calinski–Harabasz' }, overlaying: 'y', side: 'right', tickmode: 'auto', showgrid: false }, shapes: rec });
  }
  var names = data.segments.map(function (s) { return s.name; });
  if (data.dendrogram) {
    var dg = data.dendrogram;
    var traces = dg.lines.map(function (l) {
      return { type: 'scatter', mode: 'lines', x: l.x, y: l.y, line: { color: l.colour, width: 2 }, hoverinfo: 'skip',
               showlegend: false, connectgaps: false };
    });
    traces.push({ type: 'scatter', mode: 'markers', x: dg.leaf_x, y: dg.leaf_x.map(function () { return 0; }),
                  marker: { size: 7, color: dg.leaf_segment.map(function (c) { return colourOf(c); }) }, showlegend: false, cliponaxis: false,
                  text: dg.leaf_x.map(function (_, i) { return names[dg.leaf_segment[i]] + ': ' + Math.round(dg.leaf_size[i]).toLocaleString('en-US') + ' rows'; }),
                  hoverinfo: 'text' });
    // Each segment's name under the middle of its drawn leaves (they are consecutive).
    var groups = [];
    dg.leaf_segment.forEach(function (c, i) {
      var g = groups.length ? groups[groups.length - 1] : null;
      if (g && g.c === c) { g.last = i; } else { groups.push({ c: c, first: i, last: i }); }
    });
    var annotations = groups.map(function (g) {
      return { x: (dg.leaf_x[g.first] + dg.leaf_x[g.last]) / 2, y: 0, yref: 'y', yanchor: 'top', yshift: -8, showarrow: false,
               text: names[g.c], textangle: groups.length > 6 ? -30 : 0, font: { size: 11, color: colourOf(g.c) } };
    });
    annotations.push({ xref: 'paper', x: 1, xanchor: 'right', y: dg.cut, yanchor: 'bottom', showarrow: false,
                       text: 'cut: ' + groups.length + ' segments', bgcolor: 'rgba(255,255,255,0.85)', font: { size: 11, color: '#c0392b' } });
    draw('chart-dendrogram', traces, {
      title: { text: 'The tree: the last ' + dg.lines.reduce(function (s, l) { return s + l.x.length / 5; }, 0) + ' merges of ' + (dg.n_leaves - 1).toLocaleString('en-US') },
      height: 460, margin: { t: 48, r: 24, b: 110, l: 72 },
      xaxis: { showticklabels: false, showgrid: false, zeroline: false },
      yaxis: { title: { text: 'merge height' }, rangemode: 'tozero' },
      shapes: [{ type: 'line', xref: 'paper', x0: 0, x1: 1, y0: dg.cut, y1: dg.cut, line: { dash: 'dot', color: '#c0392b', width: 2 } }],
      annotations: annotations });
  }
  if (data.silhouette) {
    var traces = [], offset = 0, ticks = [], labels = [];
    data.silhouette.by_segment.forEach(function (values, c) {
      if (!values.length) return;  // DBSCAN's outliers have no silhouette
      var ys = values.map(function (_, i) { return offset + i; });
      traces.push({ type: 'bar', orientation: 'h', x: values, y: ys, name: names[c], width: 1,
                    marker: { color: colourOf(c), line: { width: 0 } } });
      ticks.push(offset + values.length / 2); labels.push(names[c]);
      offset += values.length + Math.max(8, Math.round(data.silhouette.n / 60));
    });
    draw('chart-silhouette', traces, {
      title: { text: 'Silhouette per segment (' + data.silhouette.method + ', mean ' + data.silhouette.score.toFixed(3) + ')' },
      bargap: 0, height: 520, showlegend: false,
      xaxis: { title: { text: 's(i)' }, range: [-1, 1] },
      yaxis: { tickvals: ticks, ticktext: labels, automargin: true },
      shapes: [{ type: 'line', x0: data.silhouette.score, x1: data.silhouette.score, yref: 'paper', y0: 0, y1: 1,
                 line: { dash: 'dot', color: '#c0392b' } }] });
  }
  var pca = data.pca;
  var axis = function (i) { return 'PC' + (i + 1) + ' (' + (100 * pca.explained[i]).toFixed(1) + '% of variance)'; };
  var flat = [], solid = [];
  pca.segments.forEach(function (s, c) {
    flat.push({ type: 'scatter', mode: 'markers', x: s.x, y: s.y, name: names[c],
                marker: { size: 4, opacity: 0.6, color: colourOf(c) } });
    solid.push({ type: 'scatter3d', mode: 'markers', x: s.x, y: s.y, z: s.z, name: names[c],
                 marker: { size: 2, opacity: 0.7, color: colourOf(c) } });
  });
  flat.push({ type: 'scatter', mode: 'markers', x: pca.centres.x, y: pca.centres.y, name: 'centres',
              text: pca.centres.names, hoverinfo: 'text',
              marker: { size: 14, symbol: 'x', color: '#111', line: { width: 2 } } });
  solid.push({ type: 'scatter3d', mode: 'markers', x: pca.centres.x, y: pca.centres.y, z: pca.centres.z,
               name: 'centres', text: pca.centres.names, marker: { size: 7, symbol: 'diamond', color: '#111' } });
  draw('chart-pca-2d', flat, { title: { text: 'Segments on the first two principal axes (sample of ' + pca.n + ')' },
                               xaxis: { title: { text: axis(0) } }, yaxis: { title: { text: axis(1) } }, height: 520 },
       function (el) {
         return labelCentres(el, pca.centres.x, pca.centres.y, pca.centres.names,
                             pca.centres.segments.map(function (c) { return colourOf(c); }));
       });
  draw('chart-pca-3d', solid, { title: { text: 'Interactive 3-D view (drag to rotate)' }, height: 560,
                                legend: { orientation: 'h', y: -0.05, itemsizing: 'constant' },
                                scene: { xaxis: { title: { text: 'PC1' } }, yaxis: { title: { text: 'PC2' } }, zaxis: { title: { text: 'PC3' } } } });
  draw('chart-heatmap', [{ type: 'heatmap', z: data.z_scores, x: data.features, y: names, zmid: 0,
                           colorscale: 'RdBu', reversescale: true, colorbar: { title: { text: 'z' } },
                           hovertemplate: '%{y}<br>%{x}: z = %{z:.2f}<extra></extra>' }],
       { title: { text: 'Segment centres: z-scores against all customers' },
         height: Math.max(320, 60 + 40 * names.length), yaxis: { automargin: true, autorange: 'reversed' },
         xaxis: { automargin: true } });
  if (data.stability) {
    draw('chart-stability', [
        { type: 'bar', x: names.slice(0, data.stability.jaccard_mean.length), y: data.stability.jaccard_mean, name: 'mean Jaccard',
          marker: { color: names.map(function (_, c) { return colourOf(c); }) } },
        { type: 'scatter', mode: 'markers', x: names.slice(0, data.stability.jaccard_min.length), y: data.stability.jaccard_min, name: 'lowest run',
          marker: { symbol: 'line-ew-open', size: 24, color: '#111', line: { width: 3 } } }],
         { title: { text: 'Per-segment Jaccard agreement across re-fits' }, yaxis: { range: [0, 1.05], title: { text: 'Jaccard' } },
           // Hennig's lines: stable at the threshold (0.75), dissolved at or below 0.5.
           shapes: [{ type: 'line', xref: 'paper', x0: 0, x1: 1, y0: data.stability.threshold, y1: data.stability.threshold,
                      line: { dash: 'dot', color: '#1e8449' } },
                    { type: 'line', xref: 'paper', x0: 0, x1: 1, y0: 0.5, y1: 0.5, line: { dash: 'dot', color: '#c0392b' } }],
           annotations: [{ xref: 'paper', x: 1, xanchor: 'right', y: data.stability.threshold, yanchor: 'bottom', showarrow: false,
                           text: 'stable ≥ ' + data.stability.threshold, bgcolor: 'rgba(255,255,255,0.85)', font: { size: 11, color: '#1e8449' } },
                         { xref: 'paper', x: 1, xanchor: 'right', y: 0.5, yanchor: 'top', showarrow: false,
                           text: 'dissolved ≤ 0.5', bgcolor: 'rgba(255,255,255,0.85)', font: { size: 11, color: '#c0392b' } }] });
  }
  if (data.drift) {
    var dr = data.drift;
    draw('chart-drift-shares', [
        { type: 'bar', x: dr.names, y: dr.before, name: 'reference' },
        { type: 'bar', x: dr.names, y: dr.after, name: 'current' }],
         { title: { text: 'Segment shares: reference and current' }, barmode: 'group',
           yaxis: { title: { text: 'share of rows' }, tickformat: '.0%' }, xaxis: { automargin: true } });
    var psiColours = dr.psi.map(function (v) { return v >= dr.psi_refresh ? '#c0392b' : v >= dr.psi_watch ? '#e0a800' : '#1e8449'; });
    function band(v, colour) {
      return { type: 'line', x0: v, x1: v, yref: 'paper', y0: 0, y1: 1, line: { dash: 'dot', color: colour } };
    }
    draw('chart-drift-psi', [{ type: 'bar', orientation: 'h', x: dr.psi, y: dr.features, marker: { color: psiColours },
                               hovertemplate: '%{y}: PSI %{x:.3f}<extra></extra>' }],
         { title: { text: 'Feature PSI on the reference quantile bins' }, showlegend: false,
           height: Math.max(320, 90 + 26 * dr.features.length),
           xaxis: { title: { text: 'PSI (watch ≥ ' + dr.psi_watch + ', refresh ≥ ' + dr.psi_refresh + ')' } },
           yaxis: { automargin: true, autorange: 'reversed' },
           shapes: [band(dr.psi_watch, '#e0a800'), band(dr.psi_refresh, '#c0392b')] });
    if (dr.sankey) {
      var labels = dr.names.map(function (n) { return n + ' (before)'; }).concat(dr.names.map(function (n) { return n + ' (after)'; }));
      var colours = dr.names.map(function (_, c) { return palette[c % palette.length]; });
      draw('chart-drift-sankey', [{ type: 'sankey', arrangement: 'snap',
                                    node: { label: labels, color: colours.concat(colours), pad: 14, thickness: 16 },
                                    link: { source: dr.sankey.source, target: dr.sankey.target, value: dr.sankey.value } }],
           { title: { text: 'Where the ' + dr.sankey.n_common.toLocaleString('en-US') + ' records in both files went' }, height: 480 });
    }
  }
  Promise.all(pending).then(function () {
    document.body.setAttribute('data-charts-drawn', String(pending.length));
    document.body.setAttribute('data-report-ready', '1');
  }, function (e) {
    console.error('segforge report: a chart failed: ' + e);
    document.body.setAttribute('data-report-ready', 'error');
  });
})();
)JS";

std::string chart_div(const std::string& id, const char* kind = "svg") {
  return "<div class=\"chart\" id=\"" + id + "\" data-kind=\"" + kind + "\"></div>\n";
}

std::string data_json(const ReportInput& in) {
  const std::size_t k = in.profiles.size();
  std::string j = "{";
  j += "\"palette\":" + json_array(std::vector<std::string>(std::begin(kPalette), std::end(kPalette)), json_string);
  j += ",\"features\":" + json_array(in.feature_names, json_string);
  j += ",\"segments\":[";
  for (std::size_t c = 0; c < k; ++c) {
    if (c) j += ",";
    j += "{\"name\":" + json_string(in.dictionary[c].name) + ",\"size\":" + std::to_string(in.profiles[c].size) +
         ",\"share\":" + json_number(in.profiles[c].share) + ",\"colour\":" + json_string(colour(in, c)) + "}";
  }
  j += "],\"z_scores\":[";
  for (std::size_t c = 0; c < k; ++c) j += (c ? "," : "") + json_numbers(in.profiles[c].z_scores);
  j += "]";
  if (in.sweep) {
    const SweepResult& s = *in.sweep;
    j += ",\"sweep\":{\"recommended_k\":" + std::to_string(s.recommended_k) + ",\"choices\":{";
    bool first = true;
    for (const auto& c : s.choices) {
      j += std::string(first ? "" : ",") + json_string(criterion_name(c.criterion)) + ":" +
           (c.k ? std::to_string(*c.k) : "null");
      first = false;
    }
    j += "},\"records\":" + json_array(s.records, [](const SweepRecord& r) {
      return "{\"k\":" + std::to_string(r.k) + ",\"inertia\":" + json_number(r.inertia) +
             ",\"silhouette\":" + json_optional(r.silhouette) +
             ",\"silhouette_se\":" + json_optional(r.silhouette_standard_error) +
             ",\"davies_bouldin\":" + json_optional(r.davies_bouldin) +
             ",\"calinski_harabasz\":" + json_optional(r.calinski_harabasz) + ",\"gap\":" + json_optional(r.gap) +
             ",\"gap_s\":" + json_optional(r.gap_s) + "}";
    });
    j += "}";
  }
  const ReportViews& v = in.views;
  if (v.has_silhouette) {
    std::vector<std::vector<double>> by(k);
    for (std::size_t i = 0; i < v.silhouette_values.size(); ++i)
      by[static_cast<std::size_t>(v.silhouette_labels[i])].push_back(v.silhouette_values[i]);
    for (auto& b : by) std::sort(b.begin(), b.end(), std::greater<>());
    j += ",\"silhouette\":{\"score\":" + json_number(v.silhouette_score) + ",\"method\":" +
         json_string(v.silhouette_sampled ? "sample of " + std::to_string(v.silhouette_values.size()) + " rows" : "exact") +
         ",\"n\":" + std::to_string(v.silhouette_values.size()) + ",\"by_segment\":" + json_array(by, json_numbers) + "}";
  }
  {
    std::vector<std::vector<double>> xs(k), ys(k), zs(k);
    for (std::int64_t i = 0; i < v.points.rows(); ++i) {
      const auto c = static_cast<std::size_t>(v.point_labels[i]);
      xs[c].push_back(v.points(i, 0));
      ys[c].push_back(v.points(i, 1));
      zs[c].push_back(v.points(i, 2));
    }
    j += ",\"pca\":{\"n\":" + std::to_string(v.points.rows()) + ",\"explained\":" + json_numbers(v.explained) +
         ",\"segments\":[";
    for (std::size_t c = 0; c < k; ++c)
      j += std::string(c ? "," : "") + "{\"x\":" + json_numbers(xs[c]) + ",\"y\":" + json_numbers(ys[c]) +
           ",\"z\":" + json_numbers(zs[c]) + "}";
    // Centres of the segments; DBSCAN's outliers have none (their mean describes no group).
    std::vector<double> cx, cy, cz;
    std::vector<std::string> cn;
    std::vector<std::int64_t> ci;
    for (std::int64_t c = 0; c < v.centres.rows(); ++c) {
      if (static_cast<std::size_t>(c) < k && in.profiles[static_cast<std::size_t>(c)].segment < 0) continue;
      cn.push_back(static_cast<std::size_t>(c) < k ? in.dictionary[static_cast<std::size_t>(c)].name : std::string());
      ci.push_back(c);
      cx.push_back(v.centres(c, 0));
      cy.push_back(v.centres(c, 1));
      cz.push_back(v.centres(c, 2));
    }
    j += "],\"centres\":{\"x\":" + json_numbers(cx) + ",\"y\":" + json_numbers(cy) + ",\"z\":" + json_numbers(cz) +
         ",\"names\":" + json_array(cn, json_string) + ",\"segments\":" +
         json_array(ci, [](std::int64_t c) { return std::to_string(c); }) + "}}";
  }
  if (in.drift) {
    const DriftResult& d = *in.drift;
    std::vector<double> before, after, psi;
    std::vector<std::string> features;
    for (const SegmentDrift& seg : d.segments) before.push_back(seg.reference_share), after.push_back(seg.current_share);
    // Worst first, so the bars read from the top.
    std::vector<std::size_t> order(d.features.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return d.features[a].psi > d.features[b].psi; });
    for (std::size_t i : order) features.push_back(d.features[i].name), psi.push_back(d.features[i].psi);
    std::vector<std::string> names;
    for (std::size_t c = 0; c < d.segments.size(); ++c) names.push_back(c < k ? in.dictionary[c].name : d.segments[c].name);
    j += ",\"drift\":{\"names\":" + json_array(names, json_string) + ",\"before\":" + json_numbers(before) +
         ",\"after\":" + json_numbers(after) + ",\"features\":" + json_array(features, json_string) +
         ",\"psi\":" + json_numbers(psi) + ",\"psi_watch\":" + json_number(d.thresholds.feature_psi_watch) +
         ",\"psi_refresh\":" + json_number(d.thresholds.feature_psi_refresh);
    if (d.migration.n_common > 0) {
      std::vector<double> source, target, value;
      const auto kk = d.migration.counts.rows();
      for (std::int64_t a = 0; a < kk; ++a)
        for (std::int64_t b = 0; b < kk; ++b)
          if (d.migration.counts(a, b) > 0)
            source.push_back(static_cast<double>(a)), target.push_back(static_cast<double>(kk + b)),
                value.push_back(static_cast<double>(d.migration.counts(a, b)));
      j += ",\"sankey\":{\"n_common\":" + std::to_string(d.migration.n_common) + ",\"source\":" + json_numbers(source) +
           ",\"target\":" + json_numbers(target) + ",\"value\":" + json_numbers(value) + "}";
    }
    j += "}";
  }
  if (in.dbscan && in.dbscan->curve) {
    // At most 2,000 points of the curve (every step-th by rank, the last and the knee kept).
    const EpsSuggestion& e = *in.dbscan->curve;
    const std::size_t m = e.curve.size();
    const std::size_t step = std::max<std::size_t>(1, (m + 1999) / 2000);
    std::vector<double> xs, ys;
    const double scale = m > 1 ? 100.0 / static_cast<double>(m - 1) : 0.0;
    for (std::size_t i = 0; i < m; ++i)
      if (i % step == 0 || i + 1 == m || static_cast<std::int64_t>(i) == e.index)
        xs.push_back(scale * static_cast<double>(i)), ys.push_back(e.curve[i]);
    j += ",\"eps\":{\"k\":" + std::to_string(in.dbscan->curve_min_samples) + ",\"x\":" + json_numbers(xs) +
         ",\"y\":" + json_numbers(ys) + ",\"knee_x\":" + json_number(scale * static_cast<double>(e.index)) +
         ",\"suggested\":" + json_number(e.eps) + ",\"knee_found\":" + (e.knee_found ? "true" : "false") +
         ",\"model_eps\":" + json_number(in.dbscan->eps) + ",\"model_eps_text\":" +
         json_string(analyst_number(in.dbscan->eps)) + "}";
  }
  if (in.dendrogram && !in.dendrogram->links.empty()) {
    const ReportDendrogram& g = *in.dendrogram;
    // One trace per colour: the links of each segment, and the grey ones above the cut.
    std::map<int, std::vector<double>> xs, ys;
    const double gap = std::numeric_limits<double>::quiet_NaN();  // null in JSON: a break in the line
    for (const auto& l : g.links) {
      auto& x = xs[l.segment];
      auto& y = ys[l.segment];
      x.insert(x.end(), {l.x_a, l.x_a, l.x_b, l.x_b, gap});
      y.insert(y.end(), {l.y_a, l.height, l.height, l.y_b, gap});
    }
    j += ",\"dendrogram\":{\"lines\":[";
    bool first = true;
    for (const auto& [seg, x] : xs) {
      j += std::string(first ? "" : ",") + "{\"segment\":" + std::to_string(seg) + ",\"colour\":" +
           json_string(seg >= 0 && static_cast<std::size_t>(seg) < k ? colour(in, static_cast<std::size_t>(seg)) : std::string("#555555")) +
           ",\"x\":" + json_numbers(x) + ",\"y\":" + json_numbers(ys[seg]) + "}";
      first = false;
    }
    std::vector<double> segs(g.leaf_segment.begin(), g.leaf_segment.end());
    j += "],\"leaf_x\":" + json_numbers(g.leaf_x) + ",\"leaf_segment\":" + json_numbers(segs) +
         ",\"leaf_size\":" + json_numbers(g.leaf_size) + ",\"cut\":" + json_number(g.cut_height) +
         ",\"n_leaves\":" + std::to_string(g.n_leaves) + "}";
  }
  if (in.stability) {
    j += ",\"stability\":{\"jaccard_mean\":" + json_numbers(in.stability->jaccard_mean) +
         ",\"jaccard_min\":" + json_numbers(in.stability->jaccard_min) +
         ",\"threshold\":" + json_number(in.stability->jaccard_threshold) + "}";
  }
  return j + "}";
}

std::string profile_table(const ReportInput& in) {
  std::string t = "<div class=\"scroll\"><table><thead><tr><th>#</th><th>segment</th><th>rows</th><th>share</th><th>most distinctive</th>";
  for (const auto& f : in.feature_names) t += "<th>" + html(f) + "</th>";
  t += "</tr></thead><tbody>\n";
  for (std::size_t c = 0; c < in.profiles.size(); ++c) {
    const SegmentProfile& p = in.profiles[c];
    t += "<tr><td>" + std::to_string(p.segment) + "</td><td class=\"nowrap\"><span class=\"swatch\" style=\"background:" + colour(in, c) +
         "\"></span>" + html(in.dictionary[c].name) + "</td><td class=\"num\">" + thousands(p.size) +
         "</td><td class=\"num\">" + fmt("%.1f%%", 100.0 * p.share) + "</td><td>";
    for (std::size_t i = 0; i < p.top_features.size(); ++i) {
      const int j = p.top_features[i];
      t += std::string(i ? "<br>" : "") + "<span class=\"nowrap\">" + html(in.feature_names[j]) + " " +
           (p.z_scores[j] >= 0 ? "<span class=\"pos\">z " : "<span class=\"neg\">z ") + fmt("%+.2f", p.z_scores[j]) +
           "</span></span>";
    }
    t += "</td>";
    for (std::size_t j = 0; j < in.feature_names.size(); ++j)
      t += "<td class=\"num\" title=\"z = " + fmt("%+.2f", p.z_scores[j]) + "\">" + analyst_number(p.centre_original[j]) +
           "</td>";
    t += "</tr>\n";
  }
  return t + "</tbody></table></div>\n";
}

std::string dictionary_table(const ReportInput& in) {
  std::string t = "<div class=\"scroll\"><table><thead><tr><th>#</th><th>name</th><th>description</th><th>suggested outreach</th></tr></thead><tbody>\n";
  for (std::size_t c = 0; c < in.dictionary.size(); ++c)
    t += "<tr><td>" + std::to_string(in.profiles[c].segment) + "</td><td><span class=\"swatch\" style=\"background:" + colour(in, c) +
         "\"></span><b>" + html(in.dictionary[c].name) + "</b></td><td>" + html(in.dictionary[c].description) +
         "</td><td>" + html(in.dictionary[c].outreach) + "</td></tr>\n";
  return t + "</tbody></table></div>\n";
}

std::string sweep_table(const SweepResult& s) {
  std::string t = "<div class=\"scroll\"><table><thead><tr><th>K</th><th>inertia</th><th>silhouette</th><th>Davies–Bouldin</th>"
                  "<th>Calinski–Harabasz</th><th>Gap</th><th>s</th><th>smallest segment</th></tr></thead><tbody>\n";
  auto cell = [](const std::optional<double>& v, const char* f) { return v ? fmt(f, *v) : std::string("–"); };
  for (const auto& r : s.records) {
    const bool chosen = r.k == s.recommended_k;
    t += std::string(chosen ? "<tr style=\"background:#e8f1fb;font-weight:600\">" : "<tr>") + "<td>" +
         std::to_string(r.k) + "</td><td class=\"num\">" + analyst_number(r.inertia) + "</td><td class=\"num\">" +
         cell(r.silhouette, "%.4f") + "</td><td class=\"num\">" + cell(r.davies_bouldin, "%.4f") +
         "</td><td class=\"num\">" + (r.calinski_harabasz ? analyst_number(*r.calinski_harabasz) : std::string("–")) + "</td><td class=\"num\">" +
         cell(r.gap, "%.4f") + "</td><td class=\"num\">" + cell(r.gap_s, "%.4f") + "</td><td class=\"num\">" +
         thousands(r.smallest_segment) + (r.over_segmented ? " (over-segmented)" : "") + "</td></tr>\n";
  }
  t += "</tbody></table></div>\n<p>";
  for (const auto& c : s.choices)
    t += "<b>" + html(criterion_name(c.criterion)) + "</b>: " + (c.k ? "K=" + std::to_string(*c.k) : "–") + " (" +
         html(c.note) + ")<br>";
  return t + "</p>\n";
}

/// "What changed": the drift verdict and its reasons, segment shares before and after, the
/// migration of the records in both files (a Sankey) and the feature PSI bars.
std::string what_changed(const ReportInput& in, bool charts) {
  const DriftResult& d = *in.drift;
  const std::size_t k = in.profiles.size();
  const char* box = d.verdict == DriftLevel::stable ? "recommend" : d.verdict == DriftLevel::watch ? "note" : "warn";
  std::string h = "<section id=\"what-changed\"><h2>What changed</h2>\n<div class=\"" + std::string(box) +
                  "\">Drift verdict: <b>" + html(drift_level_name(d.verdict)) + "</b> (" + thousands(d.n_reference) +
                  " reference rows, " + thousands(d.n_current) + " current)<ul>";
  for (const DriftReason& r : d.reasons) h += "<li>" + html(r.text) + "</li>";
  h += "</ul></div>\n";
  if (charts) {
    h += "<div class=\"grid\">" + chart_div("chart-drift-shares") + chart_div("chart-drift-psi") + "</div>\n";
    if (d.migration.n_common > 0) h += chart_div("chart-drift-sankey");
  }
  h += "<div class=\"scroll\"><table><thead><tr><th>#</th><th>segment</th><th>share before</th><th>share after</th>"
       "<th>mean distance before</th><th>after</th></tr></thead><tbody>";
  for (std::size_t c = 0; c < d.segments.size(); ++c) {
    const SegmentDrift& s = d.segments[c];
    h += "<tr><td>" + std::to_string(c) + "</td><td class=\"nowrap\"><span class=\"swatch\" style=\"background:" +
         colour(c) + "\"></span>" + html(c < k ? in.dictionary[c].name : s.name) + "</td><td class=\"num\">" +
         fmt("%.1f%%", 100.0 * s.reference_share) + "</td><td class=\"num\">" + fmt("%.1f%%", 100.0 * s.current_share) +
         "</td><td class=\"num\">" + fmt("%.4g", s.reference_mean_distance) + "</td><td class=\"num\">" +
         fmt("%.4g", s.current_mean_distance) + "</td></tr>";
  }
  h += "</tbody></table></div>\n<p>Share PSI " + fmt("%.3f", d.share_psi) + ". Inertia of the current data under the model " +
       analyst_number(d.current_inertia) + ", after a refit from its centres " + analyst_number(d.refit_inertia) + " (" +
       fmt("%.1f%%", 100.0 * d.refit_gain) + " better). ";
  if (d.migration.ids_available)
    h += thousands(d.migration.n_common) + " records in both files, " + fmt("%.1f%%", 100.0 * d.migration.moved_share) +
         " changed segment; " + thousands(d.migration.n_joiners) + " joined, " + thousands(d.migration.n_leavers) + " left.";
  else
    h += "No migration: the records of the two files were not matched by id.";
  return h + "</p>\n</section>\n";
}

}  // namespace

ReportDendrogram dendrogram_view(const Matrix<double>& merges, std::span<const std::int32_t> leaf_labels,
                                 std::span<const double> leaf_sizes, int n_segments, int max_drawn) {
  ReportDendrogram v;
  const auto n = static_cast<std::int64_t>(leaf_labels.size());
  v.n_leaves = n;
  if (n < 2 || merges.rows() != n - 1 || static_cast<std::int64_t>(leaf_sizes.size()) != n) return v;
  const std::int64_t k = std::clamp<std::int64_t>(n_segments, 1, n);
  const std::int64_t drawn = std::min<std::int64_t>(n, std::max<std::int64_t>(k, max_drawn));
  const std::int64_t first = (n - 1) - (drawn - 1);  // the first drawn merge
  // Each node's segment (-1 when its leaves lie in several) and size.
  std::vector<int> segment(static_cast<std::size_t>(2 * n - 1));
  std::vector<double> size(static_cast<std::size_t>(2 * n - 1));
  for (std::int64_t i = 0; i < n; ++i) segment[i] = leaf_labels[i], size[i] = leaf_sizes[i];
  for (std::int64_t i = 0; i < n - 1; ++i) {
    const auto a = static_cast<std::size_t>(merges(i, 0)), b = static_cast<std::size_t>(merges(i, 1));
    segment[static_cast<std::size_t>(n + i)] = segment[a] == segment[b] ? segment[a] : -1;
    size[static_cast<std::size_t>(n + i)] = size[a] + size[b];
  }
  // Children before parents, the first child (a) on the left; drawn leaves at height 0.
  auto place = [&](auto&& self, std::int64_t node) -> std::pair<double, double> {
    if (node >= n + first) {
      const std::int64_t i = node - n;
      const auto [xa, ya] = self(self, static_cast<std::int64_t>(merges(i, 0)));
      const auto [xb, yb] = self(self, static_cast<std::int64_t>(merges(i, 1)));
      v.links.push_back({xa, xb, ya, yb, merges(i, 2), segment[static_cast<std::size_t>(node)]});
      return {(xa + xb) / 2.0, merges(i, 2)};
    }
    const auto x = static_cast<double>(v.leaf_x.size());
    v.leaf_x.push_back(x);
    v.leaf_segment.push_back(segment[static_cast<std::size_t>(node)]);
    v.leaf_size.push_back(size[static_cast<std::size_t>(node)]);
    return {x, 0.0};
  };
  place(place, 2 * n - 2);
  // The cut: between the last merge kept (below) and the first undone (above).
  const double top = merges(n - 2, 2);
  if (k == 1) v.cut_height = top > 0 ? 1.05 * top : 1.0;
  else if (k == n) v.cut_height = 0.5 * merges(0, 2);
  else v.cut_height = 0.5 * (merges(n - k - 1, 2) + merges(n - k, 2));
  return v;
}

ReportViews report_views(Backend& backend, const Dataset& data, std::span<const std::int32_t> labels,
                         MatrixView<const float> centroids, const ReportViewParams& params) {
  const std::int64_t n = data.n_samples(), d = data.n_features();
  const int k = static_cast<int>(centroids.rows);
  ReportViews v;
  Rng rng(params.seed);

  // PCA projection of a uniform sample and of the centres (first three axes, zero-padded).
  const PcaBox box = pca_box(backend, data);
  const double total = std::accumulate(box.variance.begin(), box.variance.end(), 0.0);
  for (int j = 0; j < 3; ++j)
    v.explained.push_back(j < d && total > 0 ? std::max(0.0, box.variance[j]) / total : 0.0);
  std::vector<std::int64_t> rows = rng.choose(n, std::min(n, params.scatter_rows));
  std::sort(rows.begin(), rows.end());
  auto pad3 = [](const Matrix<float>& m) {
    Matrix<float> out(m.rows(), 3, 0.0f);
    for (std::int64_t i = 0; i < m.rows(); ++i)
      for (std::int64_t j = 0; j < std::min<std::int64_t>(3, m.cols()); ++j) out(i, j) = m(i, j);
    return out;
  };
  v.points = pad3(pca_project(box, backend.gather(data, rows).view(), 3));
  for (std::int64_t i : rows) v.point_labels.push_back(labels[i]);
  v.centres = pad3(pca_project(box, centroids, 3));

  // The silhouette of a stratified sample (exact when the data are small), over the rows of
  // segments [0, ks) (DBSCAN's outliers left out, as fit's metrics leave them out).
  const int ks = params.silhouette_segments < 0 ? k : std::min(k, params.silhouette_segments);
  std::unique_ptr<Dataset> kept;
  std::vector<std::int32_t> kept_labels;
  if (ks < k) {
    std::vector<std::int64_t> keep;
    for (std::int64_t i = 0; i < n; ++i)
      if (labels[i] < ks) keep.push_back(i), kept_labels.push_back(labels[i]);
    kept = backend.upload(backend.gather(data, keep).view());
  }
  const Dataset& scored = kept ? *kept : data;
  const std::span<const std::int32_t> scored_labels = kept ? std::span<const std::int32_t>(kept_labels) : labels;
  const std::int64_t ns = scored.n_samples();
  std::vector<std::int64_t> sizes(static_cast<std::size_t>(ks), 0);
  for (auto l : scored_labels) ++sizes[l];
  const auto occupied = std::count_if(sizes.begin(), sizes.end(), [](auto s) { return s > 0; });
  if (occupied >= 2 && occupied <= ns - 1) {
    const SilhouetteResult s =
        ns <= params.silhouette_rows
            ? silhouette_exact(backend, scored, scored_labels, ks)
            : silhouette_sampled(backend, scored, scored_labels, ks, params.silhouette_rows, mix64(params.seed + 1), 50);
    v.has_silhouette = true;
    v.silhouette_score = s.score;
    v.silhouette_sampled = s.sampled;
    v.silhouette_values = s.values;
    if (s.sampled)
      for (std::int64_t i : s.rows) v.silhouette_labels.push_back(scored_labels[i]);
    else
      v.silhouette_labels.assign(scored_labels.begin(), scored_labels.end());
  }
  return v;
}

std::string render_report_html(const ReportInput& in) {
  SEGFORGE_ASSERT(in.profiles.size() == in.dictionary.size(), "report: one dictionary entry per profile");
  const bool charts = !in.plotly_js.empty();
  const std::size_t k = in.profiles.size();
  std::string h;
  h.reserve(in.plotly_js.size() + (std::size_t{1} << 20));
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
       html(in.title) + "</title>\n<style>" + kStyle + "</style>\n<script>" + kErrorHook + "</script>\n";
  if (charts) {
    // Inlined as is; a literal "</script" inside would end the element early, so it is escaped.
    std::string js = in.plotly_js;
    for (std::size_t at = js.find("</script"); at != std::string::npos; at = js.find("</script", at + 2))
      js.replace(at, 2, "<\\/");
    h += "<script>\n" + js + "\n</script>\n";
  }
  h += "</head>\n<body>\n<header><h1>" + html(in.title) + "</h1>\n";
  h += "<p>model " + html(in.model_path) + " · features " + html(in.features_path) + " · " + thousands(in.n_samples) +
       " rows × " + std::to_string(in.feature_names.size()) + " features · K = " + std::to_string(cluster_count(in)) +
       (cluster_count(in) < k ? " and the outliers" : "") + "</p>\n";
  auto attr = [&](const char* key) {
    const auto it = in.model_attributes.find(key);
    return it == in.model_attributes.end() ? std::string() : it->second;
  };
  if (in.dbscan)
    h += "<p>DBSCAN, eps " + html(analyst_number(in.dbscan->eps)) + ", min_samples " + html(analyst_number(in.dbscan->min_samples)) +
         " · " + html(attr("backend")) + " (" + html(attr("device")) + ")</p>\n";
  else if (attr("algorithm") == "agglomerative" || attr("algorithm") == "birch")
    h += "<p>" + html(attr("algorithm")) + (attr("linkage").empty() ? std::string() : ", " + html(attr("linkage")) + " linkage") +
         (attr("strategy").empty() ? std::string() : ", " + html(attr("strategy"))) + ", " + thousands(std::atoll(attr("n_leaves").c_str())) +
         " leaves, inertia " + html(number_text(attr("inertia"))) + " · " + html(attr("backend")) + " (" + html(attr("device")) + ")</p>\n";
  else if (!attr("algorithm").empty())
    h += "<p>" + html(attr("algorithm")) + ", init " + html(attr("init")) + ", seed " + html(attr("seed")) +
         ", n_init " + html(attr("n_init")) + ", inertia " + html(number_text(attr("inertia"))) + " · " + html(attr("backend")) +
         " (" + html(attr("device")) + ")</p>\n";
  h += "</header>\n<main>\n";
  for (const auto& note : in.notes) h += "<div class=\"note\">" + html(note) + "</div>\n";

  // Summary: how many segments, and why.
  h += "<section id=\"summary\"><h2>Summary</h2>\n";
  if (in.sweep && in.sweep->recommended_k > 0) {
    h += "<div class=\"recommend\">Recommended number of segments: <b>K = " + std::to_string(in.sweep->recommended_k) +
         "</b><br>" + html(in.sweep->reason) + "</div>\n";
    if (in.sweep->recommended_k != static_cast<int>(k))
      h += "<div class=\"warn\">This model has K = " + std::to_string(k) + ", not the recommended " +
           std::to_string(in.sweep->recommended_k) + ".</div>\n";
    for (const auto& w : in.sweep->warnings) h += "<div class=\"warn\">" + html(w) + "</div>\n";
  } else if (in.sweep) {
    h += "<div class=\"warn\">The sweep gave no recommendation: " + html(in.sweep->reason) + "</div>\n";
  } else if (in.dbscan) {
    const double share = in.n_samples > 0 ? static_cast<double>(in.dbscan->n_noise) / static_cast<double>(in.n_samples) : 0.0;
    h += "<p>DBSCAN found the number of segments itself: " + std::to_string(cluster_count(in)) + " dense groups at eps " +
         html(analyst_number(in.dbscan->eps)) + " and min_samples " + html(analyst_number(in.dbscan->min_samples)) + "; " +
         thousands(in.dbscan->n_noise) + " rows (" + fmt("%.1f%%", 100.0 * share) +
         ") have no core row within eps and are the outliers (segment -1).</p>\n";
  } else {
    h += "<p>No sweep given (segforge sweep … -o sweep.json, then --sweep sweep.json) — the choice of K is not shown.</p>\n";
  }
  h += "<p>" + std::to_string(cluster_count(in)) + " segments" + (cluster_count(in) < k ? " and the outliers" : "") + ": ";
  for (std::size_t c = 0; c < k; ++c)
    h += std::string(c ? ", " : "") + "<span class=\"swatch\" style=\"background:" + colour(in, c) + "\"></span><b>" +
         html(in.dictionary[c].name) + "</b> (" + fmt("%.1f%%", 100.0 * in.profiles[c].share) + ")";
  h += ".</p>\n";
  if (in.stability)
    h += std::string("<div class=\"") + (in.stability->stable ? "recommend" : "warn") + "\">Stability: " +
         html(in.stability->verdict) + "</div>\n";
  h += "</section>\n";

  if (in.drift) h += what_changed(in, charts);

  if (in.dbscan && in.dbscan->curve) {
    const EpsSuggestion& e = *in.dbscan->curve;
    h += "<section id=\"choosing-eps\"><h2>Choosing eps</h2>\n<p>The k-distance curve of " + thousands(static_cast<std::int64_t>(e.curve.size())) +
         " sampled rows (k = " + std::to_string(in.dbscan->curve_min_samples) +
         "): each row's distance to its k-th nearest row, the row itself counted first, sorted. A row is core when eps "
         "reaches its k-distance. " + (e.knee_found ? std::string("The knee") : std::string("The curve has no knee; its 90th percentile")) +
         " is at " + html(analyst_number(e.eps)) + " (what --eps auto takes); this model uses eps " +
         html(analyst_number(in.dbscan->eps)) + ".</p>\n";
    if (in.dbscan->curve_min_samples != static_cast<int>(in.dbscan->min_samples))
      h += "<div class=\"warn\">The curve is for k = " + std::to_string(in.dbscan->curve_min_samples) +
           ", the model's min_samples is " + html(analyst_number(in.dbscan->min_samples)) + ".</div>\n";
    if (charts) h += chart_div("chart-eps");
    h += "</section>\n";
  }

  if (in.dendrogram && !in.dendrogram->links.empty()) {
    const ReportDendrogram& g = *in.dendrogram;
    h += "<section id=\"tree\"><h2>The tree</h2>\n<p>Agglomerative merges from " + thousands(g.n_leaves) +
         " leaves (" + html(attr("strategy") == "two-stage" ? "K-Means micro-clusters" : attr("algorithm") == "birch" ? "BIRCH subclusters" : "the rows") +
         ", " + html(attr("linkage").empty() ? "ward" : attr("linkage")) +
         " linkage) up to one group; the height of a merge is how far apart the two groups were. The dotted line is the cut "
         "that gives the segments; below it each branch is coloured by its segment, above it grey. Only the last merges are "
         "drawn: each dot at the bottom is a group of rows (hover for its size).</p>\n";
    if (charts) h += chart_div("chart-dendrogram");
    h += "</section>\n";
  }

  if (in.sweep) {
    h += "<section id=\"choosing-k\"><h2>Choosing K</h2>\n";
    if (charts)
      h += "<div class=\"grid\">" + chart_div("chart-elbow") + chart_div("chart-silhouette-k") + chart_div("chart-gap") +
           chart_div("chart-indices") + "</div>\n";
    h += sweep_table(*in.sweep) + "</section>\n";
  }

  h += "<section id=\"profiles\"><h2>Segment profiles</h2>\n<p>Centres in original units (through the stored "
       "scaler's inverse; for log-transformed features this is the typical member, not the arithmetic mean). "
       "Hover a value for its z-score against all rows.</p>\n" +
       profile_table(in) + "</section>\n";
  h += "<section id=\"dictionary\"><h2>Segment dictionary</h2>\n" + dictionary_table(in) + "</section>\n";

  if (charts) {
    h += "<section id=\"shape\"><h2>How the segments sit in the data</h2>\n<div class=\"grid\">";
    if (in.views.has_silhouette) h += chart_div("chart-silhouette");
    h += chart_div("chart-heatmap") + "</div>\n<div class=\"grid\">" + chart_div("chart-pca-2d") +
         chart_div("chart-pca-3d", "webgl") + "</div>\n</section>\n";
  }
  if (in.stability) {
    const StabilityResult& s = *in.stability;
    h += "<section id=\"stability\"><h2>Stability</h2>\n<p>" + std::to_string(s.runs) + " re-fits on " +
         fmt("%.0f%%", 100.0 * s.sample_fraction) + " subsamples with other seeds: adjusted Rand index between runs mean " +
         fmt("%.3f", s.ari_mean) + ", min " + fmt("%.3f", s.ari_min) + ". " + html(s.verdict) + "</p>\n";
    if (charts) h += chart_div("chart-stability");
    h += "<div class=\"scroll\"><table><thead><tr><th>#</th><th>segment</th><th>mean Jaccard</th><th>lowest</th><th>verdict</th></tr></thead><tbody>";
    for (std::size_t c = 0; c < s.jaccard_mean.size(); ++c)
      h += "<tr><td>" + std::to_string(c) + "</td><td>" + html(c < k ? in.dictionary[c].name : "") +
           "</td><td class=\"num\">" + fmt("%.3f", s.jaccard_mean[c]) + "</td><td class=\"num\">" +
           fmt("%.3f", s.jaccard_min[c]) + "</td><td>" + html(s.segment_verdicts[c]) + "</td></tr>";
    h += "</tbody></table></div>\n</section>\n";
  }
  h += "</main>\n<footer>Made by " + html(in.generated_by) +
       ". This file is self-contained: it opens without a network connection.</footer>\n";
  h += "<script type=\"application/json\" id=\"segforge-data\">" + data_json(in) + "</script>\n";
  if (charts)
    h += std::string("<script>") + kDraw + "</script>\n";
  else
    h += "<script>document.body.setAttribute('data-charts-drawn', '0'); document.body.setAttribute('data-report-ready', '1');</script>\n";
  h += "</body>\n</html>\n";
  return h;
}

}  // namespace segforge
