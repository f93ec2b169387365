#include "srt_sink.h"

#include <netdb.h>
#include <pthread.h>
#include <srt/srt.h>

#include <algorithm>
#include <chrono>
#include <cstring>

extern "C" {
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
}

namespace cloudphone {
namespace {

constexpr int kPayloadSize = 1316;  // 7 TS packets: the SRT live-mode payload

std::string srt_error_text() { return srt_getlasterror_str(); }

bool set_option(int socket, SRT_SOCKOPT option, const void* value, int size) {
  return srt_setsockflag(socket, option, value, size) != SRT_ERROR;
}

}  // namespace

SrtSink::~SrtSink() { stop(); }

NativeError SrtSink::start(const SrtSettings& settings, EventFn on_event, std::function<void()> request_keyframe) {
  if (!settings.listener && settings.host.empty()) return error("ConfigError", "SRT caller mode needs a host");
  if (settings.port == 0) return error("ConfigError", "SRT needs a port");
  if (!settings.passphrase.empty() && (settings.passphrase.size() < 10 || settings.passphrase.size() > 79))
    return error("ConfigError", "SRT passphrase must be 10 to 79 characters");
  if (settings.key_length != 16 && settings.key_length != 24 && settings.key_length != 32)
    return error("ConfigError", "SRT key length must be 16, 24 or 32");
  static std::once_flag started;
  std::call_once(started, [] { srt_startup(); });
  settings_ = settings;
  on_event_ = std::move(on_event);
  request_keyframe_ = std::move(request_keyframe);
  for (auto& unit : ring_) unit.data.reserve(256 * 1024);
  sending_.data.reserve(256 * 1024);
  packet_ = av_packet_alloc();
  running_ = true;
  thread_ = std::thread([this] { run(); });
  return {};
}

void SrtSink::stop() {
  if (!running_.exchange(false)) return;
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  av_packet_free(&packet_);
}

void SrtSink::push(const uint8_t* data, std::size_t size, int64_t pts_90khz, bool keyframe) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (socket_.load() < 0) return;  // nobody to send to: nothing to keep
  if (waiting_for_keyframe_ && !keyframe) {
    dropped_++;
    return;
  }
  if (count_ == kRingSize) {
    // The network fell a whole ring behind: drop what is queued and restart at the next keyframe, so the
    // receiver sees a short freeze instead of a growing delay.
    dropped_ += count_ + 1;
    count_ = 0;
    waiting_for_keyframe_ = true;
    if (request_keyframe_) request_keyframe_();
    return;
  }
  waiting_for_keyframe_ = false;
  AccessUnit& unit = ring_[(head_ + count_) % kRingSize];
  if (unit.data.size() < size) unit.data.resize(size);  // grows only at a new largest frame
  std::memcpy(unit.data.data(), data, size);
  unit.size = size;
  unit.pts = pts_90khz;
  unit.keyframe = keyframe;
  count_++;
  wake_.notify_one();
}

void SrtSink::sleep_interruptibly(int milliseconds) {
  std::unique_lock<std::mutex> lock(mutex_);
  wake_.wait_for(lock, std::chrono::milliseconds(milliseconds), [this] { return !running_.load(); });
}

bool SrtSink::connect_once(int* out, std::string* why) {
  int s = srt_create_socket();
  if (s == SRT_INVALID_SOCK) {
    *why = srt_error_text();
    return false;
  }
  SRT_TRANSTYPE live = SRTT_LIVE;
  int latency = static_cast<int>(settings_.latency_ms);
  int connect_timeout = 1000;
  int payload = kPayloadSize;
  int key_length = static_cast<int>(settings_.key_length);
  int send_timeout = 200;
  bool ok = set_option(s, SRTO_TRANSTYPE, &live, sizeof live) && set_option(s, SRTO_LATENCY, &latency, sizeof latency) &&
            set_option(s, SRTO_CONNTIMEO, &connect_timeout, sizeof connect_timeout) &&
            set_option(s, SRTO_PAYLOADSIZE, &payload, sizeof payload) &&
            set_option(s, SRTO_SNDTIMEO, &send_timeout, sizeof send_timeout);
  if (ok && !settings_.passphrase.empty()) {
    ok = set_option(s, SRTO_PBKEYLEN, &key_length, sizeof key_length) &&
         set_option(s, SRTO_PASSPHRASE, settings_.passphrase.data(), static_cast<int>(settings_.passphrase.size()));
  }
  if (ok && !settings_.stream_id.empty())
    ok = set_option(s, SRTO_STREAMID, settings_.stream_id.data(), static_cast<int>(settings_.stream_id.size()));
  if (!ok) {
    *why = srt_error_text();
    srt_close(s);
    return false;
  }

  if (settings_.listener) {
    // One receiver at a time; the listening socket stays open between receivers.
    if (listen_socket_ < 0) {
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_port = htons(settings_.port);
      address.sin_addr.s_addr = htonl(INADDR_ANY);
      if (srt_bind(s, reinterpret_cast<sockaddr*>(&address), sizeof address) == SRT_ERROR || srt_listen(s, 1) == SRT_ERROR) {
        *why = srt_error_text();
        srt_close(s);
        return false;
      }
      listen_socket_ = s;
    } else {
      srt_close(s);
    }
    int poller = srt_epoll_create();
    int events = SRT_EPOLL_IN;
    srt_epoll_add_usock(poller, listen_socket_, &events);
    SRTSOCKET ready[1];
    int ready_count = 1;
    int n = srt_epoll_wait(poller, ready, &ready_count, nullptr, nullptr, 200, nullptr, nullptr, nullptr, nullptr);
    srt_epoll_release(poller);
    if (n <= 0) {
      *why = "";
      return false;
    }
    sockaddr_storage peer{};
    int peer_length = sizeof peer;
    int accepted = srt_accept(listen_socket_, reinterpret_cast<sockaddr*>(&peer), &peer_length);
    if (accepted == SRT_INVALID_SOCK) {
      *why = srt_error_text();
      return false;
    }
    srt_setsockflag(accepted, SRTO_SNDTIMEO, &send_timeout, sizeof send_timeout);
    *out = accepted;
    return true;
  }

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* resolved = nullptr;
  std::string port = std::to_string(settings_.port);
  int rc = getaddrinfo(settings_.host.c_str(), port.c_str(), &hints, &resolved);
  if (rc != 0 || !resolved) {
    *why = "cannot resolve " + settings_.host + ": " + gai_strerror(rc);
    srt_close(s);
    return false;
  }
  rc = srt_connect(s, resolved->ai_addr, static_cast<int>(resolved->ai_addrlen));
  freeaddrinfo(resolved);
  if (rc == SRT_ERROR) {
    int reason = srt_getrejectreason(s);
    *why = srt_error_text();
    if (reason != SRT_REJ_UNKNOWN) *why += std::string(" (") + srt_rejectreason_str(reason) + ")";
    srt_close(s);
    return false;
  }
  *out = s;
  return true;
}

int SrtSink::write_packet(void* opaque, uint8_t* buffer, int size) {
  auto* self = static_cast<SrtSink*>(opaque);
  for (int offset = 0; offset < size; offset += kPayloadSize) {
    int chunk = std::min(kPayloadSize, size - offset);
    if (srt_sendmsg2(self->socket_.load(), reinterpret_cast<const char*>(buffer + offset), chunk, nullptr) == SRT_ERROR) {
      self->send_failed_ = true;
      return AVERROR(EIO);
    }
  }
  return size;
}

bool SrtSink::open_muxer() {
  if (avformat_alloc_output_context2(&muxer_, nullptr, "mpegts", nullptr) < 0 || !muxer_) return false;
  AVStream* stream = avformat_new_stream(muxer_, nullptr);
  if (!stream) return false;
  stream->time_base = AVRational{1, 90000};
  stream->codecpar->codec_type = AVMEDIA_TYPE_VIDEO;
  stream->codecpar->codec_id = AV_CODEC_ID_H264;
  auto* io_buffer = static_cast<uint8_t*>(av_malloc(kPayloadSize));
  AVIOContext* io = avio_alloc_context(io_buffer, kPayloadSize, 1, this, nullptr, &SrtSink::write_packet, nullptr);
  if (!io) {
    av_free(io_buffer);
    return false;
  }
  io->max_packet_size = kPayloadSize;
  muxer_->pb = io;
  muxer_->flags |= AVFMT_FLAG_CUSTOM_IO | AVFMT_FLAG_FLUSH_PACKETS;
  // No mux delay: a frame goes out as soon as it is encoded; the receiver's SRT latency is the only buffer.
  muxer_->max_delay = 0;
  AVDictionary* options = nullptr;
  av_dict_set(&options, "pcr_period", "20", 0);
  av_dict_set(&options, "mpegts_flags", "resend_headers", 0);
  // Write the PES length whenever a frame fits (under 64 KiB): a receiver then knows a frame is whole on its
  // last byte, instead of at the start of the next frame, one frame interval later.
  av_dict_set(&options, "omit_video_pes_length", "0", 0);
  int rc = avformat_write_header(muxer_, &options);
  av_dict_free(&options);
  first_pts_ = -1;
  return rc >= 0;
}

void SrtSink::close_muxer() {
  if (!muxer_) return;
  if (muxer_->pb) {
    av_freep(&muxer_->pb->buffer);
    avio_context_free(&muxer_->pb);
  }
  avformat_free_context(muxer_);
  muxer_ = nullptr;
}

bool SrtSink::send_access_unit(const AccessUnit& unit) {
  if (first_pts_ < 0) first_pts_ = unit.pts;
  // Timestamps start near zero on each connection; 0.1 s of headroom keeps DTS above the first PCR.
  int64_t pts = unit.pts - first_pts_ + 9000;
  packet_->data = const_cast<uint8_t*>(unit.data.data());
  packet_->size = static_cast<int>(unit.size);
  packet_->pts = pts;
  packet_->dts = pts;
  packet_->stream_index = 0;
  packet_->flags = unit.keyframe ? AV_PKT_FLAG_KEY : 0;
  packet_->buf = nullptr;  // not reference-counted: av_write_frame then neither copies nor allocates
  send_failed_ = false;
  int rc = av_write_frame(muxer_, packet_);
  return rc >= 0 && !send_failed_;
}

void SrtSink::run() {
  pthread_setname_np(pthread_self(), "cp-srt");
  int backoff_ms = 250;
  std::string last_failure;
  while (running_) {
    int s = -1;
    std::string why;
    if (!connect_once(&s, &why)) {
      if (!why.empty() && why != last_failure && on_event_) on_event_("error", "SrtError", why);
      if (!why.empty()) last_failure = why;
      if (!settings_.listener) {
        sleep_interruptibly(backoff_ms);
        backoff_ms = std::min(backoff_ms * 2, 5000);
      }
      continue;
    }
    if (!open_muxer()) {
      srt_close(s);
      if (on_event_) on_event_("error", "SrtError", "cannot start the MPEG-TS muxer");
      sleep_interruptibly(1000);
      close_muxer();
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      count_ = 0;
      waiting_for_keyframe_ = true;
      socket_ = s;
    }
    backoff_ms = 250;
    last_failure.clear();
    connects_++;
    if (on_event_) on_event_("connected", "", "");
    if (request_keyframe_) request_keyframe_();

    std::string lost = "receiver went away";
    while (running_) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait_for(lock, std::chrono::milliseconds(100), [this] { return count_ > 0 || !running_; });
        if (!running_) break;
        if (count_ == 0) {
          SRT_SOCKSTATUS status = srt_getsockstate(s);
          if (status == SRTS_BROKEN || status == SRTS_CLOSED || status == SRTS_NONEXIST) break;
          continue;
        }
        // Swap, not copy: the ring slot takes the spare buffer, so nothing is allocated.
        std::swap(sending_, ring_[head_]);
        head_ = (head_ + 1) % kRingSize;
        count_--;
      }
      if (!send_access_unit(sending_)) {
        lost = srt_error_text();
        break;
      }
      sent_++;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      socket_ = -1;
      count_ = 0;
    }
    close_muxer();
    srt_close(s);
    if (running_ && on_event_) on_event_("disconnected", "SrtError", lost);
  }
  if (listen_socket_ >= 0) srt_close(listen_socket_);
  listen_socket_ = -1;
}

SrtStats SrtSink::stats() const {
  SrtStats out;
  out.connects = connects_;
  out.access_units_sent = sent_;
  out.access_units_dropped = dropped_;
  int s = socket_.load();
  SRT_TRACEBSTATS perf{};
  if (s >= 0 && srt_bstats(s, &perf, 0) != SRT_ERROR) {
    out.connected = true;
    out.rtt_ms = perf.msRTT;
    out.bandwidth_mbps = perf.mbpsBandwidth;
    out.send_rate_mbps = perf.mbpsSendRate;
    out.packets_sent = perf.pktSentTotal;
    out.packets_lost = perf.pktSndLossTotal;
    out.packets_retransmitted = perf.pktRetransTotal;
    out.packets_dropped = perf.pktSndDropTotal;
    out.send_buffer_ms = perf.msSndBuf;
  }
  return out;
}

}  // namespace cloudphone
