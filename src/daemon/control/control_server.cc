#include "daemon/control/control_server.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <exception>
#include <nlohmann/json.hpp>
#include <utility>

namespace buckwild::daemon {
namespace {

constexpr std::size_t kReadChunk = 4096;
constexpr int kAcceptBatch = 16;  // accepts per wake-up, so other descriptors get a turn
constexpr int kBacklog = 32;
constexpr std::size_t kMaxEchoedWord = 64;  // of an unknown command, in its error
constexpr std::size_t kMaxGroupBuffer = std::size_t{1} << 20;

void run_callbacks(std::vector<std::function<void()>>& due) {
  for (auto& callback : due) {
    try {
      callback();
    } catch (const std::exception&) {
      // An after_sent callback is the daemon's own; nothing to undo here, and
      // nothing may escape into the loop.
    }
  }
}

std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\v\f";
  std::size_t first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  std::size_t last = s.find_last_not_of(kSpace);
  return s.substr(first, last - first + 1);
}

// A line's length as the limit counts it: without a trailing '\r'.
std::size_t line_length(std::string_view line) {
  return !line.empty() && line.back() == '\r' ? line.size() - 1 : line.size();
}

SysResult<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty()) return sys_fail_plain(EINVAL, "the control socket path is empty");
  if (path.size() >= sizeof addr.sun_path) {
    return sys_fail_plain(ENAMETOOLONG, "control socket path " + path + " is too long (" +
                                            std::to_string(path.size()) + " bytes; at most " +
                                            std::to_string(sizeof addr.sun_path - 1) + ")");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

std::string parent_of(const std::string& path) {
  std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

SysResult<void> ensure_parent(const std::string& path) {
  std::string dir = parent_of(path);
  if (::mkdir(dir.c_str(), 0755) == 0) {
    // mkdir's mode went through the umask; the directory is ours, so say it exactly.
    if (::chmod(dir.c_str(), 0755) != 0) return sys_fail(errno, "cannot set the mode of " + dir);
    return {};
  }
  if (errno == EEXIST) return {};
  return sys_fail(errno, "cannot create the directory " + dir + " for the control socket");
}

SysResult<gid_t> group_id(const std::string& name) {
  long hint = ::sysconf(_SC_GETGR_R_SIZE_MAX);
  std::size_t size = hint > 0 ? static_cast<std::size_t>(hint) : 1024;
  for (;;) {
    std::vector<char> buffer(size);
    group entry{};
    group* found = nullptr;
    int err = ::getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
    if (err == ERANGE && size < kMaxGroupBuffer) {
      size *= 2;
      continue;
    }
    if (err != 0)
      return sys_fail(err, "cannot look up the control socket's group \"" + name + "\"");
    if (found == nullptr) {
      return sys_fail_plain(
          ENOENT, "the control socket's group \"" + name + "\" does not exist ([control] group)");
    }
    return found->gr_gid;
  }
}

// Whether a process accepts connections on the socket at `path`. A full
// backlog (EAGAIN) means someone listens too.
SysResult<bool> someone_listens(const sockaddr_un& addr, const std::string& path) {
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!probe) return sys_fail(errno, "cannot create a socket to check " + path);
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0)
    return true;
  int err = errno;
  if (err == EAGAIN || err == EINPROGRESS) return true;
  if (err == ECONNREFUSED || err == ENOENT) return false;
  return sys_fail(err, "cannot check whether another buckwild is running on " + path);
}

// Clears the way for bind(): refuses when the path is in use or is not a socket.
SysResult<void> clear_stale(const sockaddr_un& addr, const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return sys_fail(errno, "cannot check the control socket path " + path);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return sys_fail_plain(EEXIST,
                          path +
                              " exists and is not a socket; remove it or set [control] socket "
                              "to another path");
  }
  auto listening = someone_listens(addr, path);
  if (!listening) return std::unexpected(listening.error());
  if (*listening) return sys_fail_plain(EADDRINUSE, "another buckwild is running on " + path);
  // Left by a daemon that is gone.
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return sys_fail(errno, "cannot remove the stale control socket " + path);
  }
  return {};
}

}  // namespace

std::string default_control_socket_path(std::string_view device) {
  std::string path(kControlSocketDir);
  path += '/';
  path += device;
  path += ".sock";
  return path;
}

std::string control_error_reply(std::string_view message) {
  nlohmann::ordered_json reply;
  reply["ok"] = false;
  reply["error"] = std::string(message);
  return reply.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

struct ControlServer::Client {
  std::uint64_t id = 0;
  UniqueFd fd;
  std::string in;   // received, not yet answered
  std::string out;  // replies; out[0, out_sent) already written
  std::size_t out_sent = 0;
  std::uint64_t queued_total = 0;   // reply bytes ever queued
  std::uint64_t written_total = 0;  // reply bytes ever written
  std::deque<std::pair<std::uint64_t, std::function<void()>>>
      after_sent;               // (queued_total at its end, callback)
  TimePoint last_request = 0;   // accepted, or the latest request answered
  TimePoint last_progress = 0;  // the latest write, or when replies started waiting
  bool eof = false;             // the client shut down its side
  bool closing = false;         // answer nothing more; close once `out` is written
  std::uint32_t interest = kReadable;
  TimerId timer = kNoTimer;
  TimePoint timer_at = kNever;
  std::optional<ucred> peer;  // the client's process, as the kernel saw it at connect

  std::size_t pending() const { return out.size() - out_sent; }
};

SysResult<std::unique_ptr<ControlServer>> ControlServer::create(
    EventLoop& loop, ControlOptions options, std::vector<ControlCommand> commands) {
  const std::string& path = options.path;
  auto addr = unix_address(path);
  if (!addr) return std::unexpected(addr.error());
  std::optional<gid_t> gid;
  if (options.group) {
    auto g = group_id(*options.group);
    if (!g) return std::unexpected(g.error());
    gid = *g;
  }
  if (auto made = ensure_parent(path); !made) return std::unexpected(made.error());
  if (auto cleared = clear_stale(*addr, path); !cleared) return std::unexpected(cleared.error());

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return sys_fail(errno, "cannot create the control socket");
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0) {
    int err = errno;
    if (err == EADDRINUSE) return sys_fail_plain(err, "another buckwild is running on " + path);
    return sys_fail(err, "cannot bind the control socket " + path);
  }
  // From here on the path is ours: remove it on every failure. Nobody can
  // connect before listen(), so the mode is right before anyone can use it.
  auto fail = [&path](int err, const std::string& what) {
    ::unlink(path.c_str());
    return sys_fail(err, what);
  };
  if (gid && ::chown(path.c_str(), static_cast<uid_t>(-1), *gid) != 0) {
    return fail(errno, "cannot give the control socket " + path + " to group " + *options.group);
  }
  if (::chmod(path.c_str(), gid ? 0660 : 0600) != 0) {
    return fail(errno, "cannot set the mode of the control socket " + path);
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return fail(errno, "cannot stat the control socket " + path);
  if (::listen(fd.get(), kBacklog) != 0)
    return fail(errno, "cannot listen on the control socket " + path);

  std::unique_ptr<ControlServer> server(new ControlServer(
      loop, std::move(options), std::move(commands), std::move(fd), st.st_dev, st.st_ino));
  if (auto w = server->watch_listener(); !w) {
    // The destructor unlinks the path (it is still ours).
    return std::unexpected(w.error());
  }
  return server;
}

ControlServer::ControlServer(EventLoop& loop, ControlOptions options,
                             std::vector<ControlCommand> commands, UniqueFd listener, dev_t dev,
                             ino_t ino)
    : loop_(loop),
      options_(std::move(options)),
      commands_(std::move(commands)),
      listener_(std::move(listener)),
      dev_(dev),
      ino_(ino) {
  for (const auto& c : commands_) {
    if (!command_list_.empty()) command_list_ += ", ";
    command_list_ += c.word;
  }
}

ControlServer::~ControlServer() {
  for (auto& [id, c] : clients_) {
    loop_.unwatch_fd(c->fd.get());
    if (c->timer != kNoTimer) loop_.cancel_timer(c->timer);
  }
  clients_.clear();
  if (accept_pause_timer_ != kNoTimer) loop_.cancel_timer(accept_pause_timer_);
  loop_.unwatch_fd(listener_.get());
  struct stat st {};
  if (::lstat(options_.path.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
    ::unlink(options_.path.c_str());
  }
}

std::size_t ControlServer::buffered_bytes() const {
  std::size_t total = 0;
  for (const auto& [id, c] : clients_) total += c->in.size() + c->out.size();
  return total;
}

SysResult<void> ControlServer::watch_listener() {
  return loop_.watch_fd(listener_.get(), kReadable, [this](std::uint32_t) { on_listener_ready(); });
}

void ControlServer::on_listener_ready() {
  for (int i = 0; i < kAcceptBatch; ++i) {
    int raw = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (raw < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      if (err == EINTR) continue;
      ++stats_.accept_errors;
      if (err == ECONNABORTED || err == EPROTO) continue;  // that one connection
      // Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) or
      // worse: the connection stays queued and the level-triggered loop would
      // spin on it.
      pause_accepting();
      return;
    }
    UniqueFd fd(raw);
    if (clients_.size() >= options_.limits.max_clients) {
      refuse(std::move(fd));
      continue;
    }
    auto client = std::make_unique<Client>();
    client->id = next_client_id_++;
    ucred cred{};
    socklen_t cred_len = sizeof cred;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) == 0 && cred_len == sizeof cred) {
      client->peer = cred;
    }
    client->last_request = loop_.now();
    client->last_progress = client->last_request;
    std::uint64_t id = client->id;
    auto watched = loop_.watch_fd(
        fd.get(), kReadable, [this, id](std::uint32_t events) { on_client_event(id, events); });
    if (!watched) {
      ++stats_.accept_errors;
      continue;
    }
    client->fd = std::move(fd);
    ++stats_.clients_accepted;
    Client& c = *client;
    clients_.emplace(id, std::move(client));
    arm_timer(c);
  }
}

void ControlServer::pause_accepting() {
  loop_.unwatch_fd(listener_.get());
  accept_pause_timer_ = loop_.add_timer(kAcceptPause, [this] {
    accept_pause_timer_ = kNoTimer;
    if (!watch_listener()) pause_accepting();
  });
}

void ControlServer::refuse(UniqueFd fd) {
  ++stats_.clients_refused;
  std::string line = control_error_reply(
      "too many control clients (" + std::to_string(options_.limits.max_clients) + "); try again");
  line += '\n';
  // Best effort: a fresh socket's buffer takes one short line, and if it
  // does not, the client sees the connection closed.
  (void)::send(fd.get(), line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

void ControlServer::on_client_event(std::uint64_t id, std::uint32_t events) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  std::vector<std::function<void()>> due;
  service(*it->second, events, due);
  run_callbacks(due);
}

void ControlServer::on_client_timer(std::uint64_t id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  Client& c = *it->second;
  c.timer = kNoTimer;
  c.timer_at = kNever;
  if (loop_.now() < deadline_of(c)) {
    arm_timer(c);  // the deadline moved on since it was armed
    return;
  }
  if (c.pending() > 0) {
    ++stats_.clients_dropped_slow;
  } else {
    ++stats_.clients_timed_out;
  }
  std::vector<std::function<void()>> due;
  close_client(id, due);
  run_callbacks(due);
}

void ControlServer::service(Client& c, std::uint32_t events,
                            std::vector<std::function<void()>>& due) {
  const std::uint64_t id = c.id;
  if ((events & (kReadable | kHangup)) && (c.interest & kReadable)) {
    if (!read_some(c)) {
      close_client(id, due);
      return;
    }
  }
  // Answer, write, and answer again while the kernel takes the replies at
  // once: every round with a line waiting and nothing unsent answers at least
  // one line, so this ends when the input is used up or the kernel's buffer is
  // full (then writability wakes us; a socket whose peer does not read never
  // becomes writable, so waiting lines must not wait for that).
  do {
    answer_lines(c);
    if (c.pending() > 0 && !write_some(c, due)) {
      close_client(id, due);  // the client is gone (EPIPE, ECONNRESET)
      return;
    }
  } while (c.pending() == 0 && line_waiting(c));
  if (c.pending() > options_.limits.max_unread_reply_bytes) {
    ++stats_.clients_dropped_slow;
    close_client(id, due);
    return;
  }
  bool more_input = !c.in.empty() && !c.closing;
  if (c.pending() == 0 && (c.closing || (c.eof && !more_input))) {
    close_client(id, due);
    return;
  }
  if (!settle(c)) close_client(id, due);
}

bool ControlServer::read_some(Client& c) {
  char buffer[kReadChunk];
  for (;;) {
    ssize_t n = ::recv(c.fd.get(), buffer, sizeof buffer, MSG_DONTWAIT);
    if (n > 0) {
      c.in.append(buffer, static_cast<std::size_t>(n));
      return true;
    }
    if (n == 0) {
      c.eof = true;
      return true;
    }
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

void ControlServer::answer_lines(Client& c) {
  const std::size_t max_line = options_.limits.max_line_bytes;
  std::size_t pos = 0;
  // An over-long line is answered once, and the connection closes after it.
  auto refuse_long_line = [&] {
    ++stats_.requests;
    ++stats_.bad_requests;
    queue_reply(c,
                control_error_reply("request line longer than " + std::to_string(max_line) +
                                    " bytes; closing the connection"),
                nullptr);
    c.closing = true;
    pos = c.in.size();
  };
  // With nothing unsent it always answers one line (whatever the pause is set
  // to), which service()'s loop relies on.
  while (!c.closing && (c.pending() == 0 || c.pending() < options_.limits.pause_reading_bytes)) {
    std::size_t nl = c.in.find('\n', pos);
    std::string_view rest = std::string_view(c.in).substr(pos);
    if (nl == std::string::npos) {
      // A partial line may still end in "\r" before its '\n'.
      bool too_long =
          rest.size() > max_line + 1 || (rest.size() == max_line + 1 && rest.back() != '\r');
      if (too_long) {
        refuse_long_line();
      } else if (c.eof && !rest.empty()) {
        // A last line cut off by the end of the connection is a request too.
        answer(c, rest);
        pos = c.in.size();
      }
      break;
    }
    std::string_view line = rest.substr(0, nl - pos);
    pos = nl + 1;
    if (line_length(line) > max_line) {
      refuse_long_line();
      break;
    }
    answer(c, line);
  }
  c.in.erase(0, pos);
  if (c.closing) c.in.clear();
}

void ControlServer::answer(Client& c, std::string_view raw) {
  ++stats_.requests;
  c.last_request = loop_.now();
  std::string_view request = trim(raw);
  auto bad = [&](const std::string& message) {
    ++stats_.bad_requests;
    queue_reply(c, control_error_reply(message), nullptr);
  };
  if (request.empty()) {
    bad("empty request; the commands are: " + command_list_);
    return;
  }
  std::size_t space = request.find_first_of(" \t");
  std::string_view word = request.substr(0, space);
  auto command = std::find_if(commands_.begin(), commands_.end(),
                              [word](const ControlCommand& cmd) { return cmd.word == word; });
  if (command == commands_.end()) {
    std::string shown(word.substr(0, kMaxEchoedWord));
    if (word.size() > kMaxEchoedWord) shown += "...";
    bad("unknown command \"" + shown + "\"; the commands are: " + command_list_);
    return;
  }
  if (space != std::string_view::npos && !command->takes_arguments) {
    bad("\"" + command->word + "\" takes no arguments");
    return;
  }
  ControlReply reply;
  try {
    if (c.peer) requester_ = Requester{c.peer->pid, c.peer->uid, c.peer->gid};
    reply = command->handler(request);
    requester_.reset();
  } catch (const std::exception& e) {
    requester_.reset();
    bad("internal error while answering \"" + command->word + "\": " + e.what());
    return;
  }
  if (reply.line.empty() || reply.line.find('\n') != std::string::npos) {
    bad("internal error: the reply to \"" + command->word + "\" is not one line");
    if (reply.after_sent) c.after_sent.emplace_back(c.queued_total, std::move(reply.after_sent));
    return;
  }
  queue_reply(c, std::move(reply.line), std::move(reply.after_sent));
}

void ControlServer::queue_reply(Client& c, std::string line, std::function<void()> after_sent) {
  if (c.pending() == 0) c.last_progress = loop_.now();  // the stall clock starts now
  c.out += line;
  c.out += '\n';
  c.queued_total += line.size() + 1;
  if (after_sent) c.after_sent.emplace_back(c.queued_total, std::move(after_sent));
}

bool ControlServer::write_some(Client& c, std::vector<std::function<void()>>& due) {
  while (c.pending() > 0) {
    ssize_t n =
        ::send(c.fd.get(), c.out.data() + c.out_sent, c.pending(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out_sent += static_cast<std::size_t>(n);
      c.written_total += static_cast<std::uint64_t>(n);
      c.last_progress = loop_.now();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return false;
  }
  while (!c.after_sent.empty() && c.after_sent.front().first <= c.written_total) {
    due.push_back(std::move(c.after_sent.front().second));
    c.after_sent.pop_front();
  }
  if (c.out_sent == c.out.size()) {
    c.out.clear();
    c.out_sent = 0;
  } else if (c.out_sent >= c.out.size() / 2) {
    // Keep the buffer from growing by what has already been sent.
    c.out.erase(0, c.out_sent);
    c.out_sent = 0;
  }
  return true;
}

bool ControlServer::line_waiting(const Client& c) const {
  return !c.closing && (c.in.find('\n') != std::string::npos || (c.eof && !c.in.empty()));
}

bool ControlServer::settle(Client& c) {
  // service() leaves lines waiting only behind unsent replies, which
  // writability resumes.
  bool paused = c.pending() >= options_.limits.pause_reading_bytes || line_waiting(c);
  std::uint32_t interest = 0;
  if (!c.closing && !c.eof && !paused) interest |= kReadable;
  if (c.pending() > 0) interest |= kWritable;
  if (interest != c.interest) {
    if (!loop_.update_fd(c.fd.get(), interest)) return false;
    c.interest = interest;
  }
  arm_timer(c);
  return true;
}

void ControlServer::close_client(std::uint64_t id, std::vector<std::function<void()>>& due) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  Client& c = *it->second;
  loop_.unwatch_fd(c.fd.get());
  if (c.timer != kNoTimer) loop_.cancel_timer(c.timer);
  for (auto& [end, callback] : c.after_sent) due.push_back(std::move(callback));
  clients_.erase(it);
}

TimePoint ControlServer::deadline_of(const Client& c) const {
  if (c.pending() > 0) return c.last_progress + options_.limits.write_stall_timeout;
  return c.last_request + options_.limits.idle_timeout;
}

void ControlServer::arm_timer(Client& c) {
  TimePoint deadline = deadline_of(c);
  // Armed no later than the deadline: it re-checks when it fires.
  if (c.timer != kNoTimer && c.timer_at <= deadline) return;
  if (c.timer != kNoTimer) loop_.cancel_timer(c.timer);
  std::uint64_t id = c.id;
  c.timer = loop_.add_timer_at(deadline, [this, id] { on_client_timer(id); });
  c.timer_at = deadline;
}

}  // namespace buckwild::daemon
