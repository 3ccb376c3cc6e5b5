// The [snmp] AgentX subagent: BUCKWILD-MIB (packaging/BUCKWILD-MIB.txt)
// served through the host's snmpd, the way keepalived and lldpd do it, with
// net-snmp's agent library.
//
// Two threads, as for the metrics endpoint (metrics_server.h). net-snmp runs
// on a thread of its own and is touched by no other: it connects to the
// master's AgentX socket, answers GET and GETNEXT, pings the master every
// kPingInterval and reconnects after snmpd restarts. The answers come from a
// MibView (mib_view.h) of the status document, which is made on the event
// loop's thread: the agent thread posts a request through an eventfd the loop
// watches and waits at most `snapshot_timeout` for it. A snapshot younger
// than `snapshot_max_age` is reused, so a walk costs the loop one status
// document, not one per object. The loop never waits for the agent thread;
// when it does not answer in time, the agent answers from its last snapshot
// (genErr before the first).
//
// net-snmp's messages ("AgentX subagent connected", "failed to connect to
// the agentx master agent") are queued, at most kMaxQueuedMessages, and
// logged on the loop's thread.
//
// net-snmp's state is global: at most one SnmpAgent exists in a process.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "core/common/time.h"
#include "daemon/os/event_loop.h"
#include "daemon/os/sys_error.h"
#include "daemon/os/unique_fd.h"
#include "daemon/snmp/mib_view.h"

namespace buckwild::daemon::snmp {

struct SnmpAgentOptions {
  std::string agentx_socket = "/var/agentx/master";
  Duration snapshot_timeout = milliseconds(500);   // the loop's answer
  Duration snapshot_max_age = milliseconds(500);   // a snapshot this young is reused
  int ping_interval_seconds = 3;                   // AgentX ping; a failed one reconnects
  Duration agentx_timeout = seconds(1);            // an AgentX request to the master
  std::size_t max_queued_messages = 32;            // net-snmp's log lines awaiting the loop
};

class SnmpAgent {
 public:
  // Makes the status document. Called on the event loop's thread only;
  // must not throw.
  using Snapshot = std::function<nlohmann::json()>;
  // Logs one of net-snmp's messages; on the loop's thread. `warning` for
  // net-snmp's LOG_WARNING and worse.
  using Log = std::function<void(bool warning, const std::string& message)>;

  // Starts the agent thread, which connects to the master (and keeps trying
  // while there is none). Call on the loop's thread; `loop` must outlive the
  // agent. Errors: no eventfd, no thread, or another SnmpAgent exists.
  static SysResult<std::unique_ptr<SnmpAgent>> start(EventLoop& loop, SnmpAgentOptions options,
                                                     Snapshot snapshot, Log log);

  // Call on the loop's thread. A snapshot request under way is abandoned; the
  // agent thread closes its AgentX session and ends (within one
  // agentx_timeout at worst).
  ~SnmpAgent();
  SnmpAgent(const SnmpAgent&) = delete;
  SnmpAgent& operator=(const SnmpAgent&) = delete;

 private:
  SnmpAgent(EventLoop& loop, SnmpAgentOptions options, Snapshot snapshot, Log log, UniqueFd wake,
            UniqueFd stop);

  friend struct SnmpAgentCallbacks;  // net-snmp's callbacks (snmp_agent.cc)
  void run();                        // the agent thread
  // On the agent thread: a view no older than snapshot_max_age, or the last
  // one when the loop does not answer, or nullptr before any.
  std::shared_ptr<const MibView> view();
  // On the agent thread: a net-snmp message for the loop to log.
  void queue_message(bool warning, std::string message);
  // On the loop's thread: the eventfd is readable.
  void on_wake();

  EventLoop& loop_;
  SnmpAgentOptions options_;
  Snapshot snapshot_;
  Log log_;
  UniqueFd wake_;  // eventfd: the agent thread -> the loop
  UniqueFd stop_;  // eventfd: the loop -> the agent thread
  std::thread thread_;

  // The agent thread's own.
  std::shared_ptr<const MibView> view_;
  std::chrono::steady_clock::time_point view_made_{};

  // Shared by the two threads.
  std::mutex mu_;
  std::condition_variable answered_cv_;
  std::uint64_t asked_ = 0;
  std::uint64_t answered_ = 0;
  nlohmann::json document_;
  std::deque<std::pair<bool, std::string>> messages_;
  std::uint64_t messages_dropped_ = 0;
  bool closing_ = false;
};

}  // namespace buckwild::daemon::snmp
