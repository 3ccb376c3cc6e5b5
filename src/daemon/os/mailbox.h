// Work handed to an event loop's thread from other threads: post() queues a
// function and wakes the loop through an eventfd; the loop runs what was
// queued, in order, on its own thread. call() posts and waits for the result:
// the control plane asks a worker's tunnel for its status or a reload that
// way (daemon/workers/workers.h). Only the control plane waits, and only on
// workers; a worker never waits on anyone, so no two threads wait on each
// other.
#pragma once

#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

#include "daemon/os/event_loop.h"
#include "daemon/os/sys_error.h"
#include "daemon/os/unique_fd.h"

namespace buckwild::daemon {

class Mailbox {
 public:
  // Watches a new eventfd on `loop`; the mailbox must be destroyed on the
  // loop's thread, before the loop.
  static SysResult<std::unique_ptr<Mailbox>> create(EventLoop& loop);
  ~Mailbox();
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  // From any thread: runs `work` on the loop's thread at its next turn.
  // Work posted after close() is dropped (the loop is ending).
  void post(std::function<void()> work);

  // From another thread than the loop's: runs `work` there and returns its
  // result once it ran. Must not be called from the loop's own thread (it
  // would wait for itself). Throws std::future_error (broken_promise) if the
  // mailbox closed before the work ran.
  template <typename F>
  std::invoke_result_t<F> call(F work) {
    using R = std::invoke_result_t<F>;
    auto task = std::make_shared<std::packaged_task<R()>>(std::move(work));
    std::future<R> done = task->get_future();
    // The mailbox holds the only reference: dropped unrun, the promise breaks.
    post([task = std::move(task)] { (*task)(); });
    return done.get();
  }

  // Runs what is queued now, then refuses further posts and drops what they
  // would have queued (their callers' futures break). On the loop's thread.
  void close();

 private:
  Mailbox(EventLoop& loop, UniqueFd fd) : loop_(loop), fd_(std::move(fd)) {}
  void drain();

  EventLoop& loop_;
  UniqueFd fd_;
  std::mutex mutex_;
  std::vector<std::function<void()>> queued_;
  bool closed_ = false;
};

}  // namespace buckwild::daemon
