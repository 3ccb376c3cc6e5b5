#include "daemon/snmp/snmp_agent.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <optional>
#include <string>
#include <utility>
#include <variant>

// net-snmp's headers define macros (MAX, MIN, U64, DEBUGMSG…) that clash with
// C++ code: they are included here only, last.
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <net-snmp/agent/net-snmp-agent-includes.h>
#include <net-snmp/library/large_fd_set.h>

#include "daemon/snmp/mib_oids.h"
#include "daemon/snmp/snmp_varbinds.h"

namespace buckwild::daemon::snmp {
namespace {

// The name net-snmp knows this application by (its config and log prefix).
constexpr const char* kAppName = "buckwild";

// At most one agent per process: net-snmp's state is global.
std::atomic<bool> g_running{false};
// The agent whose thread net-snmp's callbacks run on.
SnmpAgent* g_agent = nullptr;

// snmpTrapOID.0 (SNMPv2-MIB), the first object of every notification.
constexpr oid kSnmpTrapOid[] = {1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0};

}  // namespace

struct SnmpAgentCallbacks {
  // The SET's varbinds as one write; false (and the error set on the
  // varbind) when one is refused.
  static bool collect(const MibView* view, netsnmp_agent_request_info* info,
                      netsnmp_request_info* requests, SnmpWrite& w) {
    Oid scratch;
    std::vector<Oid> seen;
    for (netsnmp_request_info* r = requests; r != nullptr; r = r->next) {
      netsnmp_variable_list* vb = r->requestvb;
      auto name = oid_span(vb->name, vb->name_length, scratch);
      auto target = classify(view, vb, name);
      // The same object twice in one SET: which value stands (and what an
      // undo puts back) would be ambiguous.
      if (std::holds_alternative<WriteTarget>(target) && std::ranges::find(seen, scratch) != seen.end()) {
        target = SNMP_ERR_INCONSISTENTVALUE;
      }
      seen.push_back(scratch);
      if (const int* error = std::get_if<int>(&target)) {
        netsnmp_set_request_error(info, r, *error);
        return false;
      }
      const WriteTarget& t = std::get<WriteTarget>(target);
      switch (t.what) {
        case WriteTarget::What::kLogLevel:
          w.settings.emplace_back("logging.level",
                                  std::string(kLogLevelNames[static_cast<std::size_t>(t.value - 1)]));
          break;
        case WriteTarget::What::kDiscoveryRateLimit:
          w.settings.emplace_back("security.discovery_work_per_second", std::to_string(t.value));
          break;
        case WriteTarget::What::kAdminState:
          w.admin.emplace_back(t.peer, t.value == 1);
          break;
      }
    }
    return true;
  }

  // A SET, in net-snmp's phases (the master's TestSet is RESERVE1 and
  // RESERVE2, CommitSet ACTION, UndoSet UNDO, CleanupSet COMMIT and FREE).
  static void on_set(SnmpAgent& self, const MibView* view, netsnmp_agent_request_info* info,
                     netsnmp_request_info* requests) {
    SnmpWrite w;
    switch (info->mode) {
      case MODE_SET_RESERVE1:
        self.undo_ = {};  // a SET the master never cleaned up must not be undone by this one
        collect(view, info, requests, w);
        return;
      case MODE_SET_RESERVE2: {
        if (!collect(view, info, requests, w)) return;
        w.check_only = true;
        std::optional<SnmpWriteResult> checked = self.write(std::move(w));
        if (!checked) {
          netsnmp_set_request_error(info, requests, SNMP_ERR_GENERR);
        } else if (!checked->ok) {
          netsnmp_set_request_error(info, requests, SNMP_ERR_WRONGVALUE);
        }
        return;
      }
      case MODE_SET_ACTION: {
        self.undo_ = {};
        if (!collect(view, info, requests, w)) return;
        std::optional<SnmpWriteResult> applied = self.write(std::move(w));
        if (!applied || !applied->ok) {
          netsnmp_set_request_error(info, requests, SNMP_ERR_COMMITFAILED);
          return;
        }
        self.undo_ = std::move(applied->previous);
        self.view_made_ = {};  // the next GET reads the new values
        return;
      }
      case MODE_SET_UNDO: {
        SnmpWrite undo = std::exchange(self.undo_, {});
        if (undo.settings.empty() && undo.admin.empty()) return;
        undo.undo = true;
        self.view_made_ = {};
        std::optional<SnmpWriteResult> undone = self.write(std::move(undo));
        if (!undone || !undone->ok) netsnmp_set_request_error(info, requests, SNMP_ERR_UNDOFAILED);
        return;
      }
      default:  // COMMIT and FREE: the write stands
        self.undo_ = {};
        return;
    }
  }

  // Every GET and GETNEXT under the module's root, on the agent thread.
  static int on_request(netsnmp_mib_handler* /*handler*/, netsnmp_handler_registration* /*reg*/,
                        netsnmp_agent_request_info* info, netsnmp_request_info* requests) {
    if (g_agent == nullptr) return SNMP_ERR_GENERR;
    // A SET's later phases use the view its TestSet checked: no waiting on
    // the loop inside the master's CommitSet, UndoSet or CleanupSet.
    const bool later_set_phase = info->mode == MODE_SET_RESERVE2 || info->mode == MODE_SET_ACTION ||
                                 info->mode == MODE_SET_COMMIT || info->mode == MODE_SET_FREE ||
                                 info->mode == MODE_SET_UNDO;
    std::shared_ptr<const MibView> view = later_set_phase ? g_agent->view_ : g_agent->view();
    Oid scratch;
    for (netsnmp_request_info* r = requests; r != nullptr; r = r->next) {
      if (r->processed != 0) continue;
      netsnmp_variable_list* vb = r->requestvb;
      if (!view) {
        netsnmp_set_request_error(info, r, SNMP_ERR_GENERR);
        continue;
      }
      auto asked = oid_span(vb->name, vb->name_length, scratch);
      switch (info->mode) {
        case MODE_SET_RESERVE1:
        case MODE_SET_RESERVE2:
        case MODE_SET_ACTION:
        case MODE_SET_COMMIT:
        case MODE_SET_FREE:
        case MODE_SET_UNDO:
          // Every varbind of the SET at once, then done.
          on_set(*g_agent, view.get(), info, r);
          return SNMP_ERR_NOERROR;
        case MODE_GET:
          if (const MibValue* v = view->get(asked)) {
            set_value(vb, *v);
          } else {
            netsnmp_set_request_error(info, r, SNMP_NOSUCHINSTANCE);
          }
          break;
        case MODE_GETNEXT:
          // Past our last object: left unanswered, so the master asks the
          // next subtree.
          if (const auto* next = view->next(asked)) {
            std::vector<oid> name(next->first.begin(), next->first.end());
            snmp_set_var_objid(vb, name.data(), name.size());
            set_value(vb, next->second);
          }
          break;
        default:
          netsnmp_set_request_error(info, r, SNMP_ERR_GENERR);
          break;
      }
    }
    return SNMP_ERR_NOERROR;
  }

  // net-snmp's log lines (snmp_enable_calllog), on the agent thread.
  static int on_log(int /*major*/, int /*minor*/, void* server_arg, void* /*client_arg*/) {
    const auto* m = static_cast<const snmp_log_message*>(server_arg);
    SnmpAgent* self = g_agent;
    if (m == nullptr || m->msg == nullptr || self == nullptr) return 0;
    std::string text(m->msg);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    // init_snmp looks for net-snmp's default list of MIB modules even with
    // no MIB directory; a subagent serves OIDs and needs none of them.
    if (text.starts_with("Cannot find module")) return 0;
    if (text.size() > 300) text.resize(300);
    if (!text.empty()) self->queue_message(m->priority <= LOG_WARNING, "snmp: " + std::move(text));
    return 0;
  }
};

SysResult<std::unique_ptr<SnmpAgent>> SnmpAgent::start(EventLoop& loop, SnmpAgentOptions options,
                                                       Snapshot snapshot, Log log, Writer writer) {
  if (g_running.exchange(true)) return sys_fail_plain(0, "snmp: a subagent is running already");
  auto release = [](bool ok) {
    if (!ok) g_running = false;
  };
  UniqueFd wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  UniqueFd stop(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake || !stop) {
    const int e = errno;
    release(false);
    return sys_fail(e, "snmp: cannot create an eventfd");
  }
  std::unique_ptr<SnmpAgent> agent(new SnmpAgent(loop, std::move(options), std::move(snapshot),
                                                 std::move(log), std::move(writer), std::move(wake),
                                                 std::move(stop)));
  SnmpAgent* self = agent.get();
  if (auto w = loop.watch_fd(self->wake_.get(), kReadable, [self](std::uint32_t) { self->on_wake(); });
      !w) {
    release(false);
    return std::unexpected(w.error());
  }
  // The thread starts with every signal blocked, so none is delivered there
  // instead of to the loop's signalfd.
  sigset_t all;
  sigset_t previous;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &previous);
  try {
    self->thread_ = std::thread([self] { self->run(); });
  } catch (const std::system_error& e) {
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    loop.unwatch_fd(self->wake_.get());
    release(false);
    return sys_fail(e.code().value(), "snmp: cannot start the agent thread");
  }
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return agent;
}

SnmpAgent::SnmpAgent(EventLoop& loop, SnmpAgentOptions options, Snapshot snapshot, Log log,
                     Writer writer, UniqueFd wake, UniqueFd stop)
    : loop_(loop),
      options_(std::move(options)),
      snapshot_(std::move(snapshot)),
      log_(std::move(log)),
      writer_(std::move(writer)),
      wake_(std::move(wake)),
      stop_(std::move(stop)) {}

SnmpAgent::~SnmpAgent() {
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  answered_cv_.notify_all();
  const std::uint64_t one = 1;
  static_cast<void>(::write(stop_.get(), &one, sizeof one));
  if (thread_.joinable()) thread_.join();
  loop_.unwatch_fd(wake_.get());
  on_wake();  // the last messages
  g_running = false;
}

void SnmpAgent::run() {
  g_agent = this;
  // Configured before init_agent: a subagent, no configuration files or
  // persistent state of net-snmp's own, no SIGALRM (the daemon's signals are
  // the loop's), short AgentX timeouts, and a ping that notices a restarted
  // master and reconnects.
  snmp_enable_calllog();
  // No client argument: snmp_shutdown() free()s the ones it finds.
  snmp_register_callback(SNMP_CALLBACK_LIBRARY, SNMP_CALLBACK_LOGGING, &SnmpAgentCallbacks::on_log,
                         nullptr);
  netsnmp_ds_set_boolean(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_ROLE, 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_NO_ROOT_ACCESS, 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_PERSIST_STATE, 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_ALARM_DONT_USE_SIG, 1);
  // A subagent needs no MIB files (it serves OIDs): none are read, and the
  // missing ones are not reported.
  netsnmp_set_mib_directory("");
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_MIB_ERRORS, 0);
  netsnmp_ds_set_int(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_MIB_WARNINGS, 0);
  init_agent(kAppName);
  // After init_agent, which sets its own default ping interval (15 s).
  netsnmp_ds_set_string(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_X_SOCKET,
                        options_.agentx_socket.c_str());
  netsnmp_ds_set_int(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_AGENTX_PING_INTERVAL,
                     options_.ping_interval_seconds);
  // In microseconds, as agentxTimeout is stored.
  netsnmp_ds_set_int(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_AGENTX_TIMEOUT,
                     static_cast<int>(options_.agentx_timeout));
  netsnmp_ds_set_int(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_AGENTX_RETRIES, 0);

  std::vector<oid> root(std::begin(kBuckwildEnterpriseOid), std::end(kBuckwildEnterpriseOid));
  netsnmp_handler_registration* reg = netsnmp_create_handler_registration(
      "buckwild", &SnmpAgentCallbacks::on_request, root.data(), root.size(), HANDLER_CAN_RWRITE);
  if (reg == nullptr || netsnmp_register_handler(reg) != MIB_REGISTERED_OK) {
    queue_message(true, "snmp: cannot register BUCKWILD-MIB with the agent library");
  }
  // Connects to the master (or schedules the retry, through the ping).
  init_snmp(kAppName);

  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (closing_) break;
    }
    int numfds = 0;
    netsnmp_large_fd_set fds;
    netsnmp_large_fd_set_init(&fds, FD_SETSIZE);
    timeval timeout{1, 0};
    int block = 0;
    snmp_select_info2(&numfds, &fds, &timeout, &block);
    // Our stop eventfd too, and never more than a second without looking.
    netsnmp_large_fd_setfd(stop_.get(), &fds);
    numfds = std::max(numfds, stop_.get() + 1);
    if (block != 0 || timeout.tv_sec > 1) timeout = timeval{1, 0};
    const int count = netsnmp_large_fd_set_select(numfds, &fds, nullptr, nullptr, &timeout);
    if (count > 0) {
      if (netsnmp_large_fd_is_set(stop_.get(), &fds)) {
        std::uint64_t ignored = 0;
        static_cast<void>(::read(stop_.get(), &ignored, sizeof ignored));
        bool closing = false;
        {
          std::lock_guard lock(mu_);
          closing = closing_;
        }
        if (closing) {
          netsnmp_large_fd_set_cleanup(&fds);
          break;
        }
        send_notifications();
      }
      snmp_read2(&fds);
    } else if (count == 0) {
      snmp_timeout();
    }
    netsnmp_large_fd_set_cleanup(&fds);
    run_alarms();
    netsnmp_check_outstanding_agent_requests();
  }
  // As snmpd ends. Its messages until here are still queued for the loop.
  snmp_shutdown(kAppName);
  shutdown_agent();
  g_agent = nullptr;
}

std::shared_ptr<const MibView> SnmpAgent::view() {
  const auto now = std::chrono::steady_clock::now();
  if (view_ && now - view_made_ < std::chrono::microseconds(options_.snapshot_max_age)) return view_;
  std::unique_lock lock(mu_);
  if (closing_) return view_;
  const std::uint64_t ticket = ++asked_;
  lock.unlock();
  const std::uint64_t one = 1;
  // Cannot block (EFD_NONBLOCK) and cannot fill up; the loop drains it.
  static_cast<void>(::write(wake_.get(), &one, sizeof one));
  lock.lock();
  answered_cv_.wait_for(lock, std::chrono::microseconds(options_.snapshot_timeout),
                        [&] { return answered_ >= ticket || closing_; });
  if (closing_ || answered_ < ticket) return view_;  // the last one, or none
  nlohmann::json doc = std::exchange(document_, {});
  lock.unlock();
  // Built here, not on the loop's thread.
  view_ = std::make_shared<const MibView>(MibView::from_status(doc));
  view_made_ = std::chrono::steady_clock::now();
  return view_;
}

std::optional<SnmpWriteResult> SnmpAgent::write(SnmpWrite w) {
  std::unique_lock lock(mu_);
  if (closing_) return std::nullopt;
  write_ = std::move(w);
  write_result_.reset();
  lock.unlock();
  const std::uint64_t one = 1;
  static_cast<void>(::write(wake_.get(), &one, sizeof one));
  lock.lock();
  answered_cv_.wait_for(lock, std::chrono::microseconds(options_.write_timeout),
                        [&] { return write_result_.has_value() || closing_; });
  if (!write_result_ && write_) {
    // The loop never took it: withdrawn, so it is never applied.
    write_.reset();
    return std::nullopt;
  }
  // Taken: the loop is applying it now and answers without waiting.
  answered_cv_.wait(lock, [&] { return write_result_.has_value() || closing_; });
  return std::exchange(write_result_, std::nullopt);
}

void SnmpAgent::notify(SnmpNotification n) {
  {
    std::lock_guard lock(mu_);
    if (notifications_.size() >= options_.max_queued_notifications) {
      ++stats_.notifications_dropped;
      return;
    }
    notifications_.push_back(std::move(n));
  }
  const std::uint64_t one = 1;
  static_cast<void>(::write(stop_.get(), &one, sizeof one));
}

SnmpAgentStats SnmpAgent::stats() {
  std::lock_guard lock(mu_);
  return stats_;
}

void SnmpAgent::send_notifications() {
  std::deque<SnmpNotification> queued;
  {
    std::lock_guard lock(mu_);
    queued.swap(notifications_);
  }
  for (const SnmpNotification& n : queued) {
    netsnmp_variable_list* vars = nullptr;
    Oid trap(std::begin(kBuckwildEnterpriseOid), std::end(kBuckwildEnterpriseOid));
    trap.push_back(kNotifications);
    trap.push_back(static_cast<std::uint32_t>(n.kind));
    std::vector<oid> trap_arcs(trap.begin(), trap.end());
    snmp_varlist_add_variable(&vars, kSnmpTrapOid, std::size(kSnmpTrapOid), ASN_OBJECT_ID,
                              trap_arcs.data(), trap_arcs.size() * sizeof(oid));
    auto column = [&](PeerColumn c) { return peer_cell_oid(static_cast<std::uint32_t>(c), n.peer); };
    auto info = [](NotifyInfo i) {
      Oid o = scalar_oid(kNotifyInfo, static_cast<std::uint32_t>(i));
      return o;
    };
    const Integer32 state{n.established ? 2 : 1};
    switch (n.kind) {
      case Notification::kSessionUp: {
        add_varbind(&vars, column(PeerColumn::kState), state);
        add_varbind(&vars, column(PeerColumn::kSessionId), OctetString{n.session_id});
        std::int32_t type = 0;
        std::string address;
        std::uint32_t port = 0;
        if (n.endpoint) {
          type = n.endpoint->ip.is_v4() ? 1 : 2;
          const auto bytes = n.endpoint->ip.bytes();
          address.assign(bytes.begin(), bytes.end());
          port = n.endpoint->port;
        }
        add_varbind(&vars, column(PeerColumn::kEndpointType), Integer32{type});
        add_varbind(&vars, column(PeerColumn::kEndpoint), OctetString{std::move(address)});
        add_varbind(&vars, column(PeerColumn::kEndpointPort), Gauge32{port});
        break;
      }
      case Notification::kSessionDown:
        add_varbind(&vars, column(PeerColumn::kState), state);
        add_varbind(&vars, column(PeerColumn::kSessionId), OctetString{n.session_id});
        add_varbind(&vars, info(NotifyInfo::kReason), OctetString{n.reason.substr(0, 255)});
        break;
      case Notification::kRecoveryFailed:
        add_varbind(&vars, column(PeerColumn::kState), state);
        add_varbind(&vars, info(NotifyInfo::kReason), OctetString{n.reason.substr(0, 255)});
        break;
      case Notification::kAttackDetected:
        add_varbind(&vars, info(NotifyInfo::kAttackKind), Integer32{n.attack_kind});
        add_varbind(&vars, info(NotifyInfo::kRate), Gauge32{n.rate});
        add_varbind(&vars, info(NotifyInfo::kThreshold), Gauge32{n.threshold});
        break;
    }
    send_v2trap(vars);
    snmp_free_varbind(vars);
    std::lock_guard lock(mu_);
    ++stats_.notifications_sent;
  }
}

void SnmpAgent::queue_message(bool warning, std::string message) {
  {
    std::lock_guard lock(mu_);
    if (messages_.size() >= options_.max_queued_messages) {
      ++messages_dropped_;
      return;
    }
    messages_.emplace_back(warning, std::move(message));
  }
  const std::uint64_t one = 1;
  static_cast<void>(::write(wake_.get(), &one, sizeof one));
}

void SnmpAgent::on_wake() {
  std::uint64_t count = 0;
  static_cast<void>(::read(wake_.get(), &count, sizeof count));
  std::deque<std::pair<bool, std::string>> messages;
  std::uint64_t dropped = 0;
  std::uint64_t ticket = 0;
  std::optional<SnmpWrite> write;
  {
    std::lock_guard lock(mu_);
    messages.swap(messages_);
    dropped = std::exchange(messages_dropped_, 0);
    if (!closing_ && answered_ < asked_) ticket = asked_;
    if (!closing_) write = std::exchange(write_, std::nullopt);
  }
  for (const auto& [warning, text] : messages) log_(warning, text);
  if (write) {
    SnmpWriteResult result = writer_(*write);
    {
      std::lock_guard lock(mu_);
      if (!result.ok) {
        ++stats_.writes_refused;
      } else if (!write->check_only && !write->undo) {
        ++stats_.writes_applied;
      }
      write_result_ = std::move(result);
    }
    answered_cv_.notify_all();
  }
  if (dropped != 0) log_(true, "snmp: " + std::to_string(dropped) + " messages of net-snmp's dropped");
  if (ticket == 0) return;
  // Outside the lock: the agent thread only ever waits on it.
  nlohmann::json doc = snapshot_();
  {
    std::lock_guard lock(mu_);
    document_ = std::move(doc);
    answered_ = ticket;
  }
  answered_cv_.notify_all();
}

}  // namespace buckwild::daemon::snmp
