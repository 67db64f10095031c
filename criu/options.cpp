#include "criu/options.h"

#include <array>

#include <fmt/format.h>

namespace ckptd::criu {

namespace {

template <typename E, size_t N>
Result<E> ByName(const std::array<std::pair<E, std::string_view>, N>& names, std::string_view name,
                 std::string_view what) {
  std::string choices;
  for (const auto& [value, n] : names) {
    if (n == name) return value;
    choices += fmt::format("{}\"{}\"", choices.empty() ? "" : ", ", n);
  }
  return InvalidArgument(fmt::format("'{}' must be one of {}, not \"{}\"", what, choices, name));
}

constexpr std::array<std::pair<CgroupMode, std::string_view>, 4> kCgroupModes{{
    {CgroupMode::kIgnore, "ignore"},
    {CgroupMode::kSoft, "soft"},
    {CgroupMode::kFull, "full"},
    {CgroupMode::kStrict, "strict"},
}};

constexpr std::array<std::pair<NetworkLock, std::string_view>, 3> kNetworkLocks{{
    {NetworkLock::kNftables, "nftables"},
    {NetworkLock::kIptables, "iptables"},
    {NetworkLock::kSkip, "skip"},
}};

}  // namespace

Result<CgroupMode> ParseCgroupMode(std::string_view name) {
  return ByName(kCgroupModes, name, "manage_cgroups_mode");
}

Result<NetworkLock> ParseNetworkLock(std::string_view name) { return ByName(kNetworkLocks, name, "network_lock"); }

}  // namespace ckptd::criu
