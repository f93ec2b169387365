// Pushes the encoded stream as MPEG-TS over SRT (libsrt, the GnuTLS flavour libavformat also links, so one
// libsrt lives in the process). libavformat's mpegts muxer writes into our own SRT socket in sends of at most
// 1316 bytes (7 TS packets, one SRT live payload). Runs on its own thread: the encoder only copies an access
// unit into a small ring, and when the network falls behind whole GOPs are dropped, never queued.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "native_error.h"

struct AVFormatContext;
struct AVPacket;

namespace cloudphone {

struct SrtSettings {
  bool listener = false;
  std::string host;  // caller mode
  uint16_t port = 0;
  uint32_t latency_ms = 120;
  std::string passphrase;  // empty: no encryption
  uint32_t key_length = 16;
  std::string stream_id;
};

struct SrtStats {
  bool connected = false;
  double rtt_ms = 0;
  double bandwidth_mbps = 0;
  double send_rate_mbps = 0;
  int64_t packets_sent = 0;
  int64_t packets_lost = 0;
  int64_t packets_retransmitted = 0;
  int64_t packets_dropped = 0;
  int64_t send_buffer_ms = 0;
  uint64_t connects = 0;
  uint64_t access_units_sent = 0;
  uint64_t access_units_dropped = 0;
};

class SrtSink {
 public:
  // (kind, name, reason): kind is "connected", "disconnected" or "error".
  using EventFn = std::function<void(const char* kind, const std::string& name, const std::string& reason)>;

  ~SrtSink();
  NativeError start(const SrtSettings& settings, EventFn on_event, std::function<void()> request_keyframe);
  void stop();
  // Encoder thread: copies the access unit; never blocks on the network.
  void push(const uint8_t* data, std::size_t size, int64_t pts_90khz, bool keyframe);
  SrtStats stats() const;

 private:
  struct AccessUnit {
    std::vector<uint8_t> data;
    std::size_t size = 0;
    int64_t pts = 0;
    bool keyframe = false;
  };
  static constexpr std::size_t kRingSize = 8;

  void run();
  bool connect_once(int* socket, std::string* why);
  bool open_muxer();
  void close_muxer();
  bool send_access_unit(const AccessUnit& unit);
  static int write_packet(void* opaque, uint8_t* buffer, int size);
  void sleep_interruptibly(int milliseconds);

  SrtSettings settings_;
  EventFn on_event_;
  std::function<void()> request_keyframe_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  AccessUnit ring_[kRingSize];
  std::size_t head_ = 0, count_ = 0;
  bool waiting_for_keyframe_ = true;
  AccessUnit sending_;

  std::atomic<int> socket_{-1};
  int listen_socket_ = -1;
  AVFormatContext* muxer_ = nullptr;
  AVPacket* packet_ = nullptr;
  int64_t first_pts_ = -1;
  bool send_failed_ = false;
  std::atomic<uint64_t> connects_{0}, sent_{0}, dropped_{0};
};

}  // namespace cloudphone
