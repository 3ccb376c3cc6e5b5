#include "core/conn/fragmentation.h"

#include <algorithm>
#include <cstring>

namespace buckwild::conn {

// ---- splitting ------------------------------------------------------------------------------

Result<FragmentPlan> Fragmenter::plan(std::size_t size, std::size_t max_piece) {
  if (max_piece == 0) return fail(ErrorCode::kFragmentInvalid, "zero fragment size");
  if (size <= max_piece) return fail(ErrorCode::kFragmentInvalid, "message fits one packet");
  const std::size_t total = (size + max_piece - 1) / max_piece;
  if (total > wire::kMaxFragments) return fail(ErrorCode::kFragmentInvalid, "more than 255 fragments");
  FragmentPlan p;
  p.id = next_id_++;
  p.total = static_cast<std::uint16_t>(total);
  p.piece_size = max_piece;
  p.message_size = size;
  return p;
}

Bytes Fragmenter::piece(Bytes message, const FragmentPlan& plan, std::uint16_t index) {
  const std::size_t start = std::size_t{index} * plan.piece_size;
  if (index >= plan.total || start >= message.size()) return {};
  return message.subspan(start, std::min(plan.piece_size, message.size() - start));
}

void Fragmenter::fill_header(wire::Header& header, const FragmentPlan& plan, std::uint16_t index) {
  header.type = wire::PacketType::kFragment;
  header.fragment_id = plan.id;
  header.fragment_index = index;
  header.fragment_total = plan.total;
}

// ---- reassembly ---------------------------------------------------------------------------------

Reassembler::Partial* Reassembler::find(std::uint16_t id) {
  for (Partial& p : partials_) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

void Reassembler::erase(std::size_t index) {
  held_ -= partials_[index].bytes();
  partials_.erase(partials_.begin() + static_cast<std::ptrdiff_t>(index));
}

// Evicts the oldest partial messages (never `keep`) until `bytes` more fit the
// budget and one more message fits the count. False if that is impossible.
bool Reassembler::make_room(std::size_t bytes, const Partial* keep) {
  if (bytes > config_.max_bytes) return false;
  const std::uint16_t keep_id = keep ? keep->id : 0;
  for (;;) {
    const bool bytes_ok = held_ + bytes <= config_.max_bytes;
    const bool count_ok = keep != nullptr || partials_.size() < config_.max_messages;
    if (bytes_ok && count_ok) return true;
    std::size_t oldest = partials_.size();
    for (std::size_t i = 0; i < partials_.size(); ++i) {
      if (keep && partials_[i].id == keep_id) continue;
      if (oldest == partials_.size() || partials_[i].deadline < partials_[oldest].deadline) oldest = i;
    }
    if (oldest == partials_.size()) return false;
    erase(oldest);
    ++evicted_;
  }
}

void Reassembler::drop(std::uint16_t id) {
  for (std::size_t i = 0; i < partials_.size(); ++i) {
    if (partials_[i].id == id) {
      erase(i);
      return;
    }
  }
}

Result<std::optional<Bytes>> Reassembler::discard(std::uint16_t id, const char* what) {
  drop(id);
  return fail(ErrorCode::kFragmentInvalid, what);
}

Result<std::optional<Bytes>> Reassembler::add(const wire::Header& h, Bytes payload, TimePoint now) {
  const std::uint16_t total = h.fragment_total;
  const std::uint16_t index = h.fragment_index;
  if (h.type != wire::PacketType::kFragment || total < 2 || total > wire::kMaxFragments ||
      index >= total || payload.empty()) {
    return fail(ErrorCode::kFragmentInvalid, "fragment fields");
  }
  const bool last = index + 1 == total;

  Partial* p = find(h.fragment_id);
  if (p == nullptr) {
    if (!make_room(0, nullptr)) return fail(ErrorCode::kMemoryExhausted, "reassembly slots");
    Partial fresh;
    fresh.id = h.fragment_id;
    fresh.total = total;
    fresh.deadline = now + config_.timeout;
    partials_.push_back(std::move(fresh));
    p = &partials_.back();
  }
  if (p->total != total) return discard(h.fragment_id, "fragment total changed");
  const std::uint64_t bit = std::uint64_t{1} << (index % 64);
  if ((p->have[index / 64] & bit) != 0) return std::optional<Bytes>{};  // duplicate

  // The piece size is set by the first fragment that is not the last; every
  // other such fragment must match it, and the last may not exceed it.
  if (!last) {
    if (p->piece == 0) {
      if (p->last_length > payload.size()) return discard(h.fragment_id, "last fragment too long");
      const std::size_t need = std::size_t{total} * payload.size();
      if (!make_room(need, p)) {
        drop(h.fragment_id);
        return fail(ErrorCode::kMemoryExhausted, "message exceeds the reassembly budget");
      }
      p = find(h.fragment_id);
      p->piece = payload.size();
      p->data.resize(need);
      held_ += p->data.capacity();
      if (p->last_length > 0) {
        std::memcpy(p->data.data() + (std::size_t{total} - 1) * p->piece, p->tail.data(), p->last_length);
        held_ -= p->tail.capacity();
        std::vector<std::uint8_t>().swap(p->tail);
      }
    } else if (payload.size() != p->piece) {
      return discard(h.fragment_id, "fragment size changed");
    }
    std::memcpy(p->data.data() + std::size_t{index} * p->piece, payload.data(), payload.size());
  } else {
    if (p->piece != 0) {
      if (payload.size() > p->piece) return discard(h.fragment_id, "last fragment too long");
      std::memcpy(p->data.data() + std::size_t{index} * p->piece, payload.data(), payload.size());
    } else {
      if (!make_room(payload.size(), p)) {
        drop(h.fragment_id);
        return fail(ErrorCode::kMemoryExhausted, "message exceeds the reassembly budget");
      }
      p = find(h.fragment_id);
      p->tail.assign(payload.begin(), payload.end());
      held_ += p->tail.capacity();
    }
    p->last_length = payload.size();
  }
  p->have[index / 64] |= bit;
  if (++p->received < total) return std::optional<Bytes>{};

  // Complete: hand the bytes out and forget the message.
  const std::size_t size = (std::size_t{total} - 1) * p->piece + p->last_length;
  completed_.swap(p->data);
  completed_.resize(size);
  for (std::size_t i = 0; i < partials_.size(); ++i) {
    if (partials_[i].id == h.fragment_id) {
      held_ -= partials_[i].tail.capacity();
      held_ -= completed_.capacity();
      partials_.erase(partials_.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
  }
  return std::optional<Bytes>{Bytes(completed_)};
}

TimePoint Reassembler::next_expiry() const {
  TimePoint t = kNever;
  for (const Partial& p : partials_) t = std::min(t, p.deadline);
  return t;
}

void Reassembler::on_expiry(TimePoint now) {
  for (std::size_t i = partials_.size(); i-- > 0;) {
    if (partials_[i].deadline <= now) {
      erase(i);
      ++expired_;
    }
  }
}

}  // namespace buckwild::conn
