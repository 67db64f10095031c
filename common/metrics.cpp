#include "common/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

namespace ckptd {

namespace {

void AtomicAdd(std::atomic<double>& a, double v) {
  double cur = a.load();
  while (!a.compare_exchange_weak(cur, cur + v)) {
  }
}

std::string EscapeLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string EscapeHelp(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

// {a="1",b="2"} with `extra` (e.g. le) appended; "" when there are none.
std::string LabelText(const Labels& labels, const std::string& extra = "") {
  std::string out;
  for (const auto& [k, v] : labels) {
    out += out.empty() ? "{" : ",";
    out += k + "=\"" + EscapeLabel(v) + "\"";
  }
  if (!extra.empty()) out += (out.empty() ? "{" : ",") + extra;
  if (!out.empty()) out += "}";
  return out;
}

std::string Number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{}", v);
}

std::string Key(const Labels& labels) { return LabelText(labels); }

}  // namespace

void Counter::Inc(double v) {
  if (v < 0) std::abort();  // counters only go up
  AtomicAdd(value_, v);
}

void Counter::RaiseTo(double v) {
  double cur = value_.load();
  while (cur < v && !value_.compare_exchange_weak(cur, v)) {
  }
}

void Gauge::Add(double v) { AtomicAdd(value_, v); }

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1) {
  std::sort(bounds_.begin(), bounds_.end());
}

void Histogram::Observe(double v) {
  MutexLock lock(mu_);
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  counts_[i]++;
  sum_ += v;
  count_++;
}

Histogram::Snapshot Histogram::Snap() const {
  MutexLock lock(mu_);
  Snapshot s;
  s.bounds = bounds_;
  uint64_t running = 0;
  for (uint64_t c : counts_) {
    running += c;
    s.cumulative.push_back(running);
  }
  s.sum = sum_;
  s.count = count_;
  return s;
}

std::vector<double> DurationBuckets() {
  return {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
}

MetricsRegistry::Family& MetricsRegistry::FamilyFor(const std::string& name, const std::string& help, Type type) {
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.type = type;
    it->second.help = help;
  } else if (it->second.type != type) {
    std::abort();
  }
  return it->second;
}

namespace {

// The series of `labels` in one family's slots, created on first use.
template <typename T, typename... Args>
T* SeriesFor(std::map<std::string, std::unique_ptr<T>>& slots, std::map<std::string, Labels>& all_labels,
             const Labels& labels, Args&&... args) {
  auto key = Key(labels);
  auto& slot = slots[key];
  if (!slot) {
    slot = std::make_unique<T>(std::forward<Args>(args)...);
    all_labels[key] = labels;
  }
  return slot.get();
}

}  // namespace

Counter* MetricsRegistry::GetCounter(const std::string& name, const std::string& help, const Labels& labels) {
  MutexLock lock(mu_);
  auto& f = FamilyFor(name, help, Type::kCounter);
  return SeriesFor(f.counters, f.labels, labels);
}

Gauge* MetricsRegistry::GetGauge(const std::string& name, const std::string& help, const Labels& labels) {
  MutexLock lock(mu_);
  auto& f = FamilyFor(name, help, Type::kGauge);
  return SeriesFor(f.gauges, f.labels, labels);
}

Histogram* MetricsRegistry::GetHistogram(const std::string& name, const std::string& help, const Labels& labels,
                                         std::vector<double> bounds) {
  MutexLock lock(mu_);
  auto& f = FamilyFor(name, help, Type::kHistogram);
  return SeriesFor(f.histograms, f.labels, labels, std::move(bounds));
}

void MetricsRegistry::AddCollector(std::function<void()> collector) {
  MutexLock lock(mu_);
  collectors_.push_back(std::move(collector));
}

std::string MetricsRegistry::Render() const {
  std::vector<std::function<void()>> collectors;
  {
    MutexLock lock(mu_);
    collectors = collectors_;
  }
  for (const auto& c : collectors) c();

  MutexLock lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    const char* type = f.type == Type::kCounter ? "counter" : f.type == Type::kGauge ? "gauge" : "histogram";
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, EscapeHelp(f.help), name, type);
    for (const auto& [key, labels] : f.labels) {
      if (f.type == Type::kCounter) {
        out += fmt::format("{}{} {}\n", name, key, Number(f.counters.at(key)->Value()));
      } else if (f.type == Type::kGauge) {
        out += fmt::format("{}{} {}\n", name, key, Number(f.gauges.at(key)->Value()));
      } else {
        auto s = f.histograms.at(key)->Snap();
        for (size_t i = 0; i < s.bounds.size(); ++i) {
          out += fmt::format("{}_bucket{} {}\n", name, LabelText(labels, "le=\"" + Number(s.bounds[i]) + "\""),
                             s.cumulative[i]);
        }
        out += fmt::format("{}_bucket{} {}\n", name, LabelText(labels, "le=\"+Inf\""), s.cumulative.back());
        out += fmt::format("{}_sum{} {}\n", name, key, Number(s.sum));
        out += fmt::format("{}_count{} {}\n", name, key, s.count);
      }
    }
  }
  return out;
}

}  // namespace ckptd
