#include "daemon/time/ntp_client.h"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <mutex>
#include <spdlog/spdlog.h>
#include <thread>

#include "core/ntp/ntp_packet.h"
#include "core/ntp/source_selection.h"

namespace buckwild::daemon {

namespace {

constexpr Duration kResolveCheck = milliseconds(200);
constexpr Duration kResolveRetry = seconds(60);

double ms(std::int64_t us) { return static_cast<double>(us) / 1000.0; }
double rounded_ms(std::int64_t us) { return std::round(static_cast<double>(us) / 10.0) / 100.0; }

std::string label_of(const NtpServer& s) {
  std::string out;
  if (s.host.find(':') != std::string::npos) {
    out += '[';
    out += s.host;
    out += ']';
  } else {
    out += s.host;
  }
  out += ':';
  out += std::to_string(s.port);
  return out;
}

}  // namespace

// A name lookup on a worker thread: getaddrinfo blocks, the loop must not.
// The thread owns a reference, so a daemon that stops mid-lookup leaves it to
// finish into an object nobody reads.
struct NtpClient::Resolution {
  std::mutex mutex;
  bool done = false;
  std::optional<SocketAddress> address;
  std::string error;
};

struct NtpClient::Source {
  enum class State : std::uint8_t { kResolving, kPolling, kUnreachable, kDenied, kUnresolved };

  NtpServer server;
  std::string label;
  State state = State::kResolving;
  std::optional<SocketAddress> address;
  std::shared_ptr<Resolution> resolution;
  std::unique_ptr<DatagramSocket> socket;
  ntp::ClockFilter filter;
  TimerId timer = kNoTimer;
  TimerId timeout = kNoTimer;

  bool outstanding = false;
  std::uint64_t nonce = 0;
  std::int64_t t1_raw_us = 0;
  TimePoint last_request = kNever;
  bool got_sample = false;  // this poll produced a sample
  std::string poll_error;   // why this poll has no sample yet ("" = no answer at all)
  std::uint64_t send_errors_seen = 0;

  Duration poll = kNtpBurstInterval;
  int burst_left = kNtpBurst;
  int good_streak = 0;
  int misses = 0;
  std::uint8_t reach = 0;  // one bit per poll, newest lowest: answered
  bool truechimer = false;
  std::string last_error;

  std::uint64_t requests = 0;
  std::uint64_t responses = 0;
  std::uint64_t refused = 0;
  std::uint64_t kisses = 0;

  // Answered one of its last three polls.
  bool reachable() const { return (reach & 0b111) != 0; }
};

NtpClient::NtpClient(const NtpConfig& config, NtpClientDeps deps)
    : config_(config),
      loop_(deps.loop),
      clock_(deps.clock),
      bind_socket_(std::move(deps.bind_socket)),
      rng_(deps.rng),
      audit_(deps.audit) {}

NtpClient::~NtpClient() {
  for (auto& s : sources_) {
    if (s->timer != kNoTimer) loop_.cancel_timer(s->timer);
    if (s->timeout != kNoTimer) loop_.cancel_timer(s->timeout);
    if (s->socket) loop_.unwatch_fd(s->socket->fd());
  }
  if (drift_timer_ != kNoTimer) loop_.cancel_timer(drift_timer_);
}

void NtpClient::start() {
  for (const NtpServer& server : config_.servers) {
    auto s = std::make_unique<Source>();
    s->server = server;
    s->label = label_of(server);
    sources_.push_back(std::move(s));
  }
  for (auto& s : sources_) begin_resolve(*s);
  drift_timer_ = loop_.add_periodic_timer(kNtpDriftCheck, [this] { check_drift(); });
  spdlog::info("time: NTP client started with {} server{}; until a majority agrees, the system "
               "clock is used",
               sources_.size(), sources_.size() == 1 ? "" : "s");
}

// ---- resolution ----

void NtpClient::begin_resolve(Source& s) {
  s.state = Source::State::kResolving;
  if (auto ip = IpAddress::parse(s.server.host)) {
    s.address = SocketAddress{*ip, s.server.port};
    if (open_socket(s)) schedule(s, 0);
    return;
  }
  auto r = std::make_shared<Resolution>();
  s.resolution = r;
  std::thread([r, host = s.server.host, port = s.server.port] {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* res = nullptr;
    const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
    std::optional<SocketAddress> found;
    for (addrinfo* a = res; a != nullptr && !found; a = a->ai_next) {
      if (auto sa = SocketAddress::from_sockaddr(a->ai_addr, a->ai_addrlen)) {
        found = SocketAddress{sa->ip, port};
      }
    }
    if (res != nullptr) ::freeaddrinfo(res);
    std::lock_guard lock(r->mutex);
    r->done = true;
    r->address = found;
    if (!found) r->error = rc != 0 ? ::gai_strerror(rc) : "no address";
  }).detach();
  s.timer = loop_.add_timer(kResolveCheck, [this, &s] {
    s.timer = kNoTimer;
    check_resolve(s);
  });
}

void NtpClient::check_resolve(Source& s) {
  bool done = false;
  {
    std::lock_guard lock(s.resolution->mutex);
    done = s.resolution->done;
    if (done) {
      s.address = s.resolution->address;
      s.last_error = s.resolution->error;
    }
  }
  if (!done) {
    s.timer = loop_.add_timer(kResolveCheck, [this, &s] {
      s.timer = kNoTimer;
      check_resolve(s);
    });
    return;
  }
  s.resolution.reset();
  if (!s.address) {
    retry_later(s, "cannot resolve NTP server");
    return;
  }
  spdlog::info("time: NTP server {} is {}", s.label, s.address->to_string());
  if (open_socket(s)) schedule(s, 0);
}

void NtpClient::retry_later(Source& s, const char* what) {
  s.state = Source::State::kUnresolved;
  spdlog::warn("time: {} {}: {}; trying again in {} s", what, s.label, s.last_error,
               kResolveRetry / 1'000'000);
  s.timer = loop_.add_timer(kResolveRetry, [this, &s] {
    s.timer = kNoTimer;
    begin_resolve(s);
  });
}

bool NtpClient::open_socket(Source& s) {
  // One socket per server on an ephemeral port: the port is a second secret
  // a blind spoofer must guess, besides the 64-bit origin nonce.
  auto sock = bind_socket_(SocketAddress{IpAddress::any(s.address->ip.family()), 0});
  if (!sock) {
    s.last_error = sock.error().message;
    retry_later(s, "cannot open a socket for NTP server");
    return false;
  }
  s.socket = std::move(*sock);
  auto w = loop_.watch_fd(s.socket->fd(), kReadable, [this, &s](std::uint32_t) { on_readable(s); });
  if (!w) {
    s.socket.reset();
    s.last_error = w.error().message;
    retry_later(s, "cannot watch the socket for NTP server");
    return false;
  }
  s.state = Source::State::kPolling;
  return true;
}

// ---- polling ----

void NtpClient::schedule(Source& s, Duration delay) {
  if (s.timer != kNoTimer) loop_.cancel_timer(s.timer);
  s.timer = loop_.add_timer(delay, [this, &s] {
    s.timer = kNoTimer;
    poll(s);
  });
}

void NtpClient::poll(Source& s) {
  if (s.state == Source::State::kDenied || !s.socket) return;
  const TimePoint now = loop_.now();
  // Rate limit: never two requests to one server within the burst interval.
  if (s.last_request != kNever && now - s.last_request < kNtpBurstInterval) {
    schedule(s, kNtpBurstInterval - (now - s.last_request));
    return;
  }
  std::array<std::uint8_t, 8> nonce_bytes{};
  rng_.fill(nonce_bytes);
  std::uint64_t nonce = 0;
  for (std::uint8_t b : nonce_bytes) nonce = (nonce << 8) | b;
  const auto request = ntp::encode_request(nonce);
  s.nonce = nonce;
  s.outstanding = true;
  s.got_sample = false;
  s.poll_error.clear();
  s.last_request = now;
  s.t1_raw_us = clock_.raw_unix_us();
  ++s.requests;
  const OutgoingDatagram d{Bytes(request), *s.address, std::nullopt};
  auto sent = s.socket->send_batch(std::span(&d, 1));
  // A request the kernel refused is a miss when the timeout fires; say why.
  if (!sent) {
    s.poll_error = sent.error().message;
  } else if (s.socket->send_errors() != s.send_errors_seen) {
    s.send_errors_seen = s.socket->send_errors();
    s.poll_error = "send failed (errno ";
    s.poll_error += std::to_string(s.socket->last_send_errno());
    s.poll_error += ')';
  }
  s.timeout = loop_.add_timer(milliseconds(config_.validation_timeout_ms), [this, &s] {
    s.timeout = kNoTimer;
    on_timeout(s);
  });
}

void NtpClient::on_timeout(Source& s) {
  if (!s.outstanding) return;
  s.outstanding = false;
  s.last_error = s.poll_error.empty() ? "no answer" : s.poll_error;
  finish_poll(s, false);
}

void NtpClient::on_readable(Source& s) {
  std::array<std::uint8_t, 512> buf{};
  for (int i = 0; i < 16; ++i) {
    ReceivedDatagram slot{MutableBytes(buf)};
    auto got = s.socket->receive_batch(std::span(&slot, 1));
    if (!got || *got == 0) return;
    const std::int64_t t4 = clock_.raw_unix_us();
    // Only the server's own address may answer.
    if (!s.address || slot.source != *s.address || slot.truncated) {
      ++s.refused;
      continue;
    }
    auto packet = ntp::decode(Bytes(buf.data(), slot.length));
    if (!packet || !s.outstanding) {
      // Malformed, or nothing asked: a duplicate or a replay.
      ++s.refused;
      if (packet && !s.outstanding) {
        s.last_error = "unsolicited response (replayed or duplicated)";
      }
      continue;
    }
    const ntp::Verdict v = ntp::check_response(*packet, s.nonce, s.t1_raw_us, t4);
    if (const auto* sample = std::get_if<ntp::Sample>(&v)) {
      ++s.responses;
      s.outstanding = false;
      s.got_sample = true;
      s.last_error.clear();
      if (s.timeout != kNoTimer) loop_.cancel_timer(s.timeout);
      s.timeout = kNoTimer;
      s.filter.add(*sample, loop_.now());
      finish_poll(s, true);
      select(loop_.now());
      continue;
    }
    if (const auto* kiss = std::get_if<ntp::Kiss>(&v)) {
      ++s.kisses;
      s.last_error = s.poll_error = ntp::kiss_name(*kiss);
      if (*kiss == ntp::Kiss::kOther) continue;  // no instruction: keep waiting
      s.outstanding = false;
      if (s.timeout != kNoTimer) loop_.cancel_timer(s.timeout);
      s.timeout = kNoTimer;
      if (*kiss == ntp::Kiss::kDeny) {
        s.state = Source::State::kDenied;
        s.reach = 0;
        s.filter.clear();
        if (s.timer != kNoTimer) loop_.cancel_timer(s.timer);
        s.timer = kNoTimer;
        spdlog::warn("time: NTP server {} refused us ({}); it is not asked again until the "
                     "daemon restarts",
                     s.label, s.last_error);
        select(loop_.now());
        return;
      }
      // RATE: slow down.
      s.poll = std::clamp(s.poll * 2, kNtpUnreachablePoll, kNtpMaxPoll);
      s.burst_left = 0;
      spdlog::info("time: NTP server {} asks us to slow down (RATE); polling every {} s", s.label,
                   s.poll / 1'000'000);
      schedule(s, s.poll);
      continue;
    }
    const ntp::Refusal r = std::get<ntp::Refusal>(v);
    ++s.refused;
    s.last_error = s.poll_error = ntp::refusal_name(r);
    // A wrong origin is someone else's packet: keep waiting for ours. Any
    // other refusal is the server's real answer, and unusable.
    if (r == ntp::Refusal::kBadOrigin) continue;
    s.outstanding = false;
    if (s.timeout != kNoTimer) loop_.cancel_timer(s.timeout);
    s.timeout = kNoTimer;
    finish_poll(s, false);
  }
}

void NtpClient::finish_poll(Source& s, bool answered) {
  s.reach = static_cast<std::uint8_t>((s.reach << 1) | (answered ? 1 : 0));
  Duration next = s.poll;
  if (answered) {
    const bool was_unreachable = s.state == Source::State::kUnreachable;
    s.misses = 0;
    if (was_unreachable) {
      s.state = Source::State::kPolling;
      s.burst_left = kNtpBurst;
      s.poll = kNtpMinPoll;
      spdlog::info("time: NTP server {} answers again", s.label);
    }
    if (s.burst_left > 0) {
      --s.burst_left;
      next = kNtpBurstInterval;
      if (s.burst_left == 0) s.poll = std::max(s.poll, kNtpMinPoll);
    } else {
      s.poll = std::max(s.poll, kNtpMinPoll);
      if (++s.good_streak >= 4) {
        s.good_streak = 0;
        s.poll = std::min(s.poll * 2, kNtpMaxPoll);
      }
      next = s.poll;
    }
  } else {
    s.good_streak = 0;
    ++s.misses;
    if (s.misses >= kNtpMissesUnreachable) {
      if (s.state != Source::State::kUnreachable) {
        s.state = Source::State::kUnreachable;
        s.poll = kNtpUnreachablePoll;
        s.burst_left = 0;
        spdlog::warn("time: NTP server {} is unreachable ({}); polling it every {} s", s.label,
                     s.last_error, s.poll / 1'000'000);
        select(loop_.now());
      } else {
        s.poll = std::min(s.poll * 2, kNtpMaxPoll);
      }
      next = s.poll;
    } else {
      // Try again soon; a burst in progress keeps its pace.
      next = s.burst_left > 0 ? kNtpBurstInterval : kNtpMinPoll;
      if (s.burst_left > 0) --s.burst_left;
    }
  }
  schedule(s, next);
}

// ---- selection and the clock ----

void NtpClient::select(TimePoint now) {
  std::vector<ntp::Candidate> candidates;
  std::vector<Source*> who;
  // Every configured server votes, answering or not: the first answer at
  // start (perhaps a liar's) is not a majority of one, and neither is the
  // last server left answering when the others have gone silent.
  const std::size_t voters = sources_.size();
  std::vector<TimePoint> taken;  // when each candidate's sample was taken
  for (auto& s : sources_) {
    s->truechimer = false;
    if (s->state != Source::State::kPolling || !s->reachable()) continue;
    auto e = s->filter.estimate(now);
    if (!e) continue;
    // A sample older than now is the raw clock's error back then: carried to
    // now with the frequency already estimated.
    const double age_s = static_cast<double>(now - e->at) / 1e6;
    const auto carried = static_cast<std::int64_t>(clock_.discipline().frequency_ppm() * age_s);
    candidates.push_back({e->offset_us + carried,
                          ntp::correctness_distance(e->root_distance_us, e->delay_us, e->jitter_us)});
    who.push_back(s.get());
    taken.push_back(e->at);
  }
  const ntp::Selection sel = ntp::select_sources(candidates, voters);
  std::string agree;
  std::string rejected;
  for (std::size_t i = 0; i < who.size(); ++i) {
    who[i]->truechimer = sel.offset_us && sel.truechimer[i];
    std::string& list = who[i]->truechimer ? agree : rejected;
    if (!list.empty()) list += ", ";
    list += who[i]->label;
  }
  if (!sel.offset_us) {
    if (selecting_ || selection_summary_.empty()) {
      selecting_ = false;
      selection_summary_ = "none";
      if (synchronized()) {
        spdlog::warn("time: no majority of NTP servers can be trusted now ({} answering{}{}); "
                     "holding our time on the system clock's rate with the last correction "
                     "({:.1f} ms)",
                     who.size(), rejected.empty() ? "" : ": ", rejected,
                     ms(clock_.discipline().correction_us(now)));
      } else {
        spdlog::warn("time: no majority of NTP servers yet ({} answering{}{}); using the system clock",
                     who.size(), rejected.empty() ? "" : ": ", rejected);
      }
    }
    return;
  }

  const ntp::TimeDiscipline& d = clock_.discipline();
  const bool was_synchronized = d.synchronized();
  // Until now our time was the system clock; from now on it is carried on
  // the monotonic clock (continuous at this instant, the frame the servers'
  // offsets were measured in).
  if (!was_synchronized) clock_.anchor();
  const std::string summary = agree + " | " + rejected;
  if (summary != selection_summary_) {
    selection_summary_ = summary;
    spdlog::info("time: NTP servers agreeing: {}{}{}", agree,
                 rejected.empty() ? "" : "; rejected as falsetickers: ", rejected);
  }
  // Only news moves the clock (RFC 5905's "newer than last" rule): the same
  // samples chosen again would pull it back towards what was already used.
  TimePoint newest = kNever;
  for (std::size_t i = 0; i < who.size(); ++i) {
    if (sel.truechimer[i] && (newest == kNever || taken[i] > newest)) newest = taken[i];
  }
  if (was_synchronized && last_sample_used_ != kNever && newest <= last_sample_used_) {
    selecting_ = true;
    return;
  }
  last_sample_used_ = newest;
  // The servers' offsets are from the raw clock; what is left to correct is
  // their offset minus the correction already in force.
  const std::int64_t error_us = *sel.offset_us - d.correction_us(now);
  if (was_synchronized && std::abs(error_us) > std::int64_t{config_.drift_threshold_ms} * 1000) {
    spdlog::warn("time: the NTP estimate jumped by {:.1f} ms (ntp.drift_threshold_ms = {})",
                 ms(error_us), config_.drift_threshold_ms);
    audit_drift("ntp_estimate_jumped", {{"jump_ms", rounded_ms(error_us)},
                                        {"drift_threshold_ms", config_.drift_threshold_ms}});
  }
  const ntp::TimeDiscipline::Applied a = clock_.apply_offset(error_us, now);
  last_sync_ = now;
  last_offset_us_ = error_us;
  selecting_ = true;
  if (a.action == ntp::TimeDiscipline::Action::kStep) {
    ++steps_;
    spdlog::info("time: stepped our clock by {:.1f} ms to the NTP servers' time (the system "
                 "clock is not changed)",
                 ms(a.amount_us));
    if (on_step_) on_step_(a.amount_us);
  } else {
    spdlog::debug("time: slewing our clock by {:.3f} ms", ms(a.amount_us));
  }
  check_drift();
}

void NtpClient::check_drift() {
  const std::int64_t diff = clock_.unix_us() - clock_.system_unix_us();
  const std::int64_t threshold = std::int64_t{config_.drift_threshold_ms} * 1000;
  if (!synchronized()) return;
  if (!drift_warned_ && std::abs(diff) > threshold) {
    drift_warned_ = true;
    spdlog::warn("time: the system clock is {:.1f} ms {} our NTP time (ntp.drift_threshold_ms = "
                 "{}); the daemon keeps to its own time",
                 ms(std::abs(diff)), diff > 0 ? "behind" : "ahead of", config_.drift_threshold_ms);
    audit_drift("system_clock_diverged", {{"system_minus_ntp_ms", rounded_ms(-diff)},
                                          {"drift_threshold_ms", config_.drift_threshold_ms}});
  } else if (drift_warned_ && std::abs(diff) <= threshold / 2) {
    drift_warned_ = false;
    spdlog::info("time: the system clock agrees with our NTP time again ({:.1f} ms)", ms(-diff));
  }
}

void NtpClient::audit_drift(std::string_view reason, nlohmann::json details) {
  ++drift_events_;
  details["reason"] = reason;
  if (audit_ != nullptr) audit_->record("clock_drift", "warning", {{"details", std::move(details)}});
}

nlohmann::json system_time_status() {
  return {{"source", "system clock"},
          {"ntp_enabled", false},
          {"synchronized", false},
          {"correction_ms", 0},
          {"system_clock_offset_ms", 0},
          {"frequency_ppm", 0},
          {"slew_remaining_ms", 0},
          {"last_offset_ms", nullptr},
          {"last_sync_age_s", nullptr},
          {"steps", 0},
          {"drift_threshold_ms", nullptr},
          {"drift_warning", false},
          {"drift_events", 0},
          {"servers", nlohmann::json::array()}};
}

nlohmann::json NtpClient::status() const {
  const TimePoint now = loop_.now();
  const ntp::TimeDiscipline& d = clock_.discipline();
  nlohmann::json servers = nlohmann::json::array();
  for (const auto& s : sources_) {
    const char* state = "resolving";
    switch (s->state) {
      case Source::State::kResolving: state = "resolving"; break;
      case Source::State::kUnresolved: state = "unresolved"; break;
      case Source::State::kDenied: state = "denied"; break;
      case Source::State::kUnreachable: state = "unreachable"; break;
      case Source::State::kPolling:
        if (s->truechimer) {
          state = "selected";
        } else if (!s->reachable()) {
          state = s->filter.size() == 0 ? "waiting" : "unreachable";
        } else if (s->filter.estimate(now) && selecting_) {
          state = "rejected";
        } else {
          state = "waiting";
        }
        break;
    }
    nlohmann::json j = {{"server", s->label},
                        {"address", s->address ? nlohmann::json(s->address->to_string()) : nlohmann::json()},
                        {"state", state},
                        {"reach", s->reach},
                        {"poll_s", s->poll / 1'000'000},
                        {"requests", s->requests},
                        {"responses", s->responses},
                        {"refused", s->refused},
                        {"kisses", s->kisses},
                        {"last_error", s->last_error.empty() ? nlohmann::json() : nlohmann::json(s->last_error)}};
    if (auto e = s->filter.estimate(now)) {
      j["offset_ms"] = rounded_ms(e->offset_us - d.correction_us(now));
      j["delay_ms"] = rounded_ms(e->delay_us);
      j["jitter_ms"] = rounded_ms(e->jitter_us);
    } else {
      j["offset_ms"] = nullptr;
      j["delay_ms"] = nullptr;
      j["jitter_ms"] = nullptr;
    }
    servers.push_back(std::move(j));
  }
  const char* source = selecting_ ? "ntp" : (d.synchronized() ? "holdover" : "system clock");
  return {{"source", source},
          {"ntp_enabled", true},
          {"synchronized", d.synchronized()},
          {"correction_ms", rounded_ms(d.correction_us(now))},
          {"system_clock_offset_ms", rounded_ms(clock_.system_unix_us() - clock_.unix_us())},
          {"frequency_ppm", std::round(d.frequency_ppm() * 100.0) / 100.0},
          {"slew_remaining_ms", rounded_ms(d.slew_remaining_us(now))},
          {"last_offset_ms", d.synchronized() ? nlohmann::json(rounded_ms(last_offset_us_)) : nlohmann::json()},
          {"last_sync_age_s",
           last_sync_ == kNever ? nlohmann::json() : nlohmann::json((now - last_sync_) / 1'000'000)},
          {"steps", steps_},
          {"drift_threshold_ms", config_.drift_threshold_ms},
          {"drift_warning", drift_warned_},
          {"drift_events", drift_events_},
          {"servers", std::move(servers)}};
}

}  // namespace buckwild::daemon
