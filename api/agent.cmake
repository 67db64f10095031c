# Agent-state (Agentex/LangGraph) checkpoint API handlers.
target_sources(ckptd_api PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/agent_handlers.cpp
  ${CMAKE_CURRENT_LIST_DIR}/agent_state.cpp
  ${CMAKE_CURRENT_LIST_DIR}/agent_validation.cpp
)
