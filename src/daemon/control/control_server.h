// The control socket (docs/control.md): a Unix stream socket served from the
// event loop, one request line in, one JSON reply line out.
//
// The server owns the framing and the limits; it knows the commands only by
// word. Everything a client can do is bounded: a request line is at most
// `max_line_bytes`, at most `max_clients` are connected (one more is sent an
// error line and closed), a client that sends nothing for `idle_timeout` is
// closed, and one whose replies pile up unread (more than
// `max_unread_reply_bytes` in our buffer, or no write progress for
// `write_stall_timeout`) is dropped. While a client has `pause_reading_bytes`
// of replies unsent, its further requests wait in the kernel (backpressure):
// per client the server holds at most one read chunk plus one line of input
// and `pause_reading_bytes` plus one reply of output.
//
// Nothing here blocks, and nothing a client sends reaches a handler other than
// as one trimmed line whose first word names a registered command.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/common/time.h"
#include "daemon/os/event_loop.h"
#include "daemon/os/sys_error.h"
#include "daemon/os/unique_fd.h"

namespace buckwild::daemon {

// Where the sockets live by default: /run/buckwild/<device>.sock.
inline constexpr std::string_view kControlSocketDir = "/run/buckwild";

// "/run/buckwild/" + device + ".sock".
std::string default_control_socket_path(std::string_view device);

// The reply to any failed request: {"ok":false,"error":MESSAGE} (no newline).
// `message` need not be valid UTF-8: invalid bytes are replaced.
std::string control_error_reply(std::string_view message);

struct ControlLimits {
  std::size_t max_line_bytes = 4096;  // a request, without its '\n'
  std::size_t max_clients = 16;
  std::size_t max_unread_reply_bytes = std::size_t{4} << 20;
  std::size_t pause_reading_bytes = std::size_t{64} << 10;  // backpressure
  Duration idle_timeout = seconds(10);                      // no request, nothing to send
  Duration write_stall_timeout = seconds(5);                // replies waiting, none written
};

struct ControlOptions {
  std::string path;                  // the socket, e.g. /run/buckwild/bw0.sock
  std::optional<std::string> group;  // set: mode 0660 and this group; else 0600
  ControlLimits limits;
};

// What a command handler answers.
struct ControlReply {
  std::string line;  // one JSON object, without a newline (it must hold none)
  // Called once the reply has been handed to the kernel, or the client is gone
  // before that (so it runs either way, on the loop, after the handler
  // returned). For `stop`: stop the loop only after the reply left. It must not
  // destroy the server. Not called when the server is destroyed first.
  std::function<void()> after_sent;
};

struct ControlCommand {
  std::string word;  // "status"
  // Gets the whole trimmed request line (the word and anything after it);
  // called on the loop. An exception it throws becomes an error reply.
  std::function<ControlReply(std::string_view request)> handler;
  // False: a request with anything after the word is answered with an error
  // and the handler is not called (docs/control.md: a command word, nothing else).
  bool takes_arguments = false;
};

// Counted since the server started; for the status output.
struct ControlStats {
  std::uint64_t clients_accepted = 0;
  std::uint64_t clients_refused = 0;       // over max_clients: sent an error, closed
  std::uint64_t clients_dropped_slow = 0;  // replies left unread: over the limit or stalled
  std::uint64_t clients_timed_out = 0;     // idle: no request for idle_timeout
  std::uint64_t requests = 0;              // every request line answered, bad ones included
  std::uint64_t bad_requests = 0;          // empty, unknown, too long, arguments, handler threw
  std::uint64_t accept_errors = 0;         // accept() failed (out of descriptors: paused)
};

class ControlServer {
 public:
  // Pause after accept() runs out of descriptors or memory, as the stream listener does.
  static constexpr Duration kAcceptPause = milliseconds(100);

  // Creates the socket at options.path and serves it on `loop`:
  //  - creates the parent directory (mode 0755) if it is missing; only that
  //    last component, not the ones above it;
  //  - if something is at the path already: a socket another process answers
  //    on refuses the start (EADDRINUSE, "another buckwild is running on
  //    PATH"); a socket nobody answers on (left by a daemon that died) is
  //    removed; anything that is not a socket refuses the start (EEXIST);
  //  - binds, sets mode 0600 (or 0660 and options.group, looked up with
  //    getgrnam_r: an unknown group fails with a sentence naming it), then
  //    listens, so nobody can connect before the mode is right.
  // Fails with the errno and a sentence naming the path; leaves nothing behind
  // on failure. `commands` are matched by exact word; the reply to an unknown
  // one lists their words in this order. `loop` must outlive the server.
  static SysResult<std::unique_ptr<ControlServer>> create(EventLoop& loop, ControlOptions options,
                                                          std::vector<ControlCommand> commands);

  // Closes every client (their after_sent callbacks are not called), stops
  // watching, and unlinks the socket path if it is still the socket this
  // server bound (same device and inode): a newer daemon's socket is left alone.
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  const std::string& path() const { return options_.path; }
  const ControlStats& stats() const { return stats_; }
  // Who sent the request being handled (SO_PEERCRED at accept), for the audit
  // log; nullopt outside a handler or when the kernel did not say.
  struct Requester {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
  };
  const std::optional<Requester>& requester() const { return requester_; }
  std::size_t clients() const { return clients_.size(); }
  // Bytes held in every client's input and output buffers now.
  std::size_t buffered_bytes() const;

 private:
  struct Client;

  ControlServer(EventLoop& loop, ControlOptions options, std::vector<ControlCommand> commands,
                UniqueFd listener, dev_t dev, ino_t ino);
  SysResult<void> watch_listener();
  void on_listener_ready();
  void pause_accepting();
  void refuse(UniqueFd fd);
  void on_client_event(std::uint64_t id, std::uint32_t events);
  void on_client_timer(std::uint64_t id);
  // Reads, answers and writes what it can; closes the client when it is done or
  // broken. Collects after_sent callbacks that are due into `due`.
  void service(Client& c, std::uint32_t events, std::vector<std::function<void()>>& due);
  bool read_some(Client& c);
  void answer_lines(Client& c);
  void answer(Client& c, std::string_view line);
  void queue_reply(Client& c, std::string line, std::function<void()> after_sent);
  bool write_some(Client& c, std::vector<std::function<void()>>& due);
  // A complete line (or a last one at the end of input) not answered yet.
  bool line_waiting(const Client& c) const;
  // Sets the client's interest and timer; false if the loop refused.
  bool settle(Client& c);
  void close_client(std::uint64_t id, std::vector<std::function<void()>>& due);
  TimePoint deadline_of(const Client& c) const;
  void arm_timer(Client& c);

  EventLoop& loop_;
  ControlOptions options_;
  std::vector<ControlCommand> commands_;
  std::string command_list_;  // "status, reload, stop"
  std::optional<Requester> requester_;  // set while a handler runs
  UniqueFd listener_;
  dev_t dev_;
  ino_t ino_;
  TimerId accept_pause_timer_ = kNoTimer;
  std::unordered_map<std::uint64_t, std::unique_ptr<Client>> clients_;
  std::uint64_t next_client_id_ = 1;
  ControlStats stats_;
};

}  // namespace buckwild::daemon
