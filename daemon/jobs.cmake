# Checkpoint/restore jobs: executor, pipelines, manifest, orphan reaper.
target_sources(ckptd_daemon PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/checkpoint_job.cpp
  ${CMAKE_CURRENT_LIST_DIR}/gpu_hooks.cpp
  ${CMAKE_CURRENT_LIST_DIR}/image_streamer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/job_manager.cpp
  ${CMAKE_CURRENT_LIST_DIR}/job_system.cpp
  ${CMAKE_CURRENT_LIST_DIR}/manifest.cpp
  ${CMAKE_CURRENT_LIST_DIR}/page_uploader.cpp
  ${CMAKE_CURRENT_LIST_DIR}/reaper.cpp
  ${CMAKE_CURRENT_LIST_DIR}/restore_job.cpp)
