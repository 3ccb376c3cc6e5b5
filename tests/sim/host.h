// A simulated host: one session's ConnectionTable driven the way the daemon
// will drive it, attached to an outgoing link and fed by an incoming one.
//
// Packets cross the links as encoded datagrams (wire::encode_packet, a zero
// tag, no sealing) and are parsed again with wire::decode_packet, so sizes and
// codecs are real. After every arrival or timer the host runs its
// applications, then polls every connection for packets round-robin until
// none has anything to send, then hands out events, then re-arms its timer at
// the earliest next_expiry().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/conn/connection_table.h"
#include "core/crypto/random.h"
#include "sim/link.h"
#include "sim/simulator.h"
#include "sim/traffic.h"

namespace buckwild::sim {

struct HostStats {
  std::uint64_t datagrams_sent = 0;
  std::uint64_t datagrams_received = 0;
  std::uint64_t decode_errors = 0;
  std::uint64_t invariant_failures = 0;
  std::uint64_t timer_spins = 0;  // re-arms at or before now (should stay ~0)
};

class Host {
 public:
  using AppFactory = std::function<std::unique_ptr<App>(std::uint16_t id)>;

  Host(Simulator& sim, std::string name, bool session_initiator,
       const conn::ConnectionConfig& config, std::uint64_t seed);

  void set_output(Link* link) { out_ = link; }
  // Applications for connections the peer opens.
  void set_accept(AppFactory factory) { accept_ = std::move(factory); }
  // Check every connection's invariants after each step (slow; small tests).
  void set_check_invariants(bool on) { check_ = on; }
  // Drop everything arriving (the host vanished).
  void set_silent(bool on) { silent_ = on; }

  // Opens a connection run by `app`; returns its id (0 on failure).
  std::uint16_t open(std::unique_ptr<App> app);
  // Opens with a given id (both sides may do this: simultaneous open).
  std::uint16_t open_with_id(std::uint16_t id, std::unique_ptr<App> app);

  // A datagram arrived from the incoming link.
  void receive(std::vector<std::uint8_t> datagram);
  // Runs applications, transmits, delivers events and re-arms the timer.
  void service();

  conn::ConnectionTable& table() { return table_; }
  conn::Connection* connection(std::uint16_t id) { return table_.find(id); }
  App* app(std::uint16_t id);
  template <typename T>
  T* app_as(std::uint16_t id) {
    return dynamic_cast<T*>(app(id));
  }
  const HostStats& stats() const { return stats_; }
  const std::string& name() const { return name_; }

 private:
  void transmit(const wire::Header& h, Bytes body);
  void on_timer(std::uint64_t generation);
  void arm_timer();

  Simulator& sim_;
  std::string name_;
  crypto::DeterministicRandom rng_;
  conn::ConnectionTable table_;
  std::map<std::uint16_t, std::unique_ptr<App>> apps_;
  // Connections opened with an explicit id (outside the table).
  std::map<std::uint16_t, std::unique_ptr<conn::Connection>> manual_;
  conn::ConnectionConfig config_;
  AppFactory accept_;
  Link* out_ = nullptr;
  bool check_ = false;
  bool silent_ = false;
  bool in_service_ = false;
  TimePoint wake_at_ = kNever;
  TimePoint last_timer_at_ = kNever;
  std::uint64_t wake_generation_ = 0;
  std::vector<std::uint8_t> body_;
  HostStats stats_;
};

}  // namespace buckwild::sim
