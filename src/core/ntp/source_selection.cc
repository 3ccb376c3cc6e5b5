#include "core/ntp/source_selection.h"

#include <algorithm>

namespace buckwild::ntp {

std::int64_t correctness_distance(std::int64_t root_distance_us, std::int64_t delay_us,
                                  std::int64_t jitter_us) {
  return std::max(kMinDistanceUs, root_distance_us + delay_us / 2 + jitter_us);
}

Selection select_sources(std::span<const Candidate> candidates, std::size_t voters) {
  Selection out;
  out.truechimer.assign(candidates.size(), false);
  const std::size_t n = candidates.size();
  if (n == 0) return out;

  // Sweep the interval edges from low to high; at each point count the
  // intervals that contain it. An interval's low edge sorts before a high edge
  // at the same point, so touching intervals count as overlapping.
  struct Edge {
    std::int64_t at;
    int kind;  // -1 low edge, +1 high edge
  };
  std::vector<Edge> edges;
  edges.reserve(2 * n);
  for (const Candidate& c : candidates) {
    const std::int64_t d = std::max(c.distance_us, kMinDistanceUs);
    edges.push_back({c.offset_us - d, -1});
    edges.push_back({c.offset_us + d, +1});
  }
  std::sort(edges.begin(), edges.end(), [](const Edge& a, const Edge& b) {
    return a.at != b.at ? a.at < b.at : a.kind < b.kind;
  });
  int open = 0;
  int best = 0;
  std::int64_t best_low = 0;
  std::int64_t best_high = 0;
  for (std::size_t i = 0; i < edges.size(); ++i) {
    if (edges[i].kind < 0) {
      ++open;
      if (open > best) {
        best = open;
        best_low = edges[i].at;
        // The best region runs from here to the next high edge.
        for (std::size_t j = i + 1; j < edges.size(); ++j) {
          if (edges[j].kind > 0) {
            best_high = edges[j].at;
            break;
          }
        }
      }
    } else {
      --open;
    }
  }
  // A majority of the servers that answered must agree (RFC 5905: more than
  // half), else nobody is believed.
  if (static_cast<std::size_t>(best) * 2 <= std::max(n, voters)) return out;

  double weight_sum = 0;
  double weighted = 0;
  std::int64_t least = 0;
  bool any = false;
  for (std::size_t i = 0; i < n; ++i) {
    const Candidate& c = candidates[i];
    const std::int64_t d = std::max(c.distance_us, kMinDistanceUs);
    // A truechimer's interval contains the agreed region.
    if (c.offset_us - d <= best_low && c.offset_us + d >= best_high) {
      out.truechimer[i] = true;
      const double w = 1.0 / static_cast<double>(d);
      weight_sum += w;
      weighted += w * static_cast<double>(c.offset_us);
      least = any ? std::min(least, d) : d;
      any = true;
    }
  }
  if (!any) return out;
  out.offset_us = static_cast<std::int64_t>(weighted / weight_sum);
  out.distance_us = least;
  return out;
}

}  // namespace buckwild::ntp
