// Segment sequence numbers: 32-bit serial numbers (RFC 1982).
//
// A connection numbers its segments, not its bytes: every DATA segment and the
// FIN take one sequence number each. Comparisons are modular, so a connection
// may run through any number of wraps; two numbers more than 2^31 apart are not
// comparable and callers never let them be (windows are far smaller).
#pragma once

#include <cstdint>

namespace buckwild::conn {

using Seq = std::uint32_t;

// a - b as a signed distance in serial arithmetic.
constexpr std::int32_t seq_diff(Seq a, Seq b) { return static_cast<std::int32_t>(a - b); }
constexpr bool seq_lt(Seq a, Seq b) { return seq_diff(a, b) < 0; }
constexpr bool seq_le(Seq a, Seq b) { return seq_diff(a, b) <= 0; }
constexpr bool seq_gt(Seq a, Seq b) { return seq_diff(a, b) > 0; }
constexpr bool seq_ge(Seq a, Seq b) { return seq_diff(a, b) >= 0; }
constexpr Seq seq_max(Seq a, Seq b) { return seq_ge(a, b) ? a : b; }
constexpr Seq seq_min(Seq a, Seq b) { return seq_le(a, b) ? a : b; }

// True when lo <= s < hi (serially).
constexpr bool seq_in(Seq s, Seq lo, Seq hi) { return seq_ge(s, lo) && seq_lt(s, hi); }

}  // namespace buckwild::conn
