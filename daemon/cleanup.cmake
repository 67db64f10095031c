# Cleanup of deprecated checkpoints and the per-checkpoint reader holds.
target_sources(ckptd_daemon PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/checkpoint_readers.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cleanup.cpp)
