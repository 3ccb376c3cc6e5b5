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
// Writes (SET of bwLogLevel, bwDiscoveryRateLimit, bwPeerAdminState) are
// checked by their SYNTAX on the agent thread, then by the Writer on the
// loop's thread in the master's TestSet phase (the checks of a reload, with
// nothing applied) and applied in its CommitSet phase; UndoSet puts back the
// values the commit replaced. The agent thread waits for the loop at most
// `write_timeout` (then the write fails with genErr and is never applied).
//
// Notifications (traps) are queued by the loop (notify(), at most
// max_queued_notifications, more are dropped and counted) and handed to
// net-snmp by the agent thread, woken through an eventfd; net-snmp sends
// them to the master as AgentX Notify PDUs (and drops them while there is
// no master).
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
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "core/common/time.h"
#include "daemon/os/event_loop.h"
#include "daemon/os/sys_error.h"
#include "daemon/os/unique_fd.h"
#include "core/common/socket_address.h"
#include "daemon/snmp/mib_oids.h"
#include "daemon/snmp/mib_view.h"

namespace buckwild::daemon::snmp {

struct SnmpAgentOptions {
  std::string agentx_socket = "/var/agentx/master";
  Duration snapshot_timeout = milliseconds(500);   // the loop's answer
  Duration snapshot_max_age = milliseconds(500);   // a snapshot this young is reused
  int ping_interval_seconds = 3;                   // AgentX ping; a failed one reconnects
  Duration agentx_timeout = seconds(1);            // an AgentX request to the master
  std::size_t max_queued_messages = 32;            // net-snmp's log lines awaiting the loop
  Duration write_timeout = milliseconds(800);      // the loop's answer to a write
  std::size_t max_queued_notifications = 64;       // traps awaiting the agent thread
};

// One SET's changes: settings by their configuration key ("logging.level",
// "debug") and peers' administrative states (name, up).
struct SnmpWrite {
  std::vector<std::pair<std::string, std::string>> settings;
  std::vector<std::pair<std::string, bool>> admin;
  bool check_only = false;  // TestSet: check, change nothing
};

struct SnmpWriteResult {
  bool ok = false;
  std::string error;   // when refused: why (logged by the Writer)
  SnmpWrite previous;  // when applied: the values it replaced (for UndoSet)
};

// A notification of BUCKWILD-MIB with its objects' values.
struct SnmpNotification {
  Notification kind = Notification::kSessionUp;
  std::string peer;            // the bwPeerTable index (sessions, recovery)
  bool established = false;    // bwPeerState
  std::string session_id;      // bwPeerSessionId
  std::optional<SocketAddress> endpoint;
  std::string reason;          // bwNotifyReason
  std::int32_t attack_kind = 0;  // bwNotifyAttackKind: filterDrops(1), discoveryRefusals(2)
  std::uint32_t rate = 0;        // bwNotifyRate
  std::uint32_t threshold = 0;   // bwNotifyThreshold
};

struct SnmpAgentStats {
  std::uint64_t notifications_sent = 0;     // handed to net-snmp
  std::uint64_t notifications_dropped = 0;  // the queue was full
  std::uint64_t writes_applied = 0;
  std::uint64_t writes_refused = 0;
};

class SnmpAgent {
 public:
  // Makes the status document. Called on the event loop's thread only;
  // must not throw.
  using Snapshot = std::function<nlohmann::json()>;
  // Logs one of net-snmp's messages; on the loop's thread. `warning` for
  // net-snmp's LOG_WARNING and worse.
  using Log = std::function<void(bool warning, const std::string& message)>;
  // Checks or applies a write. On the loop's thread; must not throw.
  using Writer = std::function<SnmpWriteResult(const SnmpWrite&)>;

  // Starts the agent thread, which connects to the master (and keeps trying
  // while there is none). Call on the loop's thread; `loop` must outlive the
  // agent. Errors: no eventfd, no thread, or another SnmpAgent exists.
  static SysResult<std::unique_ptr<SnmpAgent>> start(EventLoop& loop, SnmpAgentOptions options,
                                                     Snapshot snapshot, Log log, Writer writer);

  // Queues a notification for the agent thread to send. On the loop's thread.
  void notify(SnmpNotification n);

  // On the loop's thread.
  SnmpAgentStats stats();

  // Call on the loop's thread. A snapshot request under way is abandoned; the
  // agent thread closes its AgentX session and ends (within one
  // agentx_timeout at worst).
  ~SnmpAgent();
  SnmpAgent(const SnmpAgent&) = delete;
  SnmpAgent& operator=(const SnmpAgent&) = delete;

 private:
  SnmpAgent(EventLoop& loop, SnmpAgentOptions options, Snapshot snapshot, Log log, Writer writer,
            UniqueFd wake, UniqueFd stop);

  friend struct SnmpAgentCallbacks;  // net-snmp's callbacks (snmp_agent.cc)
  void run();                        // the agent thread
  // On the agent thread: a view no older than snapshot_max_age, or the last
  // one when the loop does not answer, or nullptr before any.
  std::shared_ptr<const MibView> view();
  // On the agent thread: a net-snmp message for the loop to log.
  void queue_message(bool warning, std::string message);
  // On the agent thread: `w` checked or applied by the loop; nullopt when the
  // loop did not take it within write_timeout.
  std::optional<SnmpWriteResult> write(SnmpWrite w);
  // On the agent thread: sends the queued notifications.
  void send_notifications();
  // On the loop's thread: the eventfd is readable.
  void on_wake();

  EventLoop& loop_;
  SnmpAgentOptions options_;
  Snapshot snapshot_;
  Log log_;
  Writer writer_;
  UniqueFd wake_;  // eventfd: the agent thread -> the loop
  UniqueFd stop_;  // eventfd: the loop -> the agent thread (stop, or notifications queued)
  std::thread thread_;

  // The agent thread's own.
  std::shared_ptr<const MibView> view_;
  std::chrono::steady_clock::time_point view_made_{};
  SnmpWrite undo_;  // what the last committed write replaced, until the SET ends

  // Shared by the two threads.
  std::mutex mu_;
  std::condition_variable answered_cv_;
  std::uint64_t asked_ = 0;
  std::uint64_t answered_ = 0;
  nlohmann::json document_;
  std::deque<std::pair<bool, std::string>> messages_;
  std::uint64_t messages_dropped_ = 0;
  bool closing_ = false;
  std::optional<SnmpWrite> write_;              // posted, not yet taken by the loop
  std::optional<SnmpWriteResult> write_result_; // the loop's answer
  std::deque<SnmpNotification> notifications_;
  SnmpAgentStats stats_;
};

}  // namespace buckwild::daemon::snmp
