# Cleanup endpoint: the API side of daemon/cleanup (POST /v2/cleanup).
target_sources(ckptd_api PRIVATE ${CMAKE_CURRENT_LIST_DIR}/cleanup_handlers.cpp)
