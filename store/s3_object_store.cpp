#include "store/s3_object_store.h"

#include <algorithm>
#include <deque>
#include <future>

#include <fmt/format.h>
#include <openssl/evp.h>

#include "store/s3_client.h"
#include "store/s3_xml.h"

namespace ckptd {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kMinPart = 5 * kMiB;
constexpr uint64_t kMaxPart = 5ull << 30;
constexpr int kMaxParts = 10000;

std::string StripQuotes(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

std::string Md5Base64(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr) != 1) std::abort();
  unsigned char b64[64];
  int n = EVP_EncodeBlock(b64, md, static_cast<int>(len));
  return std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(n));
}

// Some S3 servers answer 200 to CompleteMultipartUpload/DeleteObjects and
// put the failure in the body.
Status ErrorInBody(const S3Response& resp, std::string_view what) {
  auto errs = XmlElements(resp.body, "Error");
  if (errs.empty()) return Status::Ok();
  std::string code = XmlText(errs.front(), "Code").value_or("?");
  std::string msg = XmlText(errs.front(), "Message").value_or("");
  std::string key = XmlText(errs.front(), "Key").value_or("");
  std::string text =
      fmt::format("{}: {}{}{}", what, code, msg.empty() ? "" : ": " + msg, key.empty() ? "" : " (key " + key + ")");
  if (code == "InternalError" || code == "SlowDown" || code == "ServiceUnavailable") return Unavailable(text);
  return IOError(text);
}

// ---------------------------------------------------------------- writer

class S3Writer final : public ObjectWriter {
 public:
  S3Writer(std::shared_ptr<S3Client> client, std::string key, std::optional<uint64_t> expected)
      : client_(std::move(client)),
        key_(std::move(key)),
        full_key_(client_->config().prefix + key_),
        expected_(expected) {}
  ~S3Writer() override {
    if (!closed_) Abort();
  }

  Status Write(std::string_view data) override {
    if (!failed_.ok()) return failed_;
    if (closed_) return Internal("write to a closed writer for '" + key_ + "'");
    while (!data.empty()) {
      uint64_t cap = S3ObjectStore::PartSizeFor(client_->config(), expected_, next_part_);
      size_t take = static_cast<size_t>(std::min<uint64_t>(cap - buf_.size(), data.size()));
      if (buf_.capacity() < cap) buf_.reserve(static_cast<size_t>(cap));
      buf_.append(data.substr(0, take));
      data.remove_prefix(take);
      written_ += take;
      if (buf_.size() == cap) {
        Status st = FlushPart();
        if (!st.ok()) return Fail(st);
      }
    }
    return Status::Ok();
  }

  Status Commit() override {
    if (!failed_.ok()) return failed_;
    if (closed_) return Internal("commit of a closed writer for '" + key_ + "'");
    Status st = upload_id_.empty() ? PutSingle() : FinishMultipart();
    if (!st.ok()) return Fail(st);
    closed_ = true;
    return Status::Ok();
  }

  void Abort() override {
    closed_ = true;
    DrainInflight();
    if (upload_id_.empty()) return;
    S3Request r{"DELETE", full_key_, {{"uploadId", upload_id_}}, {}, {}};
    // Best effort: a bucket lifecycle rule should catch what this misses.
    client_->Call(r).status().IgnoreError();
    upload_id_.clear();
  }

  uint64_t bytes_written() const override { return written_; }

 private:
  std::string What() const { return fmt::format("{}: put '{}'", client_->Describe(), key_); }

  Status Fail(Status st) {
    failed_ = st.WithContext(What());
    Abort();
    return failed_;
  }

  Status PutSingle() {
    S3Request r{"PUT", full_key_, {}, {}, buf_};
    CKPTD_ASSIGN_OR_RETURN(S3Response resp, client_->Call(r));
    buf_ = std::string();
    return Status::Ok();
  }

  Status Create() {
    S3Request r{"POST", full_key_, {{"uploads", ""}}, {}, {}};
    CKPTD_ASSIGN_OR_RETURN(S3Response resp, client_->Call(r));
    auto id = XmlText(resp.body, "UploadId");
    if (!id || id->empty()) return IOError("CreateMultipartUpload answer has no UploadId");
    upload_id_ = *id;
    return Status::Ok();
  }

  Status FlushPart() {
    if (upload_id_.empty()) CKPTD_RETURN_IF_ERROR(Create());
    if (next_part_ > kMaxParts) return TooLarge("object needs more than 10000 parts");
    // Bound memory: wait for a slot before handing off another part.
    while (inflight_.size() >= static_cast<size_t>(std::max(1, client_->config().max_in_flight)))
      CKPTD_RETURN_IF_ERROR(CollectOldest());
    auto body = std::make_shared<std::string>(std::move(buf_));
    buf_ = std::string();
    int n = next_part_++;
    std::shared_ptr<S3Client> client = client_;
    std::string key = full_key_, id = upload_id_;
    inflight_.push_back({n, std::async(std::launch::async, [client, key, id, n, body]() -> Result<std::string> {
                           S3Request r{"PUT", key, {{"partNumber", std::to_string(n)}, {"uploadId", id}}, {}, *body};
                           CKPTD_ASSIGN_OR_RETURN(S3Response resp, client->Call(r));
                           std::string etag = resp.Header("etag");
                           if (etag.empty()) return IOError(fmt::format("UploadPart {}: answer has no ETag", n));
                           return etag;
                         })});
    return Status::Ok();
  }

  Status CollectOldest() {
    Pending p = std::move(inflight_.front());
    inflight_.pop_front();
    Result<std::string> etag = p.etag.get();
    if (!etag.ok()) return etag.status().WithContext(fmt::format("part {}", p.part));
    done_.emplace_back(p.part, std::move(etag).value());
    return Status::Ok();
  }

  void DrainInflight() {
    while (!inflight_.empty()) {
      inflight_.front().etag.wait();
      inflight_.pop_front();
    }
  }

  Status FinishMultipart() {
    if (!buf_.empty()) CKPTD_RETURN_IF_ERROR(FlushPart());
    while (!inflight_.empty()) CKPTD_RETURN_IF_ERROR(CollectOldest());
    std::sort(done_.begin(), done_.end());
    // Every part numbered 1..N must be there: never complete with a gap.
    for (size_t i = 0; i < done_.size(); ++i) {
      if (done_[i].first != static_cast<int>(i + 1))
        return Internal(fmt::format("multipart upload is missing part {}", i + 1));
    }
    if (done_.size() != static_cast<size_t>(next_part_ - 1)) return Internal("multipart upload part count mismatch");
    std::string xml = "<CompleteMultipartUpload>";
    for (const auto& [n, etag] : done_)
      xml += fmt::format("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>", n, XmlEscape(etag));
    xml += "</CompleteMultipartUpload>";
    S3Request r{"POST", full_key_, {{"uploadId", upload_id_}}, {{"Content-Type", "application/xml"}}, xml};
    Result<S3Response> resp = client_->Call(r);
    if (!resp.ok()) {
      // A retried Complete whose first attempt succeeded sees NoSuchUpload:
      // accept it only if the object is there with our size and part count.
      if (resp.status().code() == Code::kNotFound &&
          resp.status().message().find("NoSuchUpload") != std::string::npos && CompletedAnyway()) {
        upload_id_.clear();
        return Status::Ok();
      }
      return resp.status();
    }
    CKPTD_RETURN_IF_ERROR(ErrorInBody(*resp, "CompleteMultipartUpload"));
    upload_id_.clear();  // nothing left to abort
    return Status::Ok();
  }

  bool CompletedAnyway() {
    S3Request r{"HEAD", full_key_, {}, {}, {}};
    Result<S3Response> resp = client_->Call(r);
    if (!resp.ok()) return false;
    if (resp->Header("content-length") != std::to_string(written_)) return false;
    std::string etag = StripQuotes(resp->Header("etag"));
    size_t dash = etag.rfind('-');
    return dash == std::string::npos || etag.substr(dash + 1) == std::to_string(done_.size());
  }

  struct Pending {
    int part;
    std::future<Result<std::string>> etag;
  };

  std::shared_ptr<S3Client> client_;
  std::string key_, full_key_;
  std::optional<uint64_t> expected_;
  std::string buf_;
  int next_part_ = 1;
  std::string upload_id_;
  std::deque<Pending> inflight_;
  std::vector<std::pair<int, std::string>> done_;
  Status failed_;
  bool closed_ = false;
  uint64_t written_ = 0;
};

// ---------------------------------------------------------------- reader

class S3Reader final : public ObjectReader {
 public:
  S3Reader(std::shared_ptr<S3Client> client, std::string full_key, std::string what)
      : client_(std::move(client)), full_key_(std::move(full_key)), what_(std::move(what)) {}

  // Sends the first GET; fills size_, etag_, remaining_.
  Status Start(const ReadOptions& opts) {
    pos_ = opts.offset;
    if (opts.length && *opts.length == 0) {
      CKPTD_RETURN_IF_ERROR(HeadForSize());
      remaining_ = 0;
      return Status::Ok();
    }
    std::optional<uint64_t> last;
    if (opts.length) last = opts.offset + *opts.length - 1;
    Status st = OpenAt(pos_, last, /*if_match=*/"");
    if (st.code() == Code::kInvalidArgument && st.message().find("416") != std::string::npos) {
      // Range starts past the end: an empty read, like the local backend.
      CKPTD_RETURN_IF_ERROR(HeadForSize());
      remaining_ = 0;
      return Status::Ok();
    }
    CKPTD_RETURN_IF_ERROR(st);
    uint64_t end = last ? std::min(*last + 1, size_) : size_;
    remaining_ = end > pos_ ? end - pos_ : 0;
    return Status::Ok();
  }

  Result<size_t> Read(std::span<char> buf) override {
    if (remaining_ == 0 || buf.empty()) return size_t{0};
    buf = buf.subspan(0, static_cast<size_t>(std::min<uint64_t>(buf.size(), remaining_)));
    for (int resumes = 0;; ++resumes) {
      Result<size_t> n = stream_ ? stream_->Read(buf) : Result<size_t>(Unavailable("no stream"));
      if (n.ok() && *n > 0) {
        pos_ += *n;
        remaining_ -= *n;
        return n;
      }
      Status err = n.ok() ? Unavailable("connection closed before the end of the object") : n.status();
      stream_.reset();
      if (resumes >= client_->config().max_retries) return err.WithContext(what_);
      // Resume where we are, pinned to the same version of the object.
      Status st = OpenAt(pos_, pos_ + remaining_ - 1, etag_);
      if (!st.ok()) return st.WithContext(what_ + ": resuming read");
    }
  }

  uint64_t size() const override { return size_; }

 private:
  Status HeadForSize() {
    S3Request r{"HEAD", full_key_, {}, {}, {}};
    CKPTD_ASSIGN_OR_RETURN(S3Response resp, client_->Call(r));
    size_ = std::stoull("0" + resp.Header("content-length"));
    return Status::Ok();
  }

  Status OpenAt(uint64_t first, std::optional<uint64_t> last, const std::string& if_match) {
    S3Request r{"GET", full_key_, {}, {}, {}};
    if (first > 0 || last) {
      r.headers.emplace_back("Range",
                             last ? fmt::format("bytes={}-{}", first, *last) : fmt::format("bytes={}-", first));
    }
    if (!if_match.empty()) r.headers.emplace_back("If-Match", "\"" + if_match + "\"");
    CKPTD_ASSIGN_OR_RETURN(stream_, client_->Open(r));
    const S3Response& h = stream_->head();
    etag_ = StripQuotes(h.Header("etag"));
    if (h.status == 206) {
      std::string cr = h.Header("content-range");  // "bytes a-b/total"
      size_t slash = cr.rfind('/');
      if (slash == std::string::npos || cr.substr(slash + 1) == "*")
        return IOError("GetObject: bad Content-Range '" + cr + "'");
      size_ = std::stoull(cr.substr(slash + 1));
    } else {
      size_ = std::stoull("0" + h.Header("content-length"));
      if (first > 0) return IOError("GetObject: server ignored the Range header");
    }
    return Status::Ok();
  }

  std::shared_ptr<S3Client> client_;
  std::string full_key_, what_;
  std::unique_ptr<S3BodyStream> stream_;
  std::string etag_;
  uint64_t size_ = 0, pos_ = 0, remaining_ = 0;
};

}  // namespace

uint64_t S3ObjectStore::PartSizeFor(const S3Config& cfg, std::optional<uint64_t> expected, int n) {
  uint64_t base = cfg.allow_small_parts ? std::max<uint64_t>(cfg.part_size, 1) : std::max(cfg.part_size, kMinPart);
  base = std::min(base, kMaxPart);
  uint64_t planned = base;
  if (expected) {
    uint64_t need = (*expected + kMaxParts - 1) / kMaxParts;
    if (need > base) planned = (need + kMiB - 1) / kMiB * kMiB;  // whole MiB
  }
  int shift = std::min((std::max(n, 1) - 1) / 1000, 10);
  uint64_t grown = base << shift;
  return std::min(std::max(planned, grown), kMaxPart);
}

S3ObjectStore::S3ObjectStore(std::shared_ptr<S3Client> client) : client_(std::move(client)) {}
S3ObjectStore::~S3ObjectStore() = default;

Result<std::unique_ptr<S3ObjectStore>> S3ObjectStore::Open(S3Config cfg, const Clock* clock) {
  CKPTD_RETURN_IF_ERROR(cfg.Validate());
  return std::unique_ptr<S3ObjectStore>(new S3ObjectStore(std::make_shared<S3Client>(std::move(cfg), clock)));
}

std::string S3ObjectStore::Describe() const { return client_->Describe(); }

Result<std::unique_ptr<ObjectWriter>> S3ObjectStore::NewWriter(std::string_view key, const WriteOptions& opts) {
  CKPTD_RETURN_IF_ERROR(ValidateKey(key));
  return std::unique_ptr<ObjectWriter>(new S3Writer(client_, std::string(key), opts.expected_size));
}

Result<std::unique_ptr<ObjectReader>> S3ObjectStore::NewReader(std::string_view key, const ReadOptions& opts) {
  CKPTD_RETURN_IF_ERROR(ValidateKey(key));
  auto reader = std::make_unique<S3Reader>(client_, client_->config().prefix + std::string(key),
                                           fmt::format("{}: get '{}'", Describe(), key));
  CKPTD_RETURN_IF_ERROR(reader->Start(opts).WithContext(fmt::format("{}: get '{}'", Describe(), key)));
  return std::unique_ptr<ObjectReader>(std::move(reader));
}

Result<ObjectInfo> S3ObjectStore::Head(std::string_view key) {
  CKPTD_RETURN_IF_ERROR(ValidateKey(key));
  S3Request r{"HEAD", client_->config().prefix + std::string(key), {}, {}, {}};
  Result<S3Response> resp = client_->Call(r);
  if (!resp.ok()) return resp.status().WithContext(fmt::format("{}: head '{}'", Describe(), key));
  ObjectInfo info;
  info.key = std::string(key);
  info.size = std::stoull("0" + resp->Header("content-length"));
  info.etag = StripQuotes(resp->Header("etag"));
  return info;
}

Result<ListPage> S3ObjectStore::List(std::string_view prefix, std::string_view page_token, int max_keys) {
  CKPTD_RETURN_IF_ERROR(ValidatePrefix(prefix));
  const std::string& store_prefix = client_->config().prefix;
  S3Request r{"GET",
              "",
              {{"list-type", "2"},
               {"prefix", store_prefix + std::string(prefix)},
               {"max-keys", std::to_string(std::clamp(max_keys, 1, 1000))}},
              {},
              {}};
  if (!page_token.empty()) r.query.emplace_back("continuation-token", std::string(page_token));
  Result<S3Response> resp = client_->Call(r);
  if (!resp.ok()) return resp.status().WithContext(fmt::format("{}: list '{}'", Describe(), prefix));
  ListPage page;
  for (std::string_view c : XmlElements(resp->body, "Contents")) {
    auto key = XmlText(c, "Key");
    if (!key || key->compare(0, store_prefix.size(), store_prefix) != 0) continue;
    ObjectInfo info;
    info.key = key->substr(store_prefix.size());
    info.size = std::stoull("0" + XmlText(c, "Size").value_or("0"));
    info.etag = StripQuotes(XmlText(c, "ETag").value_or(""));
    page.objects.push_back(std::move(info));
  }
  if (XmlText(resp->body, "IsTruncated").value_or("false") == "true") {
    page.next_token = XmlText(resp->body, "NextContinuationToken").value_or("");
    if (page.next_token.empty())
      return IOError(fmt::format("{}: list '{}': truncated answer without NextContinuationToken", Describe(), prefix));
  }
  return page;
}

Status S3ObjectStore::Delete(std::string_view key) {
  CKPTD_RETURN_IF_ERROR(ValidateKey(key));
  S3Request r{"DELETE", client_->config().prefix + std::string(key), {}, {}, {}};
  Result<S3Response> resp = client_->Call(r);
  if (!resp.ok() && resp.status().code() != Code::kNotFound)
    return resp.status().WithContext(fmt::format("{}: delete '{}'", Describe(), key));
  return Status::Ok();
}

Status S3ObjectStore::DeletePrefix(std::string_view prefix) {
  if (prefix.empty()) return InvalidArgument("DeletePrefix with an empty prefix refused");
  CKPTD_RETURN_IF_ERROR(ValidatePrefix(prefix));
  const std::string& store_prefix = client_->config().prefix;
  for (;;) {
    CKPTD_ASSIGN_OR_RETURN(ListPage page, List(prefix, {}, 1000));
    if (page.objects.empty()) return AbortUploads(prefix);
    std::string xml = "<Delete><Quiet>true</Quiet>";
    for (const ObjectInfo& o : page.objects)
      xml += "<Object><Key>" + XmlEscape(store_prefix + o.key) + "</Key></Object>";
    xml += "</Delete>";
    S3Request r{
        "POST", "", {{"delete", ""}}, {{"Content-MD5", Md5Base64(xml)}, {"Content-Type", "application/xml"}}, xml};
    Result<S3Response> resp = client_->Call(r);
    std::string what = fmt::format("{}: delete prefix '{}'", Describe(), prefix);
    if (!resp.ok()) return resp.status().WithContext(what);
    CKPTD_RETURN_IF_ERROR(ErrorInBody(*resp, what));
  }
}

Status S3ObjectStore::AbortUploads(std::string_view prefix) {
  const std::string full_prefix = client_->config().prefix + std::string(prefix);
  std::string what = fmt::format("{}: abort uploads under '{}'", Describe(), prefix);
  std::string key_marker, id_marker;
  for (;;) {
    S3Request r{"GET", "", {{"uploads", ""}, {"prefix", full_prefix}}, {}, {}};
    if (!key_marker.empty()) r.query.emplace_back("key-marker", key_marker);
    if (!id_marker.empty()) r.query.emplace_back("upload-id-marker", id_marker);
    Result<S3Response> resp = client_->Call(r);
    if (!resp.ok()) {
      if (resp.status().message().find("NotImplemented") != std::string::npos) return Status::Ok();
      return resp.status().WithContext(what);
    }
    for (std::string_view u : XmlElements(resp->body, "Upload")) {
      auto key = XmlText(u, "Key");
      auto id = XmlText(u, "UploadId");
      if (!key || !id || id->empty() || key->compare(0, full_prefix.size(), full_prefix) != 0) continue;
      S3Request del{"DELETE", *key, {{"uploadId", *id}}, {}, {}};
      Result<S3Response> d = client_->Call(del);
      if (!d.ok() && d.status().code() != Code::kNotFound) return d.status().WithContext(what);
    }
    if (XmlText(resp->body, "IsTruncated").value_or("false") != "true") return Status::Ok();
    std::string next_key = XmlText(resp->body, "NextKeyMarker").value_or("");
    std::string next_id = XmlText(resp->body, "NextUploadIdMarker").value_or("");
    if (next_key.empty() || (next_key == key_marker && next_id == id_marker))
      return IOError(what + ": truncated answer without a new NextKeyMarker");
    key_marker = std::move(next_key);
    id_marker = std::move(next_id);
  }
}

}  // namespace ckptd
