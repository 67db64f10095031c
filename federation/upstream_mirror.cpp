#include "federation/upstream_mirror.h"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include "api/auth.h"
#include "api/client.h"
#include "common/json_reader.h"

namespace ckptd {

namespace json = boost::json;

namespace {

constexpr std::string_view kRowPrefix = "q/";
constexpr std::string_view kLinkPrefix = "l/";
constexpr std::string_view kInFlightPrefix = "f/";
constexpr std::chrono::milliseconds kFirstBackoff{250};

std::string RowKey(uint64_t seq) {
  std::string key(kRowPrefix);
  for (int shift = 56; shift >= 0; shift -= 8) key += static_cast<char>((seq >> shift) & 0xff);
  return key;
}

uint64_t RowSeq(std::string_view key) {
  uint64_t v = 0;
  for (size_t i = kRowPrefix.size(); i < key.size(); ++i) v = (v << 8) | static_cast<unsigned char>(key[i]);
  return v;
}

json::value OptString(const std::optional<std::string>& s) { return s ? json::value(*s) : json::value(nullptr); }

std::string Trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

// Statuses that say "not now" rather than "never": the row stays at the head
// and is tried again. 401/403 too: a token fixed by the operator must not
// find the rows already dropped.
bool Retryable(int status) { return status == 401 || status == 403 || status == 408 || status == 429 || status >= 500; }

std::string Excerpt(const std::string& body) { return body.size() > 200 ? body.substr(0, 200) + "..." : body; }

}  // namespace

std::vector<UpstreamMirror::Event> UpstreamMirror::EventsFor(const CheckpointRecord* before,
                                                             const CheckpointRecord* after) {
  using S = CheckpointStatus;
  std::vector<Event> out;
  if (!after) return out;  // removal: the /v2 API has no call for it
  if (!before) {
    out.push_back({"create", json::object{{"name", OptString(after->name)}}});
    return out;
  }
  S b = before->status, a = after->status;
  bool fields = before->gpu != after->gpu || before->platform != after->platform || before->info != after->info;
  json::value info_payload = json::object{{"gpu", after->gpu}, {"platform", after->platform}, {"info", after->info}};
  if (a == S::kUpdatedInfo && (b != a || fields)) out.push_back({"info", info_payload});
  // A deprecate straight from updated_info that also changed info (a failed
  // job's error): the upstream still accepts info then, so send it first.
  if (b == S::kUpdatedInfo && a == S::kDeprecated && fields) out.push_back({"info", info_payload});
  if (a == S::kReady && b != S::kReady) {
    json::object p{{"restore_path", OptString(after->restore_path)}};
    if (after->checksum) p["checksum"] = *after->checksum;
    out.push_back({"uploaded", std::move(p)});
  }
  if (a == S::kDeprecated && b != S::kDeprecated) out.push_back({"deprecate", json::object{}});
  return out;
}

UpstreamMirror::UpstreamMirror(const UpstreamOptions& config, Db* db, Catalog* catalog)
    : config_(config), db_(db), catalog_(catalog) {}

Result<std::unique_ptr<UpstreamMirror>> UpstreamMirror::Create(const UpstreamOptions& config, Db* db,
                                                               Catalog* catalog) {
  if (config.url.empty()) {
    // Rows of an earlier, enabled run stay; say so rather than drop them.
    std::unique_ptr<rocksdb::Iterator> it(db->raw()->NewIterator(rocksdb::ReadOptions(), db->Handle(cf::kOutbox)));
    it->Seek(rocksdb::Slice(kRowPrefix.data(), kRowPrefix.size()));
    if (it->Valid() && it->key().starts_with(rocksdb::Slice(kRowPrefix.data(), kRowPrefix.size())))
      spdlog::warn("upstream_url is not set: undelivered upstream events stay in the outbox until it is");
    return std::unique_ptr<UpstreamMirror>();
  }
  auto url = boost::urls::parse_uri(config.url);
  if (!url || url->host().empty()) return InvalidArgument(fmt::format("upstream_url '{}' is not a URL", config.url));
  if (url->scheme() != "http")
    return InvalidArgument(fmt::format(
        "upstream_url '{}': only http:// is supported (put a TLS-terminating proxy in front for https)", config.url));
  std::unique_ptr<UpstreamMirror> m(new UpstreamMirror(config, db, catalog));
  m->base_url_ = "http://" + std::string(url->encoded_host_and_port());
  m->prefix_ = std::string(url->encoded_path());
  while (!m->prefix_.empty() && m->prefix_.back() == '/') m->prefix_.pop_back();
  if (!config.token.empty() || !config.token_file.empty()) {
    auto tok = api::LoadOrCreateToken(config.token, config.token_file, false);
    if (!tok.ok()) return tok.status().WithContext("upstream token");
    m->token_ = tok->token;
  }
  CKPTD_ASSIGN_OR_RETURN(m->client_,
                         api::HttpClient::Create(m->base_url_, m->token_, std::chrono::seconds(config.timeout_s)));

  // Continue the sequence and the pending count of an earlier run.
  std::unique_ptr<rocksdb::Iterator> it(db->raw()->NewIterator(rocksdb::ReadOptions(), db->Handle(cf::kOutbox)));
  std::string last_key = std::string(kRowPrefix) + std::string(8, '\xff');
  it->SeekForPrev(last_key);
  if (it->Valid() && it->key().starts_with(rocksdb::Slice(kRowPrefix.data(), kRowPrefix.size())))
    m->next_seq_ = RowSeq(it->key().ToStringView()) + 1;
  int64_t pending = 0;
  for (it->Seek(rocksdb::Slice(kRowPrefix.data(), kRowPrefix.size()));
       it->Valid() && it->key().starts_with(rocksdb::Slice(kRowPrefix.data(), kRowPrefix.size())); it->Next())
    ++pending;
  CKPTD_RETURN_IF_ERROR(FromRocks(it->status(), "scan outbox"));
  m->pending_ = pending;
  catalog->AddObserver(m.get());
  spdlog::info("mirroring checkpoints to {}{} ({} events pending)", m->base_url_, m->prefix_, pending);
  return m;
}

UpstreamMirror::~UpstreamMirror() { Stop(); }

void UpstreamMirror::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void UpstreamMirror::Stop() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status UpstreamMirror::OnWrite(const CheckpointRecord* before, const CheckpointRecord* after,
                               rocksdb::WriteBatch* batch) {
  auto* h = db_->Handle(cf::kOutbox);
  // The link, atomically with the record that carries it.
  if (after && after->upstream_id && (!before || before->upstream_id != after->upstream_id)) {
    CKPTD_RETURN_IF_ERROR(
        FromRocks(batch->Put(h, std::string(kLinkPrefix) + after->id, *after->upstream_id), "outbox link"));
  }
  for (auto& e : EventsFor(before, after)) {
    json::object row{
        {"id", after->id}, {"event", e.kind}, {"payload", std::move(e.payload)}, {"at", after->updated_at_ms}};
    CKPTD_RETURN_IF_ERROR(FromRocks(batch->Put(h, RowKey(next_seq_.fetch_add(1)), json::serialize(row)), "outbox row"));
  }
  return Status::Ok();
}

void UpstreamMirror::AfterWrite(const CheckpointRecord* before, const CheckpointRecord* after) {
  size_t n = EventsFor(before, after).size();
  if (n == 0) return;
  pending_ += static_cast<int64_t>(n);
  {
    MutexLock lock(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

json::value UpstreamMirror::Health() const {
  MutexLock lock(mu_);
  return json::object{{"enabled", true},
                      {"url", base_url_ + prefix_},
                      {"pending", pending_.load()},
                      {"last_error", last_error_.empty() ? json::value(nullptr) : json::value(last_error_)}};
}

json::value UpstreamHealth(const UpstreamMirror* mirror) {
  if (mirror) return mirror->Health();
  return json::object{{"enabled", false}, {"url", ""}, {"pending", 0}, {"last_error", nullptr}};
}

void UpstreamMirror::SetError(std::string e) {
  MutexLock lock(mu_);
  last_error_ = std::move(e);
}

std::string UpstreamMirror::Target(const std::string& suffix) const { return prefix_ + "/v2/checkpoints" + suffix; }

bool UpstreamMirror::WaitFor(std::chrono::milliseconds d) {
  UniqueLock lock(mu_);
  return !cv_.wait_for(lock, d, [this]() REQUIRES(mu_) { return stop_; });
}

void UpstreamMirror::Run() {
  auto backoff = kFirstBackoff;
  const std::chrono::milliseconds max_backoff = std::chrono::seconds(config_.retry_max_s);
  for (;;) {
    {
      MutexLock lock(mu_);
      if (stop_) return;
    }
    auto row = FirstRow();
    Outcome outcome = Outcome::kRetry;
    if (!row.ok()) {
      spdlog::error("upstream outbox: {}", row.status().ToString());
      SetError(row.status().ToString());
    } else if (!*row) {
      UniqueLock lock(mu_);
      cv_.wait(lock, [this]() REQUIRES(mu_) { return stop_ || wake_; });
      wake_ = false;
      continue;
    } else {
      outcome = Deliver(**row);
    }
    if (outcome == Outcome::kDone) {
      backoff = kFirstBackoff;
      continue;
    }
    if (!WaitFor(backoff)) return;
    backoff = std::min(backoff * 2, max_backoff);
  }
}

Result<std::optional<UpstreamMirror::Row>> UpstreamMirror::FirstRow() const {
  std::unique_ptr<rocksdb::Iterator> it(db_->raw()->NewIterator(rocksdb::ReadOptions(), db_->Handle(cf::kOutbox)));
  it->Seek(rocksdb::Slice(kRowPrefix.data(), kRowPrefix.size()));
  if (!it->Valid() || !it->key().starts_with(rocksdb::Slice(kRowPrefix.data(), kRowPrefix.size()))) {
    CKPTD_RETURN_IF_ERROR(FromRocks(it->status(), "read outbox"));
    return std::optional<Row>();
  }
  Row row;
  row.key = it->key().ToString();
  json::error_code ec;
  auto v = json::parse(it->value().ToStringView(), ec);
  if (ec) v = nullptr;
  JsonReader r(v, "outbox row");
  row.id = r.String("id");
  row.event = r.String("event");
  if (const auto* payload = r.Find("payload")) row.payload = *payload;
  if (ec || !r.ok() || !r.Find("payload")) {
    // Left in place would block every later row; an unreadable row can only
    // be dropped.
    row.event = "malformed";
    spdlog::error("upstream outbox row {} is malformed ({}): dropping it", RowSeq(row.key),
                  ec       ? ec.message()
                  : r.ok() ? "no payload"
                           : r.status().message());
  }
  return std::optional<Row>(std::move(row));
}

Result<std::optional<std::string>> UpstreamMirror::Link(const std::string& id) const {
  auto v = db_->Get(cf::kOutbox, std::string(kLinkPrefix) + id);
  if (v.ok()) return std::optional<std::string>(std::move(v).value());
  if (v.status().code() == Code::kNotFound) return std::optional<std::string>();
  return v.status();
}

Status UpstreamMirror::StoreLink(const std::string& id, const std::string& upstream_id) {
  // The record carries the link; OnWrite puts l/<id> in the same batch.
  auto r = catalog_->Update(id, [&](CheckpointRecord& rec) {
    rec.upstream_id = upstream_id;
    return Status::Ok();
  });
  if (r.ok()) return Status::Ok();
  if (r.status().code() != Code::kNotFound) return r.status();
  // Removed locally meanwhile: its later events still need the link.
  rocksdb::WriteBatch batch;
  CKPTD_RETURN_IF_ERROR(
      FromRocks(batch.Put(db_->Handle(cf::kOutbox), std::string(kLinkPrefix) + id, upstream_id), "outbox link"));
  return db_->Write(&batch);
}

Status UpstreamMirror::Finish(const Row& row) {
  auto* h = db_->Handle(cf::kOutbox);
  rocksdb::WriteBatch batch;
  rocksdb::Status s = batch.Delete(h, row.key);
  if (s.ok() && !row.id.empty()) s = batch.Delete(h, std::string(kInFlightPrefix) + row.id);
  // Deprecated is terminal: no later event needs the link (the record keeps
  // its upstream_id).
  if (s.ok() && row.event == "deprecate") s = batch.Delete(h, std::string(kLinkPrefix) + row.id);
  CKPTD_RETURN_IF_ERROR(FromRocks(s, "outbox delete"));
  CKPTD_RETURN_IF_ERROR(db_->Write(&batch));
  pending_ -= 1;
  return Status::Ok();
}

UpstreamMirror::Outcome UpstreamMirror::CreateUpstream(const std::string& id, const json::value& payload,
                                                       std::optional<std::string>* upstream_id) {
  upstream_id->reset();
  std::string marker = std::string(kInFlightPrefix) + id;
  auto prior = db_->Get(cf::kOutbox, marker);
  if (prior.ok()) {
    spdlog::warn(
        "upstream: a create for checkpoint {} may already have reached the upstream before a crash (no link was "
        "stored); creating it again, the earlier upstream copy, if any, stays initializing",
        id);
  } else {
    rocksdb::WriteBatch batch;
    auto st = FromRocks(batch.Put(db_->Handle(cf::kOutbox), marker, ""), "outbox marker");
    if (st.ok()) st = db_->Write(&batch);
    if (!st.ok()) {
      SetError(st.ToString());
      return Outcome::kRetry;
    }
  }
  std::string body;
  if (payload.is_object()) {
    if (auto* n = payload.as_object().if_contains("name"); n && n->is_string())
      body = json::serialize(json::object{{"name", *n}});
  }
  auto res = client_->Send("POST", Target(""), body);
  // Failures that prove the upstream created nothing clear the marker, so a
  // plain outage does not read as a possible duplicate later. The client
  // words a failed connect (nothing sent) as "cannot connect"/"cannot resolve".
  auto not_applied = [&] {
    rocksdb::WriteBatch batch;
    if (FromRocks(batch.Delete(db_->Handle(cf::kOutbox), marker), "outbox marker").ok()) (void)db_->Write(&batch);
  };
  if (!res.ok()) {
    const auto& m = res.status().message();
    if (m.find("cannot connect") != std::string::npos || m.find("cannot resolve") != std::string::npos) not_applied();
    SetError(fmt::format("create {}: {}", id, res.status().ToString()));
    return Outcome::kRetry;
  }
  if (Retryable(res->status)) {
    if (res->status < 500) not_applied();  // refused before doing anything
    SetError(fmt::format("create {}: HTTP {}: {}", id, res->status, Excerpt(res->body)));
    return Outcome::kRetry;
  }
  if (res->status / 100 != 2) {
    spdlog::error("upstream refused to create checkpoint {}: HTTP {}: {}", id, res->status, Excerpt(res->body));
    SetError(fmt::format("create {} dropped: HTTP {}", id, res->status));
    return Outcome::kDone;
  }
  std::string uid = Trim(res->body);
  if (!IsUuid(uid)) {
    spdlog::error("upstream answered create of {} with '{}', not a checkpoint id", id, Excerpt(uid));
    SetError(fmt::format("create {} dropped: upstream answered no id", id));
    return Outcome::kDone;
  }
  for (auto& ch : uid) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (auto st = StoreLink(id, uid); !st.ok()) {
    SetError(fmt::format("create {}: storing link: {}", id, st.ToString()));
    return Outcome::kRetry;
  }
  spdlog::info("checkpoint {} is {} upstream", id, uid);
  *upstream_id = uid;
  return Outcome::kDone;
}

UpstreamMirror::Outcome UpstreamMirror::Deliver(const Row& row) {
  auto finish = [&]() {
    if (auto st = Finish(row); !st.ok()) {
      SetError(st.ToString());
      return Outcome::kRetry;
    }
    return Outcome::kDone;
  };
  if (row.event == "malformed") return finish();

  auto link = Link(row.id);
  if (!link.ok()) {
    SetError(link.status().ToString());
    return Outcome::kRetry;
  }
  std::optional<std::string> uid = *link;
  if (row.event == "create") {
    if (uid) return finish();  // delivered before a crash; the link proves it
    auto o = CreateUpstream(row.id, row.payload, &uid);
    if (o == Outcome::kRetry) return o;
    if (uid) SetError("");
    return finish();
  }
  if (!uid) {
    // No create was mirrored (a record from before federation was on, or
    // one the upstream refused): create it now.
    json::value payload = json::object{{"name", nullptr}};
    if (auto r = catalog_->Get(row.id); r.ok()) payload = json::object{{"name", OptString(r->name)}};
    auto o = CreateUpstream(row.id, payload, &uid);
    if (o == Outcome::kRetry) return o;
    if (!uid) return finish();  // refused: nothing upstream to update
  }

  std::string method, target, body;
  if (row.event == "info") {
    method = "PUT", target = Target("/info/" + *uid), body = json::serialize(row.payload);
  } else if (row.event == "uploaded") {
    method = "POST", target = Target("/uploaded/" + *uid), body = json::serialize(row.payload);
  } else if (row.event == "deprecate") {
    method = "PATCH", target = Target("/deprecate/" + *uid);
  } else {
    spdlog::error("upstream outbox: unknown event '{}' for {}: dropping it", row.event, row.id);
    return finish();
  }
  auto res = client_->Send(method, target, body);
  if (!res.ok()) {
    SetError(fmt::format("{} {}: {}", row.event, row.id, res.status().ToString()));
    return Outcome::kRetry;
  }
  int code = res->status;
  if (code / 100 == 2) {
    SetError("");
    return finish();
  }
  if (Retryable(code)) {
    SetError(fmt::format("{} {}: HTTP {}: {}", row.event, row.id, code, Excerpt(res->body)));
    return Outcome::kRetry;
  }
  if (code == 409) {
    // Sent before a crash that came between the upstream applying it and the
    // row's deletion (uploaded twice), or the upstream moved on by itself.
    spdlog::info("upstream: {} of {} ({}) answered 409, taken as already applied: {}", row.event, row.id, *uid,
                 Excerpt(res->body));
    return finish();
  }
  spdlog::error("upstream refused {} of {} ({}): HTTP {}: {}; dropping it", row.event, row.id, *uid, code,
                Excerpt(res->body));
  SetError(fmt::format("{} {} dropped: HTTP {}", row.event, row.id, code));
  return finish();
}

}  // namespace ckptd
