// Fragmentation of messages larger than the path allows (docs/protocol.md
// §5.13.13).
//
// A message of n bytes that does not fit one packet body of at most p bytes
// travels as k = ceil(n / p) FRAGMENT packets (2 <= k <= 255) that share a
// fragment id; fragment i carries bytes [i * p, min(n, (i + 1) * p)), so every
// fragment but the last has exactly p bytes. The header carries id, index and
// total; the body is the fragment's bytes.
//
// The session uses this for DATAGRAM payloads (IP packets) larger than the
// path; connection segments are sized to the path and never fragment.
//
// Reassembly keeps partial messages under hard bounds: a byte budget and a
// message count across all of them, and a lifetime of 30 s from a message's
// first fragment (not extended by later ones, so a trickle cannot pin memory).
// Duplicates are ignored; a fragment that contradicts the ones before it
// (another total, another piece size, a last piece longer than the others)
// discards the message.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/common/bytes.h"
#include "core/common/error.h"
#include "core/common/time.h"
#include "core/wire/messages.h"

namespace buckwild::conn {

struct FragmentPlan {
  std::uint16_t id = 0;
  std::uint16_t total = 0;       // 2..255
  std::size_t piece_size = 0;    // bytes in every fragment but the last
  std::size_t message_size = 0;
};

class Fragmenter {
 public:
  explicit Fragmenter(std::uint16_t first_id = 0) : next_id_(first_id) {}

  // Plans the split of a `size`-byte message into pieces of at most
  // `max_piece` bytes and takes the next fragment id. Fails with
  // kFragmentInvalid if the message fits one piece (size <= max_piece: send it
  // whole), if max_piece is 0, or if it would need more than 255 fragments.
  Result<FragmentPlan> plan(std::size_t size, std::size_t max_piece);

  // The bytes of fragment `index` of `message` under `plan`.
  static Bytes piece(Bytes message, const FragmentPlan& plan, std::uint16_t index);
  // Sets type FRAGMENT and the fragment fields of `header` for fragment `index`.
  static void fill_header(wire::Header& header, const FragmentPlan& plan, std::uint16_t index);

 private:
  std::uint16_t next_id_;
};

struct ReassemblyConfig {
  std::size_t max_bytes = 4 * 1024 * 1024;  // across all partial messages
  std::size_t max_messages = 64;            // partial messages at once
  Duration timeout = milliseconds(wire::kFragmentTimeoutMs);
};

class Reassembler {
 public:
  explicit Reassembler(const ReassemblyConfig& config = {}) : config_(config) {}

  // Adds one FRAGMENT (its header's fragment fields and its body). Returns the
  // whole message when this fragment completes it — a view valid until the
  // next call — or nullopt while it is incomplete (or the fragment was a
  // duplicate). Errors: kFragmentInvalid for a fragment inconsistent with the
  // message's earlier ones (the partial message is discarded) or an empty or
  // oversized piece; kMemoryExhausted when the message alone exceeds the byte
  // budget. To make room, the oldest partial messages are evicted.
  Result<std::optional<Bytes>> add(const wire::Header& header, Bytes payload, TimePoint now);

  // When the oldest partial message expires (kNever if none).
  TimePoint next_expiry() const;
  // Drops partial messages older than the timeout.
  void on_expiry(TimePoint now);

  std::size_t partial_messages() const { return partials_.size(); }
  std::size_t bytes_held() const { return held_; }
  std::uint64_t evicted() const { return evicted_; }
  std::uint64_t expired() const { return expired_; }

 private:
  struct Partial {
    std::uint16_t id = 0;
    std::uint16_t total = 0;
    std::uint16_t received = 0;
    std::size_t piece = 0;        // 0 until a fragment other than the last arrived
    std::size_t last_length = 0;  // 0 until the last fragment arrived
    TimePoint deadline = 0;
    std::array<std::uint64_t, 4> have{};
    std::vector<std::uint8_t> data;  // total x piece, once piece is known
    std::vector<std::uint8_t> tail;  // the last fragment, while piece is unknown
    std::size_t bytes() const { return data.capacity() + tail.capacity(); }
  };

  Partial* find(std::uint16_t id);
  void erase(std::size_t index);
  bool make_room(std::size_t bytes, const Partial* keep);
  void drop(std::uint16_t id);
  Result<std::optional<Bytes>> discard(std::uint16_t id, const char* what);

  ReassemblyConfig config_;
  std::vector<Partial> partials_;
  std::vector<std::uint8_t> completed_;
  std::size_t held_ = 0;
  std::uint64_t evicted_ = 0;
  std::uint64_t expired_ = 0;
};

}  // namespace buckwild::conn
