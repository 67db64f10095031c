# Job endpoints: the API side of the checkpoint/restore jobs (daemon/job_manager).
target_sources(ckptd_api PRIVATE ${CMAKE_CURRENT_LIST_DIR}/job_handlers.cpp)
