// Pushes the encoded stream as MPEG-TS over SRT (libsrt, the GnuTLS flavour libavformat also links, so one
// libsrt lives in the process). As a caller it keeps one connection to its receiver, reconnecting with backoff.
// As a listener it takes up to max_receivers at once, each its own SrtConnection (socket, muxer, ring, thread),
// and refuses one more in the handshake; the listening socket and its poller live as long as the sink, so an
// idle listener costs a wake-up every 200 ms and nothing else.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/socket.h>

#include "native_error.h"
#include "srt_connection.h"

namespace cloudphone {

struct SrtSettings {
  bool listener = false;
  std::string host;  // caller mode
  uint16_t port = 0;
  uint32_t latency_ms = 120;
  std::string passphrase;  // empty: no encryption (caller mode only)
  uint32_t key_length = 16;
  std::string stream_id;
  uint32_t max_receivers = 4;  // listener mode
};

// The receivers together: the worst of their link figures (the one encode must suit the slowest), the sum of
// their counters, including those of receivers that have left (so counters never go backwards).
struct SrtStats {
  uint32_t receivers = 0;  // connected now
  uint64_t connects = 0;
  uint64_t refused = 0;
  uint64_t sockets_created = 0;
  SrtConnectionStats link;
};

class SrtSink {
 public:
  // (kind, name, reason): kind is "connected", "disconnected" or "error".
  using EventFn = std::function<void(const char* kind, const std::string& name, const std::string& reason)>;

  ~SrtSink();
  NativeError start(const SrtSettings& settings, EventFn on_event, std::function<void()> request_keyframe);
  void stop();
  // Encoder thread: copies the access unit to every receiver; never blocks on the network.
  void push(const uint8_t* data, std::size_t size, int64_t pts_90khz, bool keyframe);
  SrtStats stats() const;

 private:
  struct Served {
    std::unique_ptr<SrtConnection> connection;
    std::thread thread;  // listener mode; a caller's one connection is served on thread_
  };

  void run_caller();
  void run_listener();
  int configured_socket(std::string* why);
  bool connect_out(int* socket, std::string* why);
  bool open_listener(std::string* why);
  void accept_receiver();
  void serve_here(std::unique_ptr<SrtConnection> connection);
  void reap(bool all);
  static int on_handshake(void* opaque, int socket, int version, const struct sockaddr* peer, const char* stream_id);
  void sleep_interruptibly(int milliseconds);

  SrtSettings settings_;
  EventFn on_event_;
  std::function<void()> request_keyframe_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::mutex sleep_mutex_;
  std::condition_variable wake_;

  // The receivers being served; the encoder thread walks it under this lock.
  mutable std::mutex receivers_mutex_;
  std::vector<Served> receivers_;
  SrtConnectionStats totals_;  // counters of receivers that have left

  int listen_socket_ = -1;
  int poller_ = -1;
  std::atomic<uint32_t> live_{0};
  std::atomic<uint64_t> connects_{0}, refused_{0}, sockets_created_{0};
};

}  // namespace cloudphone
