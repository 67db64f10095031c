// The agent-state checkpoint API, compatible with Agentex's checkpointer
// endpoints (specs/agentex-checkpoints-*.md) and LangGraph's thread state at
// a checkpoint (specs/langgraph-thread-state-at-checkpoint.md):
//   POST /checkpoints/put            -> {thread_id, checkpoint_ns, checkpoint_id}
//   POST /checkpoints/put-writes     -> 204
//   POST /checkpoints/list           -> [CheckpointListItem], newest first
//   POST /checkpoints/get-tuple      -> tuple with blobs and pending_writes, or null
//   POST /checkpoints/delete-thread  -> 204
// and our extensions (agent_threads.cpp):
//   POST /checkpoints/prune          -> {"removed": {checkpoints, writes, blobs}}
//   POST /checkpoints/copy-thread    -> {"copied": n}
//   POST /checkpoints/retention      -> the thread's retention in force
//   POST /checkpoints/sweep          -> {"threads": n, "removed": {...}}
//   POST /checkpoints/batch          -> {"results": [{status, body}]}: put, put-writes,
//                                       get-tuple and list calls in one round trip
//   POST /threads/{thread_id}/state/checkpoint -> ThreadState, 404 when absent
// Validation errors are FastAPI's 422 shape; other errors {"detail": "..."}.
// Blobs travel base64-encoded and are stored decoded.
#pragma once

#include <cstddef>

#include "api/router.h"
#include "store/agent_store.h"

namespace ckptd::api {

// Registers the routes (bearer auth, bodies up to body_limit bytes);
// `store` must outlive the router.
void RegisterAgentRoutes(Router* router, AgentStore* store, size_t body_limit);

namespace agent {
// POST /threads/{thread_id}/state/checkpoint (agent_state.cpp).
Response ThreadStateAtCheckpoint(AgentStore* store, const Request& req);
// Thread-wide operations (agent_threads.cpp).
Response DeleteThread(AgentStore* store, const Request& req);
Response Prune(AgentStore* store, const Request& req);
Response CopyThread(AgentStore* store, const Request& req);
Response ThreadRetention(AgentStore* store, const Request& req);
Response Sweep(AgentStore* store, const Request& req);
}  // namespace agent

}  // namespace ckptd::api
