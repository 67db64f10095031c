// A small metrics registry rendered in the Prometheus text exposition
// format (version 0.0.4). Debian 12 packages no C++ Prometheus client, so
// this holds just what ckptd needs: counters, gauges and histograms with
// labels, plus collectors that refresh values at scrape time.
//
// Contract: Get*() returns a stable pointer for (name, labels), creating the
// series on first use; a name keeps the type and help it was first
// registered with (a different type is a programming error: abort). Values
// are updated lock-free (atomics) or under a per-series lock (histograms).
// Thread safety: everything may be called from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/mutex.h"

namespace ckptd {

using Labels = std::map<std::string, std::string>;

class Counter {
 public:
  void Inc(double v = 1);
  // For a count kept elsewhere (read by a collector): the value becomes
  // `v` when that is higher, so concurrent scrapes never move it back.
  void RaiseTo(double v);
  double Value() const { return value_.load(); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v); }
  void Add(double v);
  double Value() const { return value_.load(); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // per bound, then +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Snap() const;

 private:
  mutable Mutex mu_;
  std::vector<double> bounds_;                    // fixed at construction, read without mu_
  std::vector<uint64_t> counts_ GUARDED_BY(mu_);  // per bucket (not cumulative), last is +Inf
  double sum_ GUARDED_BY(mu_) = 0;
  uint64_t count_ GUARDED_BY(mu_) = 0;
};

// Bucket bounds for durations in seconds: 1 ms .. ~10 min.
std::vector<double> DurationBuckets();

class MetricsRegistry {
 public:
  Counter* GetCounter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge* GetGauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram* GetHistogram(const std::string& name, const std::string& help, const Labels& labels = {},
                          std::vector<double> bounds = DurationBuckets());
  // Runs before every Render(), e.g. to set a gauge from RocksDB's size.
  void AddCollector(std::function<void()> collector);
  std::string Render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type;
    std::string help;
    std::map<std::string, Labels> labels;  // key -> labels
    std::map<std::string, std::unique_ptr<Counter>> counters;
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
  };
  Family& FamilyFor(const std::string& name, const std::string& help, Type type) REQUIRES(mu_);

  mutable Mutex mu_;
  std::map<std::string, Family> families_ GUARDED_BY(mu_);
  std::vector<std::function<void()>> collectors_ GUARDED_BY(mu_);
};

}  // namespace ckptd
