// The records of the agent-state store (store/agent_store.h) as its
// callers see them. Thread safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ckptd {

struct AgentBlob {
  std::string channel;
  std::string version;
  std::string type;
  std::optional<std::string> data;  // raw bytes; nullopt = null blob ("empty")
};

struct AgentWrite {
  std::string task_id;
  int64_t idx = 0;
  std::string channel;
  std::optional<std::string> type;
  std::string data;  // raw bytes
  std::string task_path;
};

struct AgentCheckpoint {
  std::string thread_id;
  std::string checkpoint_ns;
  std::string checkpoint_id;
  std::optional<std::string> parent_checkpoint_id;
  std::string checkpoint_json;  // a serialized JSON object
  std::string metadata_json;    // a serialized JSON object
};

struct AgentTuple {
  AgentCheckpoint checkpoint;
  std::vector<AgentBlob> blobs;            // in channel_versions order
  std::vector<AgentWrite> pending_writes;  // by (task_id, idx)
};

}  // namespace ckptd
