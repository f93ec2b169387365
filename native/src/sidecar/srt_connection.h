// One SRT receiver: its connected socket, its own MPEG-TS muxer (so it starts at a keyframe with its own
// PAT/PMT and timestamps near zero) and its own AccessUnitRing. The encoder thread only copies an access unit
// into the ring; serve() sends them from the connection's own thread, never queueing latency.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "access_unit_ring.h"

struct AVFormatContext;
struct AVPacket;

namespace cloudphone {

// 7 TS packets: the SRT live-mode payload, and the size of every send.
constexpr int kSrtPayloadSize = 1316;

// What one connection's socket reports, plus what it sent and dropped.
struct SrtConnectionStats {
  double rtt_ms = 0;
  double bandwidth_mbps = 0;
  double send_rate_mbps = 0;
  int64_t packets_sent = 0;
  int64_t packets_lost = 0;
  int64_t packets_retransmitted = 0;
  int64_t packets_dropped = 0;
  int64_t send_buffer_ms = 0;
  uint64_t access_units_sent = 0;
  uint64_t access_units_dropped = 0;

  // Adds the counters of another connection (not its momentary figures: RTT, rates, buffer).
  void add_counters(const SrtConnectionStats& other);
};

class SrtConnection {
 public:
  // Takes ownership of a connected SRT socket. request_keyframe is called when the receiver needs one (at the
  // start and after a drop).
  SrtConnection(int socket, std::string peer, std::function<void()> request_keyframe);
  ~SrtConnection();
  SrtConnection(const SrtConnection&) = delete;
  SrtConnection& operator=(const SrtConnection&) = delete;

  // Encoder thread: copies the access unit; never blocks on the network.
  void push(const uint8_t* data, std::size_t size, int64_t pts_90khz, bool keyframe);
  // Sends until the receiver goes away or stop() is called; returns why it ended. Runs on one thread.
  std::string serve(const std::atomic<bool>& running);
  // Any thread: makes serve() return soon.
  void stop();
  bool finished() const { return finished_.load(); }
  const std::string& peer() const { return peer_; }
  SrtConnectionStats stats() const;

 private:
  bool open_muxer();
  void close_muxer();
  bool send_access_unit(const QueuedAccessUnit& unit);
  static int write_packet(void* opaque, uint8_t* buffer, int size);

  const int socket_;
  const std::string peer_;
  AccessUnitRing ring_;
  QueuedAccessUnit sending_;

  AVFormatContext* muxer_ = nullptr;
  AVPacket* packet_ = nullptr;
  int64_t first_pts_ = -1;
  bool send_failed_ = false;
  std::atomic<bool> finished_{false};
  std::atomic<uint64_t> sent_{0};
};

}  // namespace cloudphone
