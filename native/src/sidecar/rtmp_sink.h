// Pushes the encoded stream over RTMP (or RTMPS) to one ingest: a CDN, a live service or a media server. It
// uses libavformat's FLV muxer and RTMP protocol on its own thread (cp-rtmp), fed by an AccessUnitRing that the
// encoder thread fills with the picture already in AVCC form (avcc.h), so the muxer neither converts nor
// allocates per picture. It reconnects with backoff; a session that ends within kHeldSession of starting counts
// as failed and does not reset the backoff: servers refuse a wrong stream key by accepting the publish and
// hanging up soon after, and a sidecar must not hammer them. The stream key is never reported: every message
// that leaves here has it replaced, and libavformat's log lines from this thread are kept, not printed.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "access_unit_ring.h"
#include "encoded_unit.h"
#include "native_error.h"

struct AVFormatContext;
struct AVIOContext;
struct AVPacket;

namespace cloudphone {

struct RtmpSettings {
  std::string url;  // rtmp:// or rtmps://, the stream key included
  std::string key;  // the stream key, replaced in every message (may be empty)
};

struct RtmpStats {
  bool publishing = false;
  uint64_t sessions = 0;         // connections that began publishing
  uint64_t failed_sessions = 0;  // attempts that failed, and sessions that ended within kHeldSession
  uint64_t access_units_sent = 0;
  uint64_t access_units_dropped = 0;
  uint64_t bytes_sent = 0;  // FLV handed to the RTMP protocol
};

class RtmpSink {
 public:
  // (kind, reason): kind is "connected", "disconnected" or "error" (an attempt failed).
  using EventFn = std::function<void(const char* kind, const std::string& reason)>;
  static constexpr std::chrono::seconds kHeldSession{10};

  ~RtmpSink();
  NativeError start(const RtmpSettings& settings, EventFn on_event, std::function<void()> request_keyframe);
  void stop();
  // Encoder thread: converts the Annex-B access unit into the ring; never blocks on the network.
  void push(const EncodedUnit& unit);
  RtmpStats stats() const;

 private:
  void run();
  bool connect(std::string* why);
  // Sends what the ring holds until the session ends or the sink stops; returns why it ended.
  std::string publish();
  bool start_muxer(const QueuedAccessUnit& keyframe, std::string* why);
  bool send(const QueuedAccessUnit& unit);
  void disconnect(bool clean);
  // libavformat's failure as text: its last log line from this thread, with the error code's own words.
  std::string failure(int code);
  std::string without_key(std::string text) const;
  void sleep_interruptibly(std::chrono::milliseconds delay);
  static int interrupted(void* opaque);

  RtmpSettings settings_;
  EventFn on_event_;
  std::unique_ptr<AccessUnitRing> ring_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::mutex sleep_mutex_;
  std::condition_variable wake_;

  // The session, touched only by the sink's thread.
  AVIOContext* io_ = nullptr;
  AVFormatContext* muxer_ = nullptr;
  bool muxer_started_ = false;  // its header is written
  AVPacket* packet_ = nullptr;
  QueuedAccessUnit sending_;
  std::vector<uint8_t> configuration_, candidate_;  // AVCDecoderConfigurationRecords: sent, and this keyframe's
  int64_t first_pts_ = -1, last_ms_ = 0;
  std::string last_log_line_;

  std::atomic<bool> publishing_{false};
  std::atomic<std::chrono::steady_clock::time_point> interrupt_after_{std::chrono::steady_clock::time_point::max()};
  std::atomic<uint64_t> sessions_{0}, failed_sessions_{0}, sent_{0}, bytes_sent_{0};
};

}  // namespace cloudphone
