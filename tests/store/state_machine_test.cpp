#include <gtest/gtest.h>

#include "store/checkpoint_record.h"

namespace ckptd {
namespace {

using S = CheckpointStatus;

// The allowed transitions, written out independently of the implementation.
bool Expected(S from, S to) {
  static const std::pair<S, S> allowed[] = {
      {S::kInitializing, S::kUpdatedInfo},      {S::kInitializing, S::kDeprecated},
      {S::kUpdatedInfo, S::kPossiblyUploaded},  {S::kUpdatedInfo, S::kDeprecated},
      {S::kPossiblyUploaded, S::kReady},        {S::kPossiblyUploaded, S::kDeprecated},
      {S::kReady, S::kDeprecated},
  };
  for (auto [f, t] : allowed)
    if (f == from && t == to) return true;
  return false;
}

TEST(StateMachine, EveryPairMatchesTheTable) {
  int allowed = 0;
  for (auto from : kAllStatuses) {
    for (auto to : kAllStatuses) {
      EXPECT_EQ(TransitionAllowed(from, to), Expected(from, to))
          << StatusName(from) << " -> " << StatusName(to);
      allowed += TransitionAllowed(from, to);
    }
  }
  EXPECT_EQ(allowed, 7);
}

TEST(StateMachine, DeprecatedIsTerminal) {
  for (auto to : kAllStatuses) EXPECT_FALSE(TransitionAllowed(S::kDeprecated, to));
}

TEST(StateMachine, TransitionToRecordsHistoryOrRefuses) {
  for (auto from : kAllStatuses) {
    for (auto to : kAllStatuses) {
      CheckpointRecord r;
      r.id = "x";
      r.status = from;
      Status st = r.TransitionTo(to, 42);
      if (Expected(from, to)) {
        ASSERT_TRUE(st.ok()) << st.ToString();
        EXPECT_EQ(r.status, to);
        ASSERT_EQ(r.history.size(), 1u);
        EXPECT_EQ(r.history[0].from, from);
        EXPECT_EQ(r.history[0].to, to);
        EXPECT_EQ(r.history[0].at_ms, 42);
        EXPECT_EQ(r.updated_at_ms, 42);
      } else {
        EXPECT_EQ(st.code(), Code::kConflict);
        EXPECT_EQ(r.status, from);
        EXPECT_TRUE(r.history.empty());
      }
    }
  }
}

TEST(StateMachine, NamesRoundTrip) {
  for (auto s : kAllStatuses) EXPECT_EQ(ParseCheckpointStatus(StatusName(s)), s);
  EXPECT_FALSE(ParseCheckpointStatus("Ready").has_value());
}

TEST(Uuid, NewUuidIsVersion4AndUnique) {
  auto a = NewUuid(), b = NewUuid();
  EXPECT_TRUE(IsUuid(a));
  EXPECT_NE(a, b);
  EXPECT_EQ(a[14], '4');
  EXPECT_NE(std::string("89ab").find(a[19]), std::string::npos);
  EXPECT_FALSE(IsUuid("not-a-uuid"));
  EXPECT_FALSE(IsUuid("3f2a0000-0000-4000-8000-00000000000g"));
}

}  // namespace
}  // namespace ckptd
