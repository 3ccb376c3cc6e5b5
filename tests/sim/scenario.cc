#include "sim/scenario.h"

#include <algorithm>
#include <sstream>

namespace buckwild::sim {

TwoHosts::TwoHosts(const PathConfig& config)
    : ab(sim, config.a_to_b, config.seed * 4 + 1),
      ba(sim, config.b_to_a, config.seed * 4 + 2),
      a(sim, "a", true, config.conn, config.seed * 4 + 3),
      b(sim, "b", false, config.conn, config.seed * 4 + 4) {
  a.set_output(&ab);
  b.set_output(&ba);
  ab.set_receiver([this](std::vector<std::uint8_t> d) { b.receive(std::move(d)); });
  ba.set_receiver([this](std::vector<std::uint8_t> d) { a.receive(std::move(d)); });
}

std::string TransferResult::describe() const {
  std::ostringstream s;
  s << "completed=" << completed << " a_exact=" << a_exact << " b_exact=" << b_exact
    << " t=" << static_cast<double>(finished_at) / 1e6 << "s retx=" << retransmissions
    << " rto=" << timeouts << " max_rto_run=" << max_consecutive_timeouts << " datagrams=" << datagrams << " decode_errors=" << decode_errors
    << " invariant_failures=" << invariant_failures << " spins=" << timer_spins;
  return s.str();
}

TransferResult run_transfer(const PathConfig& config, std::uint64_t bytes, Duration deadline,
                            bool check_invariants) {
  TwoHosts net(config);
  net.a.set_check_invariants(check_invariants);
  net.b.set_check_invariants(check_invariants);
  BulkAppConfig server;
  server.send_bytes = bytes;
  server.send_seed = 200 + config.seed;
  server.expect_bytes = bytes;
  server.expect_seed = 100 + config.seed;
  net.b.set_accept([&](std::uint16_t) { return std::make_unique<BulkApp>(server); });
  BulkAppConfig client;
  client.send_bytes = bytes;
  client.send_seed = 100 + config.seed;
  client.expect_bytes = bytes;
  client.expect_seed = 200 + config.seed;
  const std::uint16_t id = net.a.open(std::make_unique<BulkApp>(client));

  TransferResult r;
  auto* ca = net.a.app_as<BulkApp>(id);
  auto done = [&] {
    auto* cb = net.b.app_as<BulkApp>(id);
    return ca && cb && ca->closed() && cb->closed();
  };
  net.sim.run_until(done, net.sim.now() + deadline);
  auto* cb = net.b.app_as<BulkApp>(id);
  r.completed = done();
  r.a_exact = ca && ca->received_all() && ca->eof();
  r.b_exact = cb && cb->received_all() && cb->eof();
  if (ca && cb) r.finished_at = std::max(ca->finished_at(), cb->finished_at());
  for (Host* h : {&net.a, &net.b}) {
    r.datagrams += h->stats().datagrams_sent;
    r.decode_errors += h->stats().decode_errors;
    r.invariant_failures += h->stats().invariant_failures;
    r.timer_spins += h->stats().timer_spins;
  }
  for (BulkApp* app : {ca, cb}) {
    if (!app) continue;
    r.retransmissions += app->last_stats().sender.retransmissions;
    r.timeouts += app->last_stats().sender.timeouts;
    r.max_consecutive_timeouts =
        std::max<std::uint64_t>(r.max_consecutive_timeouts, app->last_stats().sender.max_consecutive_timeouts);
  }
  return r;
}

LinkConfig bottleneck(std::uint64_t mbps, Duration rtt, double queue_bdp) {
  LinkConfig l;
  l.delay = rtt / 2;
  l.bandwidth_bps = mbps * 1'000'000;
  const double bdp_bytes = static_cast<double>(l.bandwidth_bps) / 8 * static_cast<double>(rtt) / 1e6;
  l.queue_bytes = static_cast<std::size_t>(bdp_bytes * queue_bdp);
  return l;
}

}  // namespace buckwild::sim
