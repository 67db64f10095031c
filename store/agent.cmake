# Agent-state (Agentex/LangGraph) checkpoint storage.
target_sources(ckptd_store PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/agent_keys.cpp
  ${CMAKE_CURRENT_LIST_DIR}/agent_store.cpp
)
