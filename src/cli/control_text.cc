#include "cli/control_text.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string_view>
#include <vector>

namespace buckwild::cli {
namespace {

constexpr const char* kReset = "\x1b[0m";
constexpr const char* kBold = "\x1b[1m";
constexpr const char* kInterfaceColor = "\x1b[1;32m";  // as wg show: interfaces green,
constexpr const char* kPeerColor = "\x1b[1;33m";       // peers yellow

// The field `key` of `obj`: nullptr when `obj` is not an object, or the field
// is missing or null.
const Json* field(const Json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<std::string> text_of(const Json& obj, const char* key) {
  const Json* f = field(obj, key);
  if (f == nullptr || !f->is_string()) return std::nullopt;
  return f->get<std::string>();
}

std::optional<double> number_of(const Json& obj, const char* key) {
  const Json* f = field(obj, key);
  if (f == nullptr || !f->is_number()) return std::nullopt;
  return f->get<double>();
}

// A JSON number as written: integers exactly, others to two decimals at most.
std::string number_text(const Json& j) {
  if (j.is_number_unsigned()) return std::to_string(j.get<std::uint64_t>());
  if (j.is_number_integer()) return std::to_string(j.get<std::int64_t>());
  if (j.is_number_float()) {
    double v = j.get<double>();
    if (!std::isfinite(v)) return "?";
    char buf[64];
    if (std::fabs(v) >= 1e15) {
      std::snprintf(buf, sizeof buf, "%.6g", v);
      return buf;
    }
    std::snprintf(buf, sizeof buf, "%.2f", v);
    std::string s = buf;
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    return s == "-0" ? "0" : s;
  }
  if (j.is_string()) return j.get<std::string>();
  if (j.is_boolean()) return j.get<bool>() ? "yes" : "no";
  return "?";
}

std::optional<std::string> count_of(const Json& obj, const char* key) {
  const Json* f = field(obj, key);
  if (f == nullptr || !f->is_number()) return std::nullopt;
  return number_text(*f);
}

// "1 packet", "2 packets".
std::string plural(const std::string& count, std::string_view noun) {
  std::string s = count + " " + std::string(noun);
  if (count != "1") s += 's';
  return s;
}

// The elements of an array of scalars, joined by ", "; "" for anything else.
std::string list_text(const Json* array) {
  std::string s;
  if (array == nullptr || !array->is_array()) return s;
  for (const auto& item : *array) {
    if (!s.empty()) s += ", ";
    s += number_text(item);
  }
  return s;
}

bool is_nonzero_number(const Json& j) {
  return j.is_number() && j.get<double>() != 0;
}

// "no route 3, rejected 2": the object's non-zero numbers.
std::string nonzero_counters(const Json* obj) {
  std::string s;
  if (obj == nullptr || !obj->is_object()) return s;
  for (const auto& [key, value] : obj->items()) {
    if (!is_nonzero_number(value)) continue;
    if (!s.empty()) s += ", ";
    std::string name = key;
    for (char& c : name) {
      if (c == '_') c = ' ';
    }
    s += name + " " + number_text(value);
  }
  return s;
}

std::string ago(double ms) {
  return human_duration(ms) + " ago";
}

// A JSON number of bytes, whatever it holds (negative, fractional, huge).
std::uint64_t byte_count(double v) {
  if (!(v > 0)) return 0;
  if (v >= 1.8e19) return UINT64_MAX;
  return static_cast<std::uint64_t>(v);
}

class Writer {
 public:
  Writer(std::string& out, bool color) : out_(out), color_(color) {}

  void title(std::string_view label, std::string_view value, const char* color) {
    if (color_) {
      out_ += color;
      out_ += label;
      out_ += kReset;
      out_ += ": ";
      out_ += value;
    } else {
      out_ += label;
      out_ += ": ";
      out_ += value;
    }
    out_ += '\n';
  }
  void line(std::string_view label, std::string_view value) {
    if (value.empty()) return;
    out_ += "  ";
    if (color_) out_ += kBold;
    out_ += label;
    if (color_) out_ += kReset;
    out_ += ": ";
    out_ += value;
    out_ += '\n';
  }
  void bare(std::string_view text) {
    out_ += "  ";
    out_ += text;
    out_ += '\n';
  }

 private:
  std::string& out_;
  bool color_;
};

void render_time(const Json& s, Writer& w);

void render_interface(const Json& s, Writer& w) {
  w.title("interface", text_of(s, "device").value_or("?"), kInterfaceColor);
  if (auto pid = count_of(s, "pid")) w.line("pid", *pid);
  if (auto version = text_of(s, "version")) {
    std::string v = *version;
    if (auto proto = count_of(s, "protocol_version")) v += " (protocol v" + *proto + ")";
    w.line("version", v);
  }
  if (auto config = text_of(s, "config_file")) w.line("config file", *config);
  if (auto up = number_of(s, "uptime_ms")) w.line("uptime", human_duration(*up));
  if (const Json* r = field(s, "reloads")) {
    auto applied = count_of(*r, "applied");
    auto refused = count_of(*r, "refused");
    if (applied && refused) w.line("reloads", *applied + " applied, " + *refused + " refused");
  }
  if (const Json* rp = field(s, "receive_path")) {
    std::string v = text_of(*rp, "kind").value_or("?");
    std::vector<std::string> notes;
    if (auto detail = text_of(*rp, "detail")) notes.push_back(*detail);
    if (auto why = text_of(*rp, "why")) notes.push_back(*why);
    for (std::size_t i = 0; i < notes.size(); ++i) v += (i == 0 ? " (" : "; ") + notes[i];
    if (!notes.empty()) v += ")";
    w.line("receive path", v);
  }
  if (const Json* l = field(s, "listen")) {
    std::string v = text_of(*l, "address").value_or("?");
    if (auto port = count_of(*l, "discovery_port")) v += ", discovery port " + *port;
    w.line("listening on", v);
  }
  if (const Json* win = field(s, "window")) {
    if (auto index = count_of(*win, "index")) {
      std::string v = *index;
      auto left = number_of(*win, "remaining_ms");
      auto interval = number_of(*win, "hop_interval_ms");
      if (left && interval) {
        v += " (" + human_ms(*left) + " left of " + human_ms(*interval) + ")";
      } else if (left) {
        v += " (" + human_ms(*left) + " left)";
      }
      w.line("window", v);
    }
  }
  w.line("listening ports", list_text(field(s, "listening_ports")));
  if (auto mode = text_of(s, "tcp_mode")) w.line("tcp mode", *mode);
  if (const Json* c = field(s, "counters")) {
    auto established = count_of(*c, "sessions_established");
    auto lost = count_of(*c, "sessions_lost");
    if (established && lost) w.line("sessions", *established + " established, " + *lost + " lost");
    auto in = count_of(*c, "tun_packets_in");
    auto out = count_of(*c, "tun_packets_out");
    auto sent = count_of(*c, "datagrams_sent");
    auto received = count_of(*c, "datagrams_received");
    if (in && out && sent && received) {
      w.line("packets", *in + " from the interface, " + *out + " to it; " +
                            plural(*sent, "datagram") + " sent, " + *received + " received");
    }
  }
  w.line("drops", nonzero_counters(field(s, "drops")));
  w.line("discovery", nonzero_counters(field(s, "discovery")));
  if (const Json* st = field(s, "stream")) {
    std::string v;
    auto flows = count_of(*st, "flows");
    if (flows) v = plural(*flows, "flow");
    if (auto buffered = number_of(*st, "buffered_bytes")) {
      v += (v.empty() ? "" : ", ") + human_bytes(byte_count(*buffered)) + " buffered";
    }
    auto up = number_of(*st, "bytes_up");
    auto down = number_of(*st, "bytes_down");
    if (up && down) {
      v += (v.empty() ? "" : ", ") + human_bytes(byte_count(*up)) + " up, " +
           human_bytes(byte_count(*down)) + " down";
    }
    // The memory budget, once connections draw on it.
    auto charged = number_of(*st, "memory_charged_bytes");
    auto budget = number_of(*st, "memory_budget_bytes");
    if (charged && budget && *charged > 0) {
      v += (v.empty() ? "" : ", ") + human_bytes(byte_count(*charged)) + " of the " +
           human_bytes(byte_count(*budget)) + " memory budget";
    }
    // The event counters, where non-zero (the gauges and byte counts are above).
    Json events = Json::object();
    if (st->is_object()) {
      for (const auto& [key, value] : st->items()) {
        if (key != "flows" && key != "buffered_bytes" && key != "bytes_up" && key != "bytes_down" &&
            key != "memory_charged_bytes" && key != "memory_budget_bytes") {
          events[key] = value;
        }
      }
    }
    std::string more = nonzero_counters(&events);
    if (!more.empty()) v += (v.empty() ? "" : "; ") + more;
    w.line("stream", v);
  }
  if (const Json* e = field(s, "ebpf")) {
    std::string v;
    if (auto valid = count_of(*e, "valid_ports")) {
      v = plural(*valid, "valid port");
      auto updates = count_of(*e, "valid_port_updates");
      auto failures = number_of(*e, "valid_port_update_failures");
      if (updates) {
        v += " (" + plural(*updates, "update");
        if (failures && *failures != 0)
          v += ", " + count_of(*e, "valid_port_update_failures").value() + " failed";
        v += ")";
      }
    }
    if (const Json* hooks = field(*e, "hooks"); hooks != nullptr && hooks->is_object()) {
      for (const auto& [hook, verdicts] : hooks->items()) {
        std::string counted = nonzero_counters(&verdicts);
        if (counted.empty()) continue;
        v += (v.empty() ? "" : "; ") + hook + ": " + counted;
      }
    }
    w.line("ebpf", v);
  }
  render_time(s, w);
}

// The daemon's own time (docs/control.md, `time`): one summary line, a
// warning when the system clock diverges, and a line per NTP server.
void render_time(const Json& s, Writer& w) {
  const Json* t = field(s, "time");
  if (t == nullptr || !t->is_object()) return;
  std::string v = text_of(*t, "source").value_or("?");
  if (const Json* servers = field(*t, "servers"); servers != nullptr && servers->is_array() &&
                                                  !servers->empty()) {
    std::size_t selected = 0;
    for (const auto& srv : *servers) {
      if (text_of(srv, "state") == std::optional<std::string>("selected")) ++selected;
    }
    v += ", " + std::to_string(selected) + " of " + std::to_string(servers->size()) +
         " servers selected";
  }
  if (auto c = number_of(*t, "correction_ms"); c && *c != 0) v += ", correction " + human_ms(*c);
  if (auto f = number_of(*t, "frequency_ppm"); f && *f != 0) v += ", drift " + number_text(Json(*f)) + " ppm";
  if (auto age = number_of(*t, "last_sync_age_s")) v += ", last sync " + ago(*age * 1000);
  w.line("time", v);
  const Json* warned = field(*t, "drift_warning");
  if (warned != nullptr && warned->is_boolean() && warned->get<bool>()) {
    std::string warn = "the system clock is ";
    if (auto off = number_of(*t, "system_clock_offset_ms")) warn += human_ms(std::abs(*off)) + " ";
    warn += "from our time";
    if (auto th = count_of(*t, "drift_threshold_ms")) warn += " (threshold " + *th + " ms)";
    w.line("time warning", warn);
  }
  if (const Json* servers = field(*t, "servers"); servers != nullptr && servers->is_array()) {
    for (const auto& srv : *servers) {
      std::string line = text_of(srv, "state").value_or("?");
      if (auto off = number_of(srv, "offset_ms")) line += ", offset " + human_ms(*off);
      if (auto d = number_of(srv, "delay_ms")) line += ", delay " + human_ms(*d);
      if (auto p = count_of(srv, "poll_s")) line += ", poll " + *p + " s";
      if (auto e = text_of(srv, "last_error")) line += " (" + *e + ")";
      w.line("ntp server " + text_of(srv, "server").value_or("?"), line);
    }
  }
}

void render_session(const Json& session, Writer& w) {
  std::string id = text_of(session, "id").value_or("?");
  if (auto role = text_of(session, "role")) id += " (" + *role + ")";
  w.line("session", id);
  if (auto ms = number_of(session, "established_ms_ago")) w.line("established", ago(*ms));
  if (auto ms = number_of(session, "last_received_ms_ago"))
    w.line("last packet received", ago(*ms));
  {
    std::vector<std::string> parts;
    if (auto window = count_of(session, "window")) parts.push_back("window " + *window);
    if (auto port = count_of(session, "send_port")) parts.push_back("sending to " + *port);
    std::string listen = list_text(field(session, "listen_ports"));
    if (!listen.empty()) parts.push_back("listening on " + listen);
    std::string v;
    for (const auto& p : parts) v += (v.empty() ? "" : ", ") + p;
    w.line("ports", v);
  }
  if (auto d = count_of(session, "delay_allowance"))
    w.line("delay allowance", plural(*d, "window"));
  if (const Json* pm = field(session, "path_mtu"); pm != nullptr && pm->is_object()) {
    if (auto mtu = count_of(*pm, "mtu")) {
      std::string v = *mtu;
      if (auto st = field(*pm, "state"); st != nullptr && st->is_string()) {
        v += " (";
        v += st->get<std::string>();
        v += ")";
      }
      w.line("path MTU", v);
    }
  }
  if (auto ms = number_of(session, "clock_offset_ms")) w.line("clock offset", human_ms(*ms));
  if (const Json* ts = field(session, "time_sync"); ts != nullptr && ts->is_object()) {
    std::string v;
    if (auto n = count_of(*ts, "measurements")) v = plural(*n, "measurement");
    if (auto r = count_of(*ts, "resyncs")) v += (v.empty() ? "" : ", ") + plural(*r, "resync");
    if (auto rtt = number_of(*ts, "last_rtt_ms")) v += (v.empty() ? "" : ", ") + ("rtt " + human_ms(*rtt));
    const Json* busy = field(*ts, "resyncing");
    if (busy != nullptr && busy->is_boolean() && busy->get<bool>()) v += " (resyncing)";
    w.line("time sync", v);
  }
  if (auto ms = number_of(session, "one_way_delay_ms")) w.line("one-way delay", human_ms(*ms));
  if (auto ms = number_of(session, "rtt_ms")) w.line("rtt", human_ms(*ms));
  auto rx = number_of(session, "rx_bytes");
  auto tx = number_of(session, "tx_bytes");
  if (rx && tx) {
    std::string v =
        human_bytes(byte_count(*rx)) + " received, " + human_bytes(byte_count(*tx)) + " sent";
    auto rxp = count_of(session, "rx_packets");
    auto txp = count_of(session, "tx_packets");
    if (rxp && txp) v += " (" + plural(*rxp, "packet") + " received, " + *txp + " sent)";
    w.line("transfer", v);
  }
  if (auto rejected = count_of(session, "rejected"))
    w.line("rejected", plural(*rejected, "packet"));
  auto hb_sent = count_of(session, "heartbeats_sent");
  auto hb_received = count_of(session, "heartbeats_received");
  if (hb_sent && hb_received)
    w.line("heartbeats", *hb_sent + " sent, " + *hb_received + " received");
  if (auto conns = count_of(session, "connections")) {
    std::string v = *conns;
    if (auto re = count_of(session, "retransmissions"))
      v += " (" + plural(*re, "retransmission") + ")";
    w.line("connections", v);
  }
  // One line per live stream connection, as `ss -ti` gives a socket's.
  if (const Json* list = field(session, "stream_connections"); list != nullptr && list->is_array()) {
    for (const Json& c : *list) {
      if (!c.is_object()) continue;
      auto conn_id = count_of(c, "id");
      if (!conn_id) continue;
      auto text = [&](const char* key) { return text_of(c, key).value_or(""); };
      std::string v = text("state");
      if (std::string app = text("application"); !app.empty()) {
        v += ", " + text("side") + " " + app + " -> " + text("target");
      }
      if (auto cwnd = number_of(c, "cwnd_bytes")) v += ", cwnd " + human_bytes(byte_count(*cwnd));
      if (auto fl = number_of(c, "bytes_in_flight")) v += ", " + human_bytes(byte_count(*fl)) + " in flight";
      if (auto pace = number_of(c, "pacing_bytes_per_second")) {
        char mbit[32];
        std::snprintf(mbit, sizeof mbit, "%.1f Mbit/s", *pace * 8 / 1e6);
        v += ", pacing ";
        v += mbit;
      }
      if (auto rtt = number_of(c, "srtt_ms")) v += ", srtt " + human_ms(*rtt);
      if (auto re = count_of(c, "retransmissions")) v += ", " + plural(*re, "retransmission");
      w.line("connection " + *conn_id, v);
    }
  }
}

void render_peer(const Json& peer, Writer& w) {
  std::string name = text_of(peer, "name").value_or("?");
  const Json* configured = field(peer, "configured");
  if (configured != nullptr && configured->is_boolean() && !configured->get<bool>())
    name += " (not configured)";
  w.title("peer", name, kPeerColor);
  const Json* session = field(peer, "session");
  if (session != nullptr && !session->is_object()) session = nullptr;
  auto configured_endpoint = text_of(peer, "endpoint_configured");
  std::optional<std::string> observed =
      session != nullptr ? text_of(*session, "endpoint") : std::nullopt;
  if (observed) {
    std::string v = *observed;
    if (configured_endpoint && *configured_endpoint != *observed)
      v += " (configured " + *configured_endpoint + ")";
    w.line("endpoint", v);
  } else if (configured_endpoint) {
    w.line("endpoint", *configured_endpoint + " (configured)");
  }
  w.line("virtual addresses", list_text(field(peer, "virtual_addresses")));
  w.line("routes", list_text(field(peer, "routes")));
  if (auto psk = text_of(peer, "psk")) w.line("psk", *psk);
  if (const Json* st = field(peer, "state"); st != nullptr && st->is_object()) {
    // "recovering (emergency), attempt 3, cause peer_silent" / "error: why"
    std::string v = text_of(*st, "state").value_or("?");
    auto strategy = text_of(*st, "strategy");
    if (strategy && *strategy != "none") v += " (" + *strategy + ")";
    if (auto attempts = count_of(*st, "attempts"); attempts && *attempts != "0")
      v += ", attempt " + *attempts;
    if (auto cause = text_of(*st, "cause")) v += ", cause " + *cause;
    if (auto reason = text_of(*st, "error"); reason && !reason->empty()) v += ": " + *reason;
    w.line("state", v);
  }
  if (session == nullptr) {
    w.bare("no session");
    return;
  }
  render_session(*session, w);
}

}  // namespace

std::string human_duration(double ms) {
  if (!std::isfinite(ms) || ms < 0) ms = 0;
  if (ms < 1000) return std::to_string(static_cast<long long>(std::llround(ms))) + " ms";
  constexpr double kMaxSeconds = 1e12;  // 31 700 years: past that the value is nonsense anyway
  auto total = static_cast<std::uint64_t>(std::min(ms / 1000, kMaxSeconds));
  struct Unit {
    std::uint64_t seconds;
    const char* name;
  };
  static constexpr Unit kUnits[] = {{86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}};
  std::string s;
  for (const Unit& u : kUnits) {
    std::uint64_t n = total / u.seconds;
    total %= u.seconds;
    if (n == 0) continue;
    if (!s.empty()) s += ", ";
    s += plural(std::to_string(n), u.name);
  }
  return s;
}

std::string human_bytes(std::uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes) / 1024;
  std::size_t unit = 0;
  while (v >= 1024 && unit + 1 < std::size(kUnits)) {
    v /= 1024;
    ++unit;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %s", v, kUnits[unit]);
  return buf;
}

std::string human_ms(double ms) {
  return number_text(Json(ms)) + " ms";
}

std::string render_status(const Json& status, bool color) {
  std::string out;
  Writer w(out, color);
  render_interface(status, w);
  if (const Json* peers = field(status, "peers"); peers != nullptr && peers->is_array()) {
    for (const auto& peer : *peers) {
      out += '\n';
      render_peer(peer, w);
    }
  }
  return out;
}

std::string render_reload(const Json& reload) {
  static constexpr std::pair<const char*, const char*> kLists[] = {
      {"peers_added", "peers added"},           {"peers_removed", "peers removed"},
      {"peers_changed", "peers changed"},       {"psks_added", "PSKs added"},
      {"psks_removed", "PSKs removed"},         {"psks_changed", "PSKs changed"},
      {"settings_changed", "settings changed"},
  };
  std::string s;
  for (const auto& [key, words] : kLists) {
    std::string items = list_text(field(reload, key));
    if (items.empty()) continue;
    if (!s.empty()) s += "; ";
    s += std::string(words) + " " + items;
  }
  auto ended = count_of(reload, "sessions_ended");
  if (s.empty() && (!ended || *ended == "0")) return "reloaded: nothing changed";
  if (ended) s += (s.empty() ? "" : "; ") + plural(*ended, "session") + " ended";
  return "reloaded: " + s;
}

}  // namespace buckwild::cli
