// Clang's thread-safety annotations, and a mutex that carries them: in a
// clang build with -Wthread-safety (the fuzz build is one) the compiler
// checks that a member marked GUARDED_BY(mu_) is only touched with mu_ held,
// and that functions marked REQUIRES(mu_) are only called so. Under GCC the
// annotations compile to nothing and document. The model is leveldb's
// port::Mutex with its thread_annotations.h.
//
//   Mutex mu_;
//   std::deque<Job> queue_ GUARDED_BY(mu_);
//   void Push(Job j) { MutexLock lock(mu_); queue_.push_back(std::move(j)); }
//
// Condition variables: CondVar (std::condition_variable_any) waits on a
// UniqueLock; a predicate lambda that reads guarded members says so with
// REQUIRES(mu_) on its call operator: [&]() REQUIRES(mu_) { return !queue_.empty(); }.
// Thread safety: Mutex is std::mutex's; the locks belong to one thread.
#pragma once

#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define CKPTD_TSA(x) __attribute__((x))
#else
#define CKPTD_TSA(x)
#endif

#define CAPABILITY(x) CKPTD_TSA(capability(x))
#define SCOPED_CAPABILITY CKPTD_TSA(scoped_lockable)
#define GUARDED_BY(x) CKPTD_TSA(guarded_by(x))
#define PT_GUARDED_BY(x) CKPTD_TSA(pt_guarded_by(x))
#define REQUIRES(...) CKPTD_TSA(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) CKPTD_TSA(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) CKPTD_TSA(acquire_capability(__VA_ARGS__))
#define RELEASE(...) CKPTD_TSA(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) CKPTD_TSA(try_acquire_capability(__VA_ARGS__))
#define NO_THREAD_SAFETY_ANALYSIS CKPTD_TSA(no_thread_safety_analysis)

namespace ckptd {

class CAPABILITY("mutex") Mutex {
 public:
  void lock() ACQUIRE() { m_.lock(); }
  void unlock() RELEASE() { m_.unlock(); }
  bool try_lock() TRY_ACQUIRE(true) { return m_.try_lock(); }

 private:
  std::mutex m_;
};

// Holds the mutex for its scope (std::lock_guard, annotated).
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() RELEASE() { mu_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

// Holds the mutex for its scope, but may drop and retake it (and a CondVar
// waits on it): std::unique_lock, annotated.
class SCOPED_CAPABILITY UniqueLock {
 public:
  explicit UniqueLock(Mutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~UniqueLock() RELEASE() {
    if (held_) mu_.unlock();
  }
  void lock() ACQUIRE() {
    mu_.lock();
    held_ = true;
  }
  void unlock() RELEASE() {
    held_ = false;
    mu_.unlock();
  }
  UniqueLock(const UniqueLock&) = delete;
  UniqueLock& operator=(const UniqueLock&) = delete;

 private:
  Mutex& mu_;
  bool held_ = true;
};

using CondVar = std::condition_variable_any;

}  // namespace ckptd
