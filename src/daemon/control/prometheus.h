// The status document (docs/control.md, "status") as Prometheus metrics: the
// text exposition format 0.0.4, for node_exporter's textfile collector
// (`buckwild status --prometheus`) and for the [metrics] HTTP endpoint
// (metrics_server.h). The metric families, their types and labels are listed
// in docs/control.md, "Metrics".
//
// Conventions: every name starts with `buckwild_`; counters end in `_total`;
// values are in base units (milliseconds in the document become floating
// seconds); every sample carries `device` (the tunnel's TUN device), so one
// textfile can hold several tunnels; per-peer samples add `peer` (the peer's
// name). Per-peer counters come from the peer's current session and start
// again from zero with a new session, which Prometheus treats as a counter
// reset.
#pragma once

#include <nlohmann/json.hpp>
#include <span>
#include <string>

namespace buckwild::daemon {

// The content type of what render_prometheus returns.
inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

// Renders the status documents of one or more tunnels (each the object under
// "status" in a `status` reply) as one exposition: each metric family once,
// with its # HELP and # TYPE lines and the samples of every tunnel, families
// in a fixed order, families without samples left out.
//
// The input comes from a socket and is trusted for nothing: a document that
// is not a JSON object contributes no samples; a field that is missing, null
// or of the wrong type leaves out the samples made from it and nothing else;
// a sample whose labels repeat one already written in its family (the same
// device twice, two peers of one name) is left out, so the output is always a
// valid exposition. A document without a string "device" is labelled
// device="" (which Prometheus reads as no device label). No documents, or
// none usable, give "".
std::string render_prometheus(std::span<const nlohmann::json> tunnels);

}  // namespace buckwild::daemon
