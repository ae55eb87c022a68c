// Metric families in the Prometheus text exposition format, for the
// render_metrics() of components that count things: each family is its
// "# HELP" and "# TYPE" lines, then one "name{labels} value" line per sample.
// Header-only; no state, no allocation beyond the returned string.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace stir {

struct MetricSample {
  std::string_view labels;  // "" or {name="value",...}, already escaped
  std::string value;
};

inline std::string metric_family(std::string_view name, std::string_view type,
                                 std::string_view help,
                                 std::initializer_list<MetricSample> samples) {
  std::string out;
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  for (const MetricSample& sample : samples) {
    out.append(name).append(sample.labels).append(" ").append(sample.value).append("\n");
  }
  return out;
}

}  // namespace stir
