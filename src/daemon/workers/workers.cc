#include "daemon/workers/workers.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>

#include <algorithm>
#include <future>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

namespace buckwild::daemon {

std::uint32_t wanted_workers(const Config& config) {
  if (config.network.workers) return *config.network.workers;
  cpu_set_t set;
  CPU_ZERO(&set);
  const int cpus = ::sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
  return static_cast<std::uint32_t>(std::clamp(cpus, 1, 64));
}

struct Workers::Worker {
  std::unique_ptr<LinuxTunDevice> queue;  // workers 1..: their queue of the device
  std::unique_ptr<EpollEventLoop> loop;   // workers 1..: their own
  std::unique_ptr<Mailbox> mailbox;       // workers 1..: posts to this worker
  std::unique_ptr<KernelTcpEndpoints> tcp;
  std::unique_ptr<SecurityAudit> audit;
  std::unique_ptr<Tunnel> tunnel;
  std::thread thread;
};

Workers::Workers(WorkerEnvironment env) : env_(std::move(env)) {}

TunnelDeps Workers::deps_for(Worker& w, std::uint32_t index, std::uint32_t count) {
  EventLoop& loop = index == 0 ? *env_.main_loop : *w.loop;
  TunDevice& tun = index == 0 ? *first_tun_ : *w.queue;
  TcpEndpoints& tcp = index == 0 ? *env_.tcp : *w.tcp;
  TunnelDeps deps{loop,    *env_.clock, tun, env_.bind_socket, tcp, *env_.rng,
                  env_.ebpf != nullptr ? &env_.ebpf->worker(index) : nullptr,
                  {},      nullptr,     {},  256,              0,   1,         nullptr,
                  {}};
  deps.worker = index;
  deps.workers = count;
  if (count > 1) {
    deps.claims = &claims_;
    deps.post_to_worker = [this](std::uint32_t to, std::function<void(Tunnel&)> work) {
      post_to(to, std::move(work));
    };
  }
  if (index == 0) {
    deps.audit = env_.audit;
    deps.on_event = env_.on_event;
    deps.on_fatal = env_.on_fatal;
    return deps;
  }
  // Everything a worker tells the main thread goes through its mailbox.
  Mailbox* main = main_mailbox_.get();
  w.audit = std::make_unique<SecurityAudit>(
      loop,
      [this, main](std::string event, nlohmann::json fields) {
        main->post([this, event = std::move(event), fields = std::move(fields)]() mutable {
          if (env_.audit != nullptr) env_.audit->write_line(event, std::move(fields));
        });
      },
      [this] { return audit_enabled_.load(std::memory_order_relaxed); });
  deps.audit = w.audit.get();
  deps.on_event = [this, main](const TunnelEvent& e) {
    main->post([this, e] {
      if (env_.on_event) env_.on_event(e);
    });
  };
  deps.on_fatal = [this, main](const SysError& error) {
    main->post([this, error] {
      if (env_.on_fatal) env_.on_fatal(error);
    });
  };
  return deps;
}

void Workers::post_to(std::uint32_t index, std::function<void(Tunnel&)> work) {
  if (index >= workers_.size()) return;
  Worker* w = workers_[index].get();
  Mailbox* box = index == 0 ? main_mailbox_.get() : w->mailbox.get();
  box->post([w, work = std::move(work)] {
    if (w->tunnel) work(*w->tunnel);
  });
}

SysResult<std::unique_ptr<Workers>> Workers::start(LinuxTunDevice& tun, std::uint32_t count,
                                                   WorkerEnvironment env) {
  std::unique_ptr<Workers> ws(new Workers(std::move(env)));
  ws->first_tun_ = &tun;
  auto main_box = Mailbox::create(*ws->env_.main_loop);
  if (!main_box) return std::unexpected(main_box.error());
  ws->main_mailbox_ = std::move(*main_box);
  // Every worker's loop, mailbox and queue first: a tunnel may post to
  // another worker as soon as it runs.
  for (std::uint32_t i = 0; i < count; ++i) {
    auto w = std::make_unique<Worker>();
    if (i > 0) {
      auto q = tun.attach_queue();
      if (!q) return sys_fail_plain(q.error().sys_errno, "worker " + std::to_string(i) + ": " + q.error().message);
      w->queue = std::move(*q);
      auto loop = EpollEventLoop::create();
      if (!loop) return std::unexpected(loop.error());
      w->loop = std::move(*loop);
      auto box = Mailbox::create(*w->loop);
      if (!box) return std::unexpected(box.error());
      w->mailbox = std::move(*box);
      w->tcp = std::make_unique<KernelTcpEndpoints>();
    }
    ws->workers_.push_back(std::move(w));
  }
  if (count > 1) {
    // The workers' discovery sockets share the port (SO_REUSEPORT), which
    // another process of ours could then share too: a plain bind first says
    // whether anything holds it now (another buckwild with this configuration).
    const Config& c = *ws->env_.config;
    auto probe = UdpSocket::bind({.bind_address = SocketAddress{c.network.listen_address, c.network.discovery_port},
                                  .receive_buffer_bytes = 0, .send_buffer_bytes = 0});
    if (!probe) return std::unexpected(probe.error());
    probe->reset();
    if (auto r = tun.set_steering(ws->env_.ebpf->tun_steering_program()); !r) return std::unexpected(r.error());
  }
  // The tunnels, made here while no worker loop runs yet; each then runs on
  // its thread until stopped, and is destroyed here after the thread ends.
  for (std::uint32_t i = 0; i < count; ++i) {
    Worker& w = *ws->workers_[i];
    auto t = Tunnel::create(*ws->env_.config, ws->env_.mtu, ws->deps_for(w, i, count));
    if (!t) {
      if (count == 1) return std::unexpected(t.error());
      return sys_fail_plain(t.error().sys_errno, "worker " + std::to_string(i) + ": " + t.error().message);
    }
    w.tunnel = std::move(*t);
  }
  for (std::uint32_t i = 1; i < count; ++i) {
    Worker& w = *ws->workers_[i];
    w.thread = std::thread([&w, i] {
      // Signals are the main thread's (its loop's signalfd); a worker never
      // takes one. Timers as precise as the main loop's (event_loop.h).
      sigset_t all;
      sigfillset(&all);
      pthread_sigmask(SIG_BLOCK, &all, nullptr);
      ::prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
      const std::string name = "buckwild-w" + std::to_string(i);
      pthread_setname_np(pthread_self(), name.c_str());
      if (auto r = w.loop->run(); !r) spdlog::error("worker {}: event loop failed: {}", i, r.error().message);
    });
  }
  if (count > 1) {
    spdlog::info("workers: {} (worker 0 on the main thread, 1..{} on their own), each with its own "
                 "TUN queue and sockets; the eBPF path steers each datagram to its session's worker",
                 count, count - 1);
  }
  return ws;
}

Workers::~Workers() {
  for (std::size_t i = 1; i < workers_.size(); ++i) {
    Worker& w = *workers_[i];
    if (!w.thread.joinable()) continue;
    EpollEventLoop* loop = w.loop.get();
    w.mailbox->post([loop] { loop->stop(); });
    w.thread.join();
  }
  // The tunnels before what they use; each on a loop no longer running.
  for (auto& w : workers_) {
    w->tunnel.reset();
    w->audit.reset();
    if (w->mailbox) w->mailbox->close();
    w->mailbox.reset();
  }
  if (main_mailbox_) main_mailbox_->close();
}

void Workers::for_each(const std::function<void(Tunnel&, std::uint32_t)>& fn) {
  fn(*workers_[0]->tunnel, 0);
  for (std::uint32_t i = 1; i < workers_.size(); ++i) {
    Worker& w = *workers_[i];
    w.mailbox->call([&] { fn(*w.tunnel, i); });
  }
}

namespace {

using nlohmann::json;

// Adds `from` into `into`: numbers summed, objects merged key by key, the
// rest (text, flags, lists) kept as `into` has them.
void add_counters(json& into, const json& from) {
  if (into.is_object() && from.is_object()) {
    for (const auto& [k, v] : from.items()) {
      if (!into.contains(k)) {
        into[k] = v;
      } else {
        add_counters(into[k], v);
      }
    }
  } else if (into.is_number_unsigned() && from.is_number_unsigned()) {
    into = into.get<std::uint64_t>() + from.get<std::uint64_t>();
  } else if (into.is_number_integer() && from.is_number_integer()) {
    into = into.get<std::int64_t>() + from.get<std::int64_t>();
  }
}

}  // namespace

json Workers::status() {
  std::vector<json> docs(workers_.size());
  for_each([&](Tunnel& t, std::uint32_t i) { docs[i] = t.status(); });
  if (docs.size() == 1) return docs[0];
  json out = docs[0];
  // The same for every worker: kept as worker 0 says.
  const std::set<std::string> same = {"listen", "window", "peers", "listening_ports"};
  for (std::size_t i = 1; i < docs.size(); ++i) {
    for (const auto& [k, v] : docs[i].items()) {
      if (same.contains(k)) continue;
      if (!out.contains(k)) {
        out[k] = v;
      } else {
        add_counters(out[k], v);
      }
    }
  }
  // A configured peer as the worker holding its session reports it, else
  // as the worker that looks for it; a peer without an entry once for each
  // session.
  const std::size_t n = docs.size();
  json peers = json::array();
  std::set<std::uint16_t> ports;
  for (std::size_t i = 0; i < n; ++i) {
    for (const json& p : docs[i]["listening_ports"]) ports.insert(p.get<std::uint16_t>());
  }
  const json& listed = docs[0]["peers"];
  std::size_t configured = 0;
  for (const json& p : listed) {
    if (!p.value("configured", false)) continue;
    std::size_t from = configured % n;
    for (std::size_t i = 0; i < n; ++i) {
      for (const json& q : docs[i]["peers"]) {
        if (q.value("configured", false) && q["name"] == p["name"] && !q["session"].is_null()) from = i;
      }
    }
    for (const json& q : docs[from]["peers"]) {
      if (q.value("configured", false) && q["name"] == p["name"]) {
        json e = q;
        e["worker"] = from;
        peers.push_back(std::move(e));
      }
    }
    ++configured;
  }
  for (std::size_t i = 0; i < n; ++i) {
    for (const json& q : docs[i]["peers"]) {
      if (q.value("configured", false)) continue;
      json e = q;
      e["worker"] = i;
      peers.push_back(std::move(e));
    }
  }
  out["peers"] = std::move(peers);
  out["listening_ports"] = json(std::vector<std::uint16_t>(ports.begin(), ports.end()));
  return out;
}

SysResult<ReloadSummary> Workers::reconfigure(const Config& next) {
  // Worker 0 first: what it refuses (a key that cannot change, the eBPF
  // path's limits) every worker would, and nothing has changed yet.
  auto first_done = workers_[0]->tunnel->reconfigure(next);
  if (!first_done) return first_done;
  ReloadSummary summary = std::move(*first_done);
  for (std::uint32_t i = 1; i < workers_.size(); ++i) {
    Worker& w = *workers_[i];
    auto done = w.mailbox->call([&] { return w.tunnel->reconfigure(next); });
    if (!done) {
      spdlog::error("worker {} refused the configuration worker 0 took: {}", i, done.error().message);
      continue;
    }
    summary.sessions_ended += done->sessions_ended;
  }
  return summary;
}

void Workers::on_clock_step(std::int64_t step_us) {
  for_each([&](Tunnel& t, std::uint32_t) { t.on_clock_step(step_us); });
}

json Workers::request_rekey(std::string_view who) {
  // The first worker holding the session answers; if none does, the refusal.
  json reply;
  bool found = false;
  for_each([&](Tunnel& t, std::uint32_t) {
    if (found) return;
    json r = t.request_rekey(who);
    found = r.value("ok", false);
    if (found || reply.is_null()) reply = std::move(r);
  });
  return reply;
}

std::optional<bool> Workers::admin_up(std::string_view name) {
  return workers_[0]->tunnel->admin_up(name);
}

bool Workers::set_admin_up(std::string_view name, bool up) {
  bool known = false;
  for_each([&](Tunnel& t, std::uint32_t) { known = t.set_admin_up(name, up) || known; });
  return known;
}

void Workers::end_sessions(const char* why) {
  for_each([&](Tunnel& t, std::uint32_t) { t.end_sessions(why); });
}

}  // namespace buckwild::daemon
