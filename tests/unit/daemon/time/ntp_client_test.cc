#include "daemon/time/ntp_client.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/crypto/random.h"
#include "core/ntp/ntp_packet.h"
#include "daemon/net/testing/fake_datagram_network.h"
#include "daemon/os/testing/manual_event_loop.h"

namespace buckwild::daemon {
namespace {

constexpr std::int64_t kTrueStartUs = 1'796'515'200'000'000;  // 2026-12-06T00:00:00Z
const IpAddress kClientHost = *IpAddress::parse("10.0.0.100");

// An NTP server on the fake network that answers from the true time plus its
// own error, or as told (silent, KoD, wrong origin).
struct FakeServer {
  enum class Mode { kHonest, kSilent, kDeny, kWrongOrigin };
  std::unique_ptr<FakeDatagramSocket> socket;
  std::int64_t error_us = 0;
  Mode mode = Mode::kHonest;
  int requests = 0;
};

class NtpClientTest : public ::testing::Test {
 protected:
  NtpClientTest()
      : loop_(seconds(1000)),
        clock_(false, 3000, 0,
               DisciplinedClock::Readers{
                   // This host's system clock is 3 s fast (testing.clock_offset_ms
                   // is applied by the clock on top of this true time).
                   [this] { return true_us() + system_step_us_; }, [this] { return loop_.now(); }}),
        rng_(7) {}

  std::int64_t true_us() const { return kTrueStartUs + (loop_.now() - seconds(1000)); }

  void add_server(const char* ip, std::int64_t error_us) {
    auto s = std::make_unique<FakeServer>();
    s->socket = std::move(*net_.bind(SocketAddress{*IpAddress::parse(ip), 123}));
    s->error_us = error_us;
    FakeServer* raw = s.get();
    (void)loop_.watch_fd(raw->socket->fd(), kReadable, [this, raw](std::uint32_t) { serve(*raw); });
    servers_.push_back(std::move(s));
    config_.servers.push_back(NtpServer{ip, 123});
  }

  void serve(FakeServer& s) {
    std::array<std::uint8_t, 128> buf{};
    ReceivedDatagram slot{MutableBytes(buf)};
    while (*s.socket->receive_batch(std::span(&slot, 1)) == 1) {
      ++s.requests;
      auto req = ntp::decode(Bytes(buf.data(), slot.length));
      if (!req || s.mode == FakeServer::Mode::kSilent) continue;
      std::array<std::uint8_t, ntp::kPacketSize> out{};
      ByteWriter w(out);
      const bool deny = s.mode == FakeServer::Mode::kDeny;
      w.u8(static_cast<std::uint8_t>(((deny ? 3 : 0) << 6) | (4 << 3) | ntp::kModeServer));
      w.u8(deny ? 0 : 2);
      w.u8(4);
      w.u8(0xec);
      w.u32(0x10);
      w.u32(0x10);
      w.u32(deny ? 0x44454e59u /* DENY */ : 0x0a000001u);
      const std::int64_t t = true_us() + s.error_us;
      w.u64(ntp::to_ntp(t - seconds(16)));
      w.u64(s.mode == FakeServer::Mode::kWrongOrigin ? req->transmit_ts + 1 : req->transmit_ts);
      w.u64(ntp::to_ntp(t));
      w.u64(ntp::to_ntp(t));
      const OutgoingDatagram d{Bytes(out), slot.source, std::nullopt};
      (void)s.socket->send_batch(std::span(&d, 1));
    }
  }

  void start() {
    client_ = std::make_unique<NtpClient>(
        config_, NtpClientDeps{loop_, clock_,
                               [this](const SocketAddress& at) -> SysResult<std::unique_ptr<DatagramSocket>> {
                                 auto s = net_.bind(at, kClientHost);
                                 if (!s) return std::unexpected(s.error());
                                 return std::unique_ptr<DatagramSocket>(std::move(*s));
                               },
                               rng_, nullptr});
    client_->start();
  }

  nlohmann::json server_status(std::size_t i) { return client_->status()["servers"][i]; }

  // Our time minus the true time, ms.
  double error_ms() const { return static_cast<double>(clock_.unix_us() - true_us()) / 1000.0; }

  void TearDown() override {
    client_.reset();
    for (auto& s : servers_) loop_.unwatch_fd(s->socket->fd());
    servers_.clear();
  }

  std::int64_t system_step_us_ = 0;  // someone stepped this host's system clock
  FakeDatagramNetwork net_;
  ManualEventLoop loop_;
  DisciplinedClock clock_;
  crypto::DeterministicRandom rng_;
  NtpConfig config_{.enabled = true, .servers = {}, .validation_timeout_ms = 1000, .drift_threshold_ms = 100};
  std::vector<std::unique_ptr<FakeServer>> servers_;
  std::unique_ptr<NtpClient> client_;
};

TEST_F(NtpClientTest, ConvergesToTheMajorityAndRejectsTheLiar) {
  add_server("10.0.0.1", 0);
  add_server("10.0.0.2", 300);  // honest, 0.3 ms apart
  add_server("10.0.0.3", 10'000'000);  // 10 s fast
  EXPECT_NEAR(error_ms(), 3000, 1);  // the system clock, before any answer
  start();
  ASSERT_TRUE(loop_.run_until([&] { return client_->synchronized(); }, loop_.now() + seconds(5)));
  EXPECT_NEAR(error_ms(), 0, 2);
  auto st = client_->status();
  EXPECT_EQ(st["source"], "ntp");
  EXPECT_EQ(server_status(0)["state"], "selected");
  EXPECT_EQ(server_status(1)["state"], "selected");
  EXPECT_EQ(server_status(2)["state"], "rejected");
  EXPECT_NEAR(st["system_clock_offset_ms"].get<double>(), 3000, 2);
  EXPECT_TRUE(st["drift_warning"].get<bool>());
  EXPECT_EQ(st["steps"], 1);
  // It stays there for ten minutes of polling, the liar never selected.
  loop_.run_for(seconds(600));
  EXPECT_NEAR(error_ms(), 0, 2);
  EXPECT_EQ(server_status(2)["state"], "rejected");
}

TEST_F(NtpClientTest, TheFirstAnswerIsNotAMajority) {
  add_server("10.0.0.3", 10'000'000);
  add_server("10.0.0.1", 0);
  add_server("10.0.0.2", 0);
  servers_[1]->mode = FakeServer::Mode::kSilent;
  servers_[2]->mode = FakeServer::Mode::kSilent;
  start();
  loop_.run_for(seconds(3));
  // Only the liar answers: it is one of three, not believed.
  EXPECT_FALSE(client_->synchronized());
  EXPECT_NEAR(error_ms(), 3000, 1);
}

TEST_F(NtpClientTest, PollingBacksOffWhenStableAndStopsHammeringTheDead) {
  add_server("10.0.0.1", 0);
  add_server("10.0.0.2", 0);
  add_server("10.0.0.3", 0);
  servers_[2]->mode = FakeServer::Mode::kSilent;
  start();
  loop_.run_for(seconds(3600));
  // Stable servers: 4 at 2 s, then four each at 8, 16, ... s: a few dozen in an hour.
  EXPECT_LE(servers_[0]->requests, 40);
  EXPECT_GE(server_status(0)["poll_s"].get<int>(), 256);
  // The dead one: unreachable after three misses, then every 64 s doubling.
  EXPECT_EQ(server_status(2)["state"], "unreachable");
  EXPECT_LE(servers_[2]->requests, 20);
  EXPECT_EQ(client_->status()["source"], "ntp");
}

TEST_F(NtpClientTest, KissOfDeathDenyStopsPollingThatServer) {
  add_server("10.0.0.1", 0);
  add_server("10.0.0.2", 0);
  add_server("10.0.0.3", 0);
  servers_[2]->mode = FakeServer::Mode::kDeny;
  start();
  loop_.run_for(seconds(600));
  EXPECT_EQ(servers_[2]->requests, 1);
  EXPECT_EQ(server_status(2)["state"], "denied");
  EXPECT_TRUE(client_->synchronized());
}

TEST_F(NtpClientTest, AnswersThatDoNotMatchOurRequestAreRefused) {
  add_server("10.0.0.1", 0);
  add_server("10.0.0.2", 5'000'000);
  servers_[0]->mode = FakeServer::Mode::kWrongOrigin;
  servers_[1]->mode = FakeServer::Mode::kWrongOrigin;
  start();
  loop_.run_for(seconds(30));
  EXPECT_FALSE(client_->synchronized());
  EXPECT_GE(server_status(0)["refused"].get<int>(), 3);
  EXPECT_EQ(server_status(0)["responses"], 0);
}

TEST_F(NtpClientTest, AllServersGoneMeansHoldover) {
  add_server("10.0.0.1", 0);
  add_server("10.0.0.2", 0);
  add_server("10.0.0.3", 0);
  start();
  loop_.run_for(seconds(60));
  ASSERT_EQ(client_->status()["source"], "ntp");
  for (auto& s : servers_) s->mode = FakeServer::Mode::kSilent;
  ASSERT_TRUE(loop_.run_until([&] { return client_->status()["source"] == "holdover"; },
                              loop_.now() + seconds(120)));
  // Our time keeps the last correction.
  EXPECT_NEAR(error_ms(), 0, 2);
  EXPECT_TRUE(client_->synchronized());
  EXPECT_FALSE(client_->selecting());
}

TEST_F(NtpClientTest, TheLastServerAnsweringIsNotAMajority) {
  add_server("10.0.0.1", 0);
  add_server("10.0.0.2", 0);
  add_server("10.0.0.3", 10'000'000);
  start();
  loop_.run_for(seconds(60));
  ASSERT_EQ(client_->status()["source"], "ntp");
  // The honest servers go silent; the liar keeps answering, alone.
  servers_[0]->mode = FakeServer::Mode::kSilent;
  servers_[1]->mode = FakeServer::Mode::kSilent;
  loop_.run_for(seconds(600));
  EXPECT_EQ(client_->status()["source"], "holdover");
  EXPECT_NEAR(error_ms(), 0, 2);
}

TEST_F(NtpClientTest, TheSystemClockIsFollowedUntilTheFirstSyncAndNotAfter) {
  add_server("10.0.0.1", 0);
  add_server("10.0.0.2", 0);
  for (auto& s : servers_) s->mode = FakeServer::Mode::kSilent;
  start();
  loop_.run_for(seconds(10));
  EXPECT_NEAR(error_ms(), 3000, 2);  // the system clock (3 s fast), no NTP yet
  system_step_us_ = 5'000'000;       // another daemon steps it
  EXPECT_NEAR(error_ms(), 8000, 2);  // still the system clock
  for (auto& s : servers_) s->mode = FakeServer::Mode::kHonest;
  ASSERT_TRUE(loop_.run_until([&] { return client_->synchronized(); }, loop_.now() + seconds(600)));
  loop_.run_for(seconds(30));
  EXPECT_NEAR(error_ms(), 0, 2);
  system_step_us_ = -20'000'000;  // stepped again: our time no longer moves with it
  loop_.run_for(seconds(1));
  EXPECT_NEAR(error_ms(), 0, 2);
}

TEST_F(NtpClientTest, AStepIsReportedToTheTunnel) {
  add_server("10.0.0.1", 0);
  add_server("10.0.0.2", 0);
  std::vector<std::int64_t> steps;
  start();
  client_->set_on_step([&](std::int64_t us) { steps.push_back(us); });
  loop_.run_for(seconds(60));
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_NEAR(static_cast<double>(steps[0]), -3'000'000.0, 2000.0);
  // Both servers jump 1 s: an estimate jump, stepped, reported.
  for (auto& s : servers_) s->error_us = 1'000'000;
  loop_.run_for(seconds(600));
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_NEAR(static_cast<double>(steps[1]), 1'000'000.0, 5000.0);  // samples carried to now at the estimated frequency
  EXPECT_GE(client_->status()["drift_events"].get<int>(), 2);
}

}  // namespace
}  // namespace buckwild::daemon
