// Cleanup of deprecated checkpoints: only deprecated checkpoints' objects go
// (local and S3), cleaned_at is recorded, the record goes after the
// retention, failed deletes are retried, held checkpoints are skipped; the
// daemon runs rounds periodically and on POST /v2/cleanup, and deprecating
// waits for a restore's reader hold.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "api/client.h"
#include "daemon/daemon.h"
#include "jobs/checkpoint_readers.h"
#include "jobs/cleanup.h"
#include "store/catalog.h"
#include "store/db.h"
#include "store/local_object_store.h"
#include "store/object_uri.h"
#include "tests/testing/daemon_fixture.h"
#include "tests/testing/manual_clock.h"
#include "tests/testing/s3rver_fixture.h"
#include "tests/testing/test_util.h"

namespace ckptd {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using testing::S3rverProcess;
using testing::TempDir;

bool Exists(ObjectStore* store, const std::string& key) { return store->Head(key).ok(); }

void PutCheckpointObjects(ObjectStore* store, const std::string& prefix) {
  ASSERT_TRUE(store->PutBytes(prefix + "manifest.json", "{}").ok());
  ASSERT_TRUE(store->PutBytes(prefix + "pages-1.img.zst", std::string(4096, 'p')).ok());
  ASSERT_TRUE(store->PutBytes(prefix + "sub/dir/core.img", "core").ok());
}

// A ready checkpoint whose restore_path is <store_uri><id>/.
std::string MakeReady(Catalog* catalog, const std::string& store_uri) {
  auto rec = catalog->Create(std::nullopt);
  EXPECT_TRUE(rec.ok());
  EXPECT_TRUE(catalog->SetInfo(rec->id, "none", "linux", json::object{{"pid", 1}}).ok());
  EXPECT_TRUE(catalog->MarkReady(rec->id, store_uri + rec->id + "/", std::nullopt).ok());
  return rec->id;
}

class CleanerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = Db::Open(dir_.File("db"));
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    catalog_ = std::make_unique<Catalog>(db_.get(), &clock_);
    ASSERT_TRUE(catalog_->Init().ok());
    auto images = LocalObjectStore::Open(dir_.File("images"));
    ASSERT_TRUE(images.ok());
    images_ = std::move(*images);
    images_uri_ = images_->Describe();
  }
  std::unique_ptr<Cleaner> NewCleaner(std::chrono::seconds retention = 3600s, ObjectStoreConfig sc = {}) {
    CleanerOptions o;
    o.interval = 0s;
    o.retention = retention;
    o.store_config = std::move(sc);
    o.page = 2;  // several pages even with a few records
    return std::make_unique<Cleaner>(o, catalog_.get(), images_.get(), &readers_, &clock_);
  }

  TempDir dir_;
  testing::ManualClock clock_{1'700'000'000'000};
  std::unique_ptr<Db> db_;
  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<LocalObjectStore> images_;
  std::string images_uri_;
  CheckpointReaders readers_;
};

TEST_F(CleanerTest, LocalRemovesObjectsOfDeprecatedCheckpointsAndNothingElse) {
  std::string a = MakeReady(catalog_.get(), images_uri_);
  std::string b = MakeReady(catalog_.get(), images_uri_);
  PutCheckpointObjects(images_.get(), a + "/");
  PutCheckpointObjects(images_.get(), b + "/");
  std::string other = NewUuid();  // objects of an id the catalog does not know
  ASSERT_TRUE(images_->PutBytes(other + "/manifest.json", "{}").ok());
  ASSERT_TRUE(images_->PutBytes("stray.txt", "root").ok());
  ASSERT_TRUE(images_->PutBytes(a + "x/not-a", "same prefix, other name").ok());
  ASSERT_TRUE(catalog_->Deprecate(a).ok());

  auto cleaner = NewCleaner();
  auto r = cleaner->RunOnce();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->cleaned, 1);
  EXPECT_EQ(r->removed, 0);
  EXPECT_TRUE(r->errors.empty());

  auto listed = images_->List(a + "/");
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->objects.empty());
  EXPECT_TRUE(Exists(images_.get(), b + "/manifest.json"));
  EXPECT_TRUE(Exists(images_.get(), b + "/pages-1.img.zst"));
  EXPECT_TRUE(Exists(images_.get(), b + "/sub/dir/core.img"));
  EXPECT_TRUE(Exists(images_.get(), other + "/manifest.json"));
  EXPECT_TRUE(Exists(images_.get(), "stray.txt"));
  EXPECT_TRUE(Exists(images_.get(), a + "x/not-a"));

  auto ra = catalog_->Get(a);
  ASSERT_TRUE(ra.ok());
  ASSERT_TRUE(ra->cleaned_at_ms.has_value());
  EXPECT_EQ(*ra->cleaned_at_ms, clock_.NowMillis());
  auto rb = catalog_->Get(b);
  ASSERT_TRUE(rb.ok());
  EXPECT_FALSE(rb->cleaned_at_ms.has_value());
  EXPECT_EQ(rb->status, CheckpointStatus::kReady);

  // A second round has nothing to do.
  r = cleaner->RunOnce();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->cleaned, 0);
  EXPECT_TRUE(Exists(images_.get(), b + "/manifest.json"));
}

// With the image store's root known, directories of ids the catalog does
// not have are orphans; and a deprecated checkpoint's interrupted upload
// (a hidden temp file) goes with its objects.
TEST_F(CleanerTest, OrphansAndInterruptedUploadsAreDeleted) {
  std::string a = MakeReady(catalog_.get(), images_uri_);
  std::string b = MakeReady(catalog_.get(), images_uri_);
  PutCheckpointObjects(images_.get(), a + "/");
  PutCheckpointObjects(images_.get(), b + "/");
  std::ofstream(dir_.File("images/") + a + "/.ckptd-tmp-pages-2.img.1") << "half an upload";
  ASSERT_TRUE(catalog_->Deprecate(a).ok());
  std::string orphan = NewUuid();
  PutCheckpointObjects(images_.get(), orphan + "/");
  std::ofstream(dir_.File("images/") + orphan + "/.ckptd-tmp-core.img.2") << "x";
  ASSERT_TRUE(images_->PutBytes("not-an-id/keep.img", "kept").ok());
  // A symlink named as an id is not ours to follow.
  std::filesystem::create_directories(dir_.File("elsewhere"));
  std::ofstream(dir_.File("elsewhere/precious")) << "keep";
  std::filesystem::create_directory_symlink(dir_.File("elsewhere"), dir_.File("images/") + NewUuid());

  CleanerOptions o;
  o.interval = 0s;
  o.images_root = dir_.File("images");
  Cleaner cleaner(o, catalog_.get(), images_.get(), &readers_, &clock_);
  auto r = cleaner.RunOnce();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->cleaned, 1);
  EXPECT_EQ(r->orphans, 1);
  EXPECT_TRUE(r->errors.empty()) << r->errors.front();
  EXPECT_FALSE(std::filesystem::exists(dir_.File("images/") + a));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("images/") + orphan));
  EXPECT_TRUE(Exists(images_.get(), b + "/manifest.json"));
  EXPECT_TRUE(Exists(images_.get(), "not-an-id/keep.img"));
  EXPECT_TRUE(std::filesystem::exists(dir_.File("elsewhere/precious")));
}

// A deprecated checkpoint whose directory was replaced by a link to
// another directory: cleanup deletes nothing there.
TEST_F(CleanerTest, ACheckpointDirectoryReplacedByALinkIsNotFollowed) {
  std::string a = MakeReady(catalog_.get(), images_uri_);
  PutCheckpointObjects(images_.get(), a + "/");
  std::filesystem::remove_all(dir_.File("images/") + a);
  std::filesystem::create_directories(dir_.File("victim/sub/dir"));
  std::ofstream(dir_.File("victim/manifest.json")) << "{}";
  std::ofstream(dir_.File("victim/sub/dir/core.img")) << "keep";
  std::filesystem::create_directory_symlink(dir_.File("victim"), dir_.File("images/") + a);
  ASSERT_TRUE(catalog_->Deprecate(a).ok());
  auto r = NewCleaner()->RunOnce();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(std::filesystem::exists(dir_.File("victim/manifest.json")));
  EXPECT_TRUE(std::filesystem::exists(dir_.File("victim/sub/dir/core.img")));
}

TEST_F(CleanerTest, RecordRemovedAfterRetentionOnALaterRound) {
  std::string a = MakeReady(catalog_.get(), images_uri_);
  PutCheckpointObjects(images_.get(), a + "/");
  ASSERT_TRUE(catalog_->Deprecate(a).ok());
  auto cleaner = NewCleaner(60s);
  auto r = cleaner->RunOnce();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->cleaned, 1);
  EXPECT_EQ(r->removed, 0);
  clock_.Advance(59s);
  r = cleaner->RunOnce();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->removed, 0);
  EXPECT_TRUE(catalog_->Get(a).ok());
  clock_.Advance(1s);
  r = cleaner->RunOnce();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->removed, 1);
  EXPECT_EQ(catalog_->Get(a).status().code(), Code::kNotFound);
}

TEST_F(CleanerTest, ZeroRetentionStillShowsCleanedAtUntilTheNextRound) {
  std::string a = MakeReady(catalog_.get(), images_uri_);
  ASSERT_TRUE(catalog_->Deprecate(a).ok());
  auto cleaner = NewCleaner(0s);
  ASSERT_EQ(cleaner->RunOnce()->cleaned, 1);
  EXPECT_TRUE(catalog_->Get(a)->cleaned_at_ms.has_value());
  ASSERT_EQ(cleaner->RunOnce()->removed, 1);
  EXPECT_EQ(catalog_->Get(a).status().code(), Code::kNotFound);
}

TEST_F(CleanerTest, FailedJobWithoutRestorePathIsCleanedFromTheImageStore) {
  auto rec = catalog_->Create(std::nullopt);
  ASSERT_TRUE(rec.ok());
  PutCheckpointObjects(images_.get(), rec->id + "/");
  ASSERT_TRUE(catalog_->Deprecate(rec->id, "upload: disk full").ok());
  auto r = NewCleaner()->RunOnce();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->cleaned, 1);
  EXPECT_TRUE(images_->List(rec->id + "/")->objects.empty());
  EXPECT_TRUE(catalog_->Get(rec->id)->cleaned_at_ms.has_value());
}

TEST_F(CleanerTest, ForeignRestorePathIsLeftAlone) {
  // A client may set any restore_path; one that does not end in the id is
  // not ours to delete.
  auto foreign = LocalObjectStore::Open(dir_.File("foreign"));
  ASSERT_TRUE(foreign.ok());
  ASSERT_TRUE((*foreign)->PutBytes("manifest.json", "{}").ok());
  auto rec = catalog_->Create(std::nullopt);
  ASSERT_TRUE(catalog_->SetInfo(rec->id, "none", "linux", nullptr).ok());
  ASSERT_TRUE(catalog_->MarkReady(rec->id, (*foreign)->Describe(), std::nullopt).ok());
  ASSERT_TRUE(catalog_->Deprecate(rec->id).ok());
  auto r = NewCleaner()->RunOnce();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->cleaned, 1);
  EXPECT_TRUE(Exists(foreign->get(), "manifest.json"));
}

TEST_F(CleanerTest, CheckpointBeingReadIsSkippedUntilReleased) {
  std::string a = MakeReady(catalog_.get(), images_uri_);
  PutCheckpointObjects(images_.get(), a + "/");
  auto hold = readers_.Acquire(a);
  ASSERT_TRUE(catalog_->Deprecate(a).ok());
  auto cleaner = NewCleaner();
  auto r = cleaner->RunOnce();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->cleaned, 0);
  EXPECT_EQ(r->skipped, 1);
  EXPECT_TRUE(Exists(images_.get(), a + "/manifest.json"));
  hold.Release();
  r = cleaner->RunOnce();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->cleaned, 1);
  EXPECT_FALSE(Exists(images_.get(), a + "/manifest.json"));
}

TEST(CheckpointReadersTest, HoldForReadRefusesADeprecatedCheckpoint) {
  TempDir dir;
  auto db = Db::Open(dir.File("db"));
  ASSERT_TRUE(db.ok());
  Catalog catalog(db->get(), SystemClock::Default());
  ASSERT_TRUE(catalog.Init().ok());
  CheckpointReaders readers;
  std::string a = MakeReady(&catalog, "file://" + dir.File(""));
  {
    auto h = HoldForRead(&readers, catalog, a);
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(readers.Readers(a), 1);
  }
  EXPECT_EQ(readers.Readers(a), 0);
  ASSERT_TRUE(catalog.Deprecate(a).ok());
  auto h = HoldForRead(&readers, catalog, a);
  EXPECT_EQ(h.status().code(), Code::kConflict);
  EXPECT_EQ(readers.Readers(a), 0);  // the hold went with the refusal
  EXPECT_TRUE(readers.WaitForReaders(a, 0ms).ok());
  auto h2 = readers.Acquire(a);
  EXPECT_EQ(readers.WaitForReaders(a, 20ms).code(), Code::kDeadlineExceeded);
}

// --- S3 ---------------------------------------------------------------

class CleanerS3Test : public CleanerTest {
 protected:
  void SetUp() override {
    CleanerTest::SetUp();
    auto st = server_.Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    ObjectStoreConfig sc;
    sc.s3 = server_.Config();
    sc.s3_from_env = false;
    store_config_ = sc;
    s3_uri_ = std::string("s3://") + S3rverProcess::kBucket + "/ckpts/";
    auto store = OpenObjectStore(s3_uri_, store_config_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    s3_ = std::move(*store);
    auto root = OpenObjectStore(std::string("s3://") + S3rverProcess::kBucket + "/", store_config_);
    ASSERT_TRUE(root.ok());
    root_ = std::move(*root);
  }
  S3rverProcess server_;
  ObjectStoreConfig store_config_;
  std::string s3_uri_;
  std::unique_ptr<ObjectStore> s3_, root_;
};

TEST_F(CleanerS3Test, RemovesObjectsOfDeprecatedCheckpointsAndNothingElse) {
  std::string a = MakeReady(catalog_.get(), s3_uri_);
  std::string b = MakeReady(catalog_.get(), s3_uri_);
  PutCheckpointObjects(s3_.get(), a + "/");
  PutCheckpointObjects(s3_.get(), b + "/");
  ASSERT_TRUE(root_->PutBytes("stray-at-bucket-root", "x").ok());
  ASSERT_TRUE(root_->PutBytes(a + "/outside-the-prefix", "x").ok());  // same id, other store
  ASSERT_TRUE(catalog_->Deprecate(a).ok());

  auto r = NewCleaner(3600s, store_config_)->RunOnce();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->cleaned, 1);
  EXPECT_TRUE(r->errors.empty()) << r->errors.front();
  auto listed = s3_->List(a + "/");
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->objects.empty());
  EXPECT_TRUE(Exists(s3_.get(), b + "/manifest.json"));
  EXPECT_TRUE(Exists(s3_.get(), b + "/sub/dir/core.img"));
  EXPECT_TRUE(Exists(root_.get(), "stray-at-bucket-root"));
  EXPECT_TRUE(Exists(root_.get(), a + "/outside-the-prefix"));
  EXPECT_TRUE(catalog_->Get(a)->cleaned_at_ms.has_value());
  EXPECT_FALSE(catalog_->Get(b)->cleaned_at_ms.has_value());
}

TEST_F(CleanerS3Test, FailedDeleteIsRetriedNextRound) {
  std::string a = MakeReady(catalog_.get(), s3_uri_);
  PutCheckpointObjects(s3_.get(), a + "/");
  ASSERT_TRUE(catalog_->Deprecate(a).ok());
  auto cleaner = NewCleaner(3600s, store_config_);

  server_.Stop();
  auto r = cleaner->RunOnce();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->cleaned, 0);
  ASSERT_EQ(r->errors.size(), 1u);
  EXPECT_NE(r->errors[0].find(a), std::string::npos) << r->errors[0];
  auto rec = catalog_->Get(a);
  ASSERT_TRUE(rec.ok());
  EXPECT_FALSE(rec->cleaned_at_ms.has_value());
  ASSERT_TRUE(rec->info.is_object());
  EXPECT_TRUE(rec->info.as_object().contains("cleanup_error"));

  ASSERT_TRUE(server_.Start().ok());
  EXPECT_TRUE(Exists(s3_.get(), a + "/manifest.json"));
  r = cleaner->RunOnce();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->cleaned, 1);
  EXPECT_TRUE(r->errors.empty());
  EXPECT_TRUE(s3_->List(a + "/")->objects.empty());
  rec = catalog_->Get(a);
  EXPECT_TRUE(rec->cleaned_at_ms.has_value());
  EXPECT_FALSE(rec->info.as_object().contains("cleanup_error"));
}

// --- The daemon -------------------------------------------------------

class DaemonCleanupTest : public testing::DaemonFixture {
 protected:
  DaemonCleanupTest() : DaemonFixture(When::kByTest) {}
  // The daemon with cleanup rounds every interval_s (0: on POST /v2/cleanup
  // only) and records kept retention_s after their objects went.
  void StartCleaning(int64_t interval_s, int64_t retention_s = 3600) {
    interval_s_ = interval_s;
    retention_s_ = retention_s;
    StartDaemon();
  }
  Config MakeConfig() override {
    Config c = DaemonFixture::MakeConfig();
    c.cleanup_interval_s = interval_s_;
    c.cleanup_retention_s = retention_s_;
    return c;
  }
  ObjectStore* images() { return daemon_->job_system()->images(); }
  std::string MakeCheckpoint() {
    std::string id = MakeReady(daemon_->catalog(), images()->Describe());
    PutCheckpointObjects(images(), id + "/");
    return id;
  }

  int64_t interval_s_ = 0;
  int64_t retention_s_ = 3600;
};

TEST_F(DaemonCleanupTest, PostCleanupRunsARoundNow) {
  StartCleaning(0);
  std::string a = MakeCheckpoint();
  std::string b = MakeCheckpoint();
  auto d = client_->Send("PATCH", "/v2/checkpoints/deprecate/" + a);
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->status, 200) << d->body;

  auto r = client_->Send("POST", "/v2/cleanup");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  json::object body = json::parse(r->body).as_object();
  EXPECT_EQ(body.at("cleaned").as_int64(), 1);
  EXPECT_EQ(body.at("removed").as_int64(), 0);
  EXPECT_TRUE(body.at("errors").as_array().empty());
  EXPECT_FALSE(Exists(images(), a + "/manifest.json"));
  EXPECT_TRUE(Exists(images(), b + "/manifest.json"));
  EXPECT_TRUE(GetCheckpoint(a).at("cleaned_at").is_string());
  EXPECT_TRUE(GetCheckpoint(b).at("cleaned_at").is_null());

  auto u = Client("wrong")->Send("POST", "/v2/cleanup");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->status, 401);
}

TEST_F(DaemonCleanupTest, PeriodicRoundsCleanAndRemoveWithoutTheTrigger) {
  StartCleaning(1, 1);
  std::string a = MakeCheckpoint();
  std::string b = MakeCheckpoint();
  ASSERT_EQ(client_->Send("PATCH", "/v2/checkpoints/deprecate/" + a)->status, 200);
  auto deadline = std::chrono::steady_clock::now() + 15s;
  bool gone = false;
  bool saw_cleaned = false;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = client_->Send("GET", "/v2/checkpoints/" + a);
    ASSERT_TRUE(r.ok());
    if (r->status == 404) {
      gone = true;
      break;
    }
    if (json::parse(r->body).at("cleaned_at").is_string()) saw_cleaned = true;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(saw_cleaned);
  EXPECT_TRUE(gone) << "the record was not removed after its retention";
  EXPECT_FALSE(Exists(images(), a + "/manifest.json"));
  EXPECT_TRUE(Exists(images(), b + "/manifest.json"));
  EXPECT_TRUE(GetCheckpoint(b).at("cleaned_at").is_null());
}

TEST_F(DaemonCleanupTest, DeprecateWaitsForARestoreReadingTheCheckpoint) {
  StartCleaning(0);
  std::string a = MakeCheckpoint();
  // What a restore job holds while it downloads (jobs/restore_job.cpp).
  auto hold = HoldForRead(daemon_->checkpoint_readers(), *daemon_->catalog(), a);
  ASSERT_TRUE(hold.ok());

  std::atomic<bool> answered{false};
  std::chrono::steady_clock::time_point answered_at;
  int status = 0;
  std::thread t([&] {
    auto r = Client()->Send("PATCH", "/v2/checkpoints/deprecate/" + a);
    answered_at = std::chrono::steady_clock::now();
    status = r.ok() ? r->status : -1;
    answered = true;
  });
  // Deprecated at once (new restores are refused), answered only later.
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (daemon_->catalog()->Get(a)->status != CheckpointStatus::kDeprecated &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(daemon_->catalog()->Get(a)->status, CheckpointStatus::kDeprecated);
  EXPECT_EQ(HoldForRead(daemon_->checkpoint_readers(), *daemon_->catalog(), a).status().code(),
            Code::kConflict);
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(answered.load()) << "deprecate answered while the checkpoint was being read";
  // Cleanup leaves it alone meanwhile.
  auto r = daemon_->cleaner()->RunOnce();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->skipped, 1);
  EXPECT_TRUE(Exists(images(), a + "/manifest.json"));

  auto released_at = std::chrono::steady_clock::now();
  hold->Release();
  t.join();
  EXPECT_EQ(status, 200);
  EXPECT_GE(answered_at, released_at);
  EXPECT_EQ(daemon_->cleaner()->RunOnce()->cleaned, 1);
}

}  // namespace
}  // namespace ckptd
