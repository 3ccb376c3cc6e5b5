#include "sim/traffic.h"

#include <algorithm>
#include <cstring>

#include "sim/sim_random.h"

namespace buckwild::sim {

void fill_pattern(std::uint64_t seed, std::uint64_t offset, MutableBytes out) {
  std::size_t i = 0;
  while (i < out.size()) {
    const std::uint64_t pos = offset + i;
    const std::uint64_t word = mix64(seed ^ (pos / 8));
    const std::size_t start = static_cast<std::size_t>(pos % 8);
    const std::size_t n = std::min<std::size_t>(8 - start, out.size() - i);
    for (std::size_t k = 0; k < n; ++k) {
      out[i + k] = static_cast<std::uint8_t>(word >> (8 * (start + k)));
    }
    i += n;
  }
}

BulkApp::BulkApp(const BulkAppConfig& config)
    : config_(config), buf_(config.chunk), expected_(config.chunk) {}

void BulkApp::on_service(conn::Connection& c, TimePoint now) {
  stats_ = c.stats();
  // Hand in as much as the connection takes (its backpressure).
  while (sent_ < config_.send_bytes) {
    const std::size_t room = c.send_capacity();
    if (room == 0) break;
    const std::size_t n = static_cast<std::size_t>(
        std::min<std::uint64_t>({room, config_.chunk, config_.send_bytes - sent_}));
    fill_pattern(config_.send_seed, sent_, MutableBytes(buf_).first(n));
    const std::size_t taken = c.send(Bytes(buf_).first(n));
    sent_ += taken;
    if (taken < n) break;
  }
  if (sent_ == config_.send_bytes && config_.shutdown_after_send && !shut_ &&
      c.state() != conn::State::kSynSent && c.state() != conn::State::kSynReceived) {
    shut_ = true;
    c.shutdown_write();
  }
  if (!config_.reading) return;
  for (;;) {
    const std::size_t n = c.recv(MutableBytes(buf_));
    if (n == 0) break;
    fill_pattern(config_.expect_seed, received_, MutableBytes(expected_).first(n));
    if (first_mismatch_ == kNoMismatch && std::memcmp(buf_.data(), expected_.data(), n) != 0) {
      for (std::size_t i = 0; i < n; ++i) {
        if (buf_[i] != expected_[i]) {
          first_mismatch_ = received_ + i;
          break;
        }
      }
    }
    received_ += n;
    if (now - last_progress_sample_ >= milliseconds(10)) {
      progress_.emplace_back(now, received_);
      last_progress_sample_ = now;
    }
    if (received_ >= config_.expect_bytes && finished_at_ == kNever) finished_at_ = now;
  }
  if (c.peer_finished() && c.readable() == 0) eof_ = true;
}

void BulkApp::on_event(conn::Connection& c, const conn::Event& e, TimePoint now) {
  stats_ = c.stats();
  events_.push_back(e);
  if (e.kind == conn::EventKind::kEstablished) established_at_ = now;
}

bool BulkApp::saw(conn::EventKind kind) const {
  return std::any_of(events_.begin(), events_.end(), [&](const conn::Event& e) { return e.kind == kind; });
}

ErrorCode BulkApp::reason(conn::EventKind kind) const {
  for (const conn::Event& e : events_) {
    if (e.kind == kind) return e.reason;
  }
  return ErrorCode::kSuccess;
}

std::uint64_t BulkApp::received_at_or_before(TimePoint t) const {
  std::uint64_t r = 0;
  for (const auto& [when, bytes] : progress_) {
    if (when > t) break;
    r = bytes;
  }
  return r;
}

}  // namespace buckwild::sim
