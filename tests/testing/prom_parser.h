// A strict reader of the Prometheus text exposition format, for tests: it
// refuses what a Prometheus server would refuse (bad names, labels, values,
// samples without a TYPE line, duplicate series).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace ckptd::testing {

struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct PromParse {
  std::vector<PromSample> samples;
  std::map<std::string, std::string> types;  // family -> type
  std::string error;                         // empty when valid

  // The value of the one sample matching name and (a subset of) labels;
  // -1 when none.
  double Value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const;
};

// A metric or label name as Prometheus allows it.
bool ValidMetricName(const std::string& n);

// Parses `text`; a non-empty error names the first offending line.
PromParse ParsePrometheusText(const std::string& text);

}  // namespace ckptd::testing
