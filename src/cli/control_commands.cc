#include "cli/control_commands.h"

#include "daemon/control/prometheus.h"

#include <poll.h>
#include <sys/stat.h>

#include <expected>
#include <vector>

#include "cli/commands.h"
#include "cli/control_text.h"

namespace buckwild::cli {
namespace {

struct Targets {
  std::vector<std::string> paths;
  bool named = false;  // a DEVICE or a socket was given
};

// The sockets `command` goes to, or the sentence saying why there is none.
// `one`: exactly one is needed (reload, stop).
std::expected<Targets, std::string> targets_of(const ControlTarget& t, std::string_view command,
                                               bool one) {
  if (!t.socket.empty()) return Targets{{t.socket}, true};
  if (!t.device.empty()) {
    if (t.device.find('/') != std::string::npos || t.device == "." || t.device == "..") {
      return std::unexpected("\"" + t.device +
                             "\" is not a device name (give --socket PATH for a path)");
    }
    return Targets{{t.socket_dir + "/" + t.device + ".sock"}, true};
  }
  std::vector<std::string> found = list_control_sockets(t.socket_dir);
  if (found.empty())
    return std::unexpected("no buckwild tunnel is running (no sockets in " + t.socket_dir + ")");
  if (one && found.size() > 1) {
    std::string names;
    for (const auto& p : found) names += (names.empty() ? "" : ", ") + device_of_socket(p);
    return std::unexpected("several buckwild tunnels are running (" + names +
                           "); name one: buckwild " + std::string(command) + " " +
                           device_of_socket(found.front()));
  }
  return Targets{std::move(found), false};
}

// Sends `request` and parses the reply; an error sentence if there is no JSON
// object to read. The object may still say "ok": false.
std::expected<Json, std::string> ask(const std::string& path, std::string_view request,
                                     Duration timeout) {
  auto line = control_request(path, request, timeout);
  if (!line) return std::unexpected(line.error().message);
  Json reply = Json::parse(*line, nullptr, false);
  if (reply.is_discarded() || !reply.is_object()) {
    std::string shown = line->substr(0, 200);
    return std::unexpected(path + ": the reply is not a JSON object: " + shown);
  }
  return reply;
}

bool succeeded(const Json& reply) {
  auto ok = reply.find("ok");
  return ok != reply.end() && ok->is_boolean() && ok->get<bool>();
}

std::string error_text(const Json& reply) {
  auto e = reply.find("error");
  if (e != reply.end() && e->is_string()) return e->get<std::string>();
  return "the daemon refused without saying why";
}

std::string dump(const Json& j) {
  return j.dump(2, ' ', false, Json::error_handler_t::replace);
}

// The socket's identity, to tell "gone" from "another daemon's now".
std::optional<std::pair<dev_t, ino_t>> identity(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
  return std::pair{st.st_dev, st.st_ino};
}

}  // namespace

int status(const ControlTarget& target, StatusFormat format, bool color, std::ostream& out,
           std::ostream& err) {
  const bool json = format != StatusFormat::kText;
  auto targets = targets_of(target, "status", false);
  if (!targets) {
    err << "buckwild status: " << targets.error() << '\n';
    return kExitFailure;
  }
  Json all = Json::array();
  std::string text;
  bool failed = false;
  for (const auto& path : targets->paths) {
    auto reply = ask(path, "status", target.timeout);
    if (!reply) {
      err << "buckwild status: " << reply.error() << '\n';
      failed = true;
      continue;
    }
    if (!succeeded(*reply)) {
      err << "buckwild status: " << device_of_socket(path) << ": " << error_text(*reply) << '\n';
      failed = true;
      continue;
    }
    auto s = reply->find("status");
    if (s == reply->end() || !s->is_object()) {
      err << "buckwild status: " << path << ": the reply has no status object\n";
      failed = true;
      continue;
    }
    if (json) {
      all.push_back(std::move(*s));
    } else {
      if (!text.empty()) text += '\n';
      text += render_status(*s, color);
    }
  }
  if (format == StatusFormat::kPrometheus) {
    // The renderer takes the daemon's own JSON type (keys sorted, not kept in order).
    std::vector<nlohmann::json> docs;
    for (const Json& d : all) docs.push_back(nlohmann::json::parse(d.dump()));
    out << daemon::render_prometheus(docs);
  } else if (json) {
    if (targets->named) {
      if (!all.empty()) out << dump(all.front()) << '\n';
    } else {
      out << dump(all) << '\n';
    }
  } else {
    out << text;
  }
  out.flush();
  err.flush();
  return failed ? kExitFailure : kExitOk;
}

int reload(const ControlTarget& target, std::ostream& out, std::ostream& err) {
  auto targets = targets_of(target, "reload", true);
  if (!targets) {
    err << "buckwild reload: " << targets.error() << '\n';
    return kExitFailure;
  }
  const std::string& path = targets->paths.front();
  auto reply = ask(path, "reload", target.timeout);
  if (!reply) {
    err << "buckwild reload: " << reply.error() << '\n';
    return kExitFailure;
  }
  if (!succeeded(*reply)) {
    err << "buckwild reload: " << device_of_socket(path) << ": " << error_text(*reply) << '\n';
    auto problems = reply->find("problems");
    if (problems != reply->end() && problems->is_array()) {
      for (const auto& p : *problems) {
        if (p.is_string()) err << p.get<std::string>() << '\n';
      }
    }
    err.flush();
    return kExitFailure;
  }
  auto summary = reply->find("reload");
  out << render_reload(summary != reply->end() ? *summary : Json::object()) << '\n';
  out.flush();
  return kExitOk;
}

int rekey(const ControlTarget& target, const std::string& peer, std::ostream& out, std::ostream& err) {
  auto targets = targets_of(target, "rekey", true);
  if (!targets) {
    err << "buckwild rekey: " << targets.error() << '\n';
    return kExitFailure;
  }
  if (peer.empty() || peer.find_first_of(" \t\r\n") != std::string::npos) {
    err << "buckwild rekey: PEER must be one word (a peer name or a session id)\n";
    return kExitFailure;
  }
  const std::string& path = targets->paths.front();
  auto reply = ask(path, "rekey " + peer, target.timeout);
  if (!reply) {
    err << "buckwild rekey: " << reply.error() << '\n';
    return kExitFailure;
  }
  if (!succeeded(*reply)) {
    err << "buckwild rekey: " << device_of_socket(path) << ": " << error_text(*reply) << '\n';
    return kExitFailure;
  }
  const Json r = reply->value("rekey", Json::object());
  out << device_of_socket(path) << ": rekey of " << r.value("peer", peer) << "'s session "
      << r.value("session", std::string()) << " requested (key epoch "
      << r.value("key_epoch", 0u) << (r.value("already_under_way", false) ? ", one already under way" : "")
      << ")\n";
  out.flush();
  return kExitOk;
}

int stop(const ControlTarget& target, std::ostream& out, std::ostream& err, Duration wait) {
  auto targets = targets_of(target, "stop", true);
  if (!targets) {
    err << "buckwild stop: " << targets.error() << '\n';
    return kExitFailure;
  }
  const std::string& path = targets->paths.front();
  const std::string device = device_of_socket(path);
  auto before = identity(path);
  auto reply = ask(path, "stop", target.timeout);
  if (!reply) {
    err << "buckwild stop: " << reply.error() << '\n';
    return kExitFailure;
  }
  if (!succeeded(*reply)) {
    err << "buckwild stop: " << device << ": " << error_text(*reply) << '\n';
    return kExitFailure;
  }
  out << device << ": stopping\n";
  out.flush();
  // The daemon removes its socket as it exits; a new one at the path (a
  // restart) is another daemon, so this one is gone too.
  const TimePoint deadline = monotonic_now() + wait;
  for (;;) {
    auto now_there = identity(path);
    if (!now_there || now_there != before) return kExitOk;
    if (monotonic_now() >= deadline) break;
    ::poll(nullptr, 0, 20);
  }
  err << "buckwild stop: " << device << ": still running after " << duration_text(wait) << " ("
      << path << " is still there)\n";
  return kExitFailure;
}

}  // namespace buckwild::cli
