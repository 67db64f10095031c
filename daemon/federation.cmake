# Federation: mirrors checkpoint lifecycles to an upstream /v2/checkpoints
# service through a durable outbox (daemon/upstream_mirror.h).
target_sources(ckptd_daemon PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/upstream_mirror.cpp)
