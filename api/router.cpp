#include "api/router.h"

#include <algorithm>

namespace ckptd::api {

namespace {

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

bool IsCapture(const std::string& seg) { return seg.size() > 2 && seg.front() == '{' && seg.back() == '}'; }

bool MatchSegments(const Route& r, const std::vector<std::string>& parts, std::map<std::string, std::string>* params) {
  if (r.segments.size() != parts.size()) return false;
  std::map<std::string, std::string> found;
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto& seg = r.segments[i];
    if (IsCapture(seg)) {
      if (parts[i].empty()) return false;
      found[seg.substr(1, seg.size() - 2)] = parts[i];
    } else if (seg != parts[i]) {
      return false;
    }
  }
  *params = std::move(found);
  return true;
}

}  // namespace

void Router::Add(std::string method, std::string pattern, Handler handler, RouteOptions options) {
  Route r;
  r.method = std::move(method);
  r.segments = Split(pattern);
  r.pattern = std::move(pattern);
  r.handler = std::move(handler);
  r.options = options;
  r.live_body_limit = std::make_shared<std::atomic<size_t>>(options.body_limit);
  routes_.push_back(std::move(r));
}

Router::Match Router::Find(const std::string& method, const std::string& path) const {
  Match m;
  auto parts = Split(path);
  std::vector<std::string> allowed;
  // Literal segments win over captures: try routes with fewer captures first.
  const Route* best = nullptr;
  size_t best_captures = SIZE_MAX;
  for (const auto& r : routes_) {
    std::map<std::string, std::string> params;
    if (!MatchSegments(r, parts, &params)) continue;
    if (r.method != method) {
      if (std::find(allowed.begin(), allowed.end(), r.method) == allowed.end()) allowed.push_back(r.method);
      continue;
    }
    size_t captures = params.size();
    if (captures < best_captures) {
      best = &r;
      best_captures = captures;
      m.params = std::move(params);
    }
  }
  if (best) {
    m.route = best;
    return m;
  }
  if (allowed.empty()) {
    m.status = 404;
    return m;
  }
  m.status = 405;
  for (const auto& a : allowed) m.allow += (m.allow.empty() ? "" : ", ") + a;
  return m;
}

size_t Router::MaxBodyLimit() const {
  size_t max = 0;
  for (const auto& r : routes_) max = std::max(max, r.body_limit());
  return max;
}

void Router::SetBodyLimit(size_t first, size_t last, size_t limit) {
  last = std::min(last, routes_.size());
  for (size_t i = first; i < last; ++i) routes_[i].live_body_limit->store(limit, std::memory_order_relaxed);
}

}  // namespace ckptd::api
