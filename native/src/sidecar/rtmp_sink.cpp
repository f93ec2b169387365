#include "rtmp_sink.h"

#include <pthread.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <random>

#include "avcc.h"
#include "muxer_packet.h"

extern "C" {
#include <libavformat/avformat.h>
#include <libavutil/log.h>
}

namespace cloudphone {
namespace {

constexpr std::chrono::milliseconds kFirstBackoff{500}, kLongestBackoff{30000};
// A server that stops reading (or a link that stops carrying) for this long ends the session.
constexpr const char* kSocketTimeoutUs = "5000000";

// Where libavformat's log lines go on an RTMP thread: kept as that session's last failure (a server's error
// text may quote the stream key, so nothing is printed); other threads' lines go where they always went.
thread_local std::string* rtmp_log_line = nullptr;

void log_line(void* context, int level, const char* format, va_list arguments) {
  if (!rtmp_log_line) {
    av_log_default_callback(context, level, format, arguments);
    return;
  }
  if (level > AV_LOG_ERROR) return;
  char line[512];
  std::vsnprintf(line, sizeof line, format, arguments);
  std::size_t length = std::strlen(line);
  while (length > 0 && (line[length - 1] == '\n' || line[length - 1] == ' ')) length--;
  if (length > 0) rtmp_log_line->assign(line, length);
}

std::string seconds_text(std::chrono::steady_clock::duration held) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", std::chrono::duration<double>(held).count());
  return text;
}

}  // namespace

RtmpSink::~RtmpSink() { stop(); }

NativeError RtmpSink::start(const RtmpSettings& settings, EventFn on_event, std::function<void()> request_keyframe) {
  if (settings.url.rfind("rtmp://", 0) != 0 && settings.url.rfind("rtmps://", 0) != 0)
    return error("ConfigError", "the RTMP URL must start with rtmp:// or rtmps://");
  static std::once_flag logging;
  std::call_once(logging, [] { av_log_set_callback(log_line); });
  settings_ = settings;
  on_event_ = std::move(on_event);
  ring_ = std::make_unique<AccessUnitRing>(std::move(request_keyframe),
                                           avcc_max_size(256 * 1024));
  ring_->close();  // nothing queues until a session publishes
  sending_.data.reserve(avcc_max_size(256 * 1024));
  packet_ = av_packet_alloc();
  running_ = true;
  thread_ = std::thread([this] { run(); });
  return {};
}

void RtmpSink::stop() {
  // A publishing session gets a second to end its stream cleanly (the server then closes it at once instead of
  // waiting for a timeout); a connection attempt is abandoned at once.
  interrupt_after_ = std::chrono::steady_clock::now() + (publishing_ ? std::chrono::seconds(1) : std::chrono::seconds(0));
  if (!running_.exchange(false)) return;
  ring_->close();
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  av_packet_free(&packet_);
}

void RtmpSink::push(const EncodedUnit& unit) {
  if (ring_) push_as_avcc(ring_.get(), unit);
}

RtmpStats RtmpSink::stats() const {
  RtmpStats out;
  out.publishing = publishing_;
  out.sessions = sessions_;
  out.failed_sessions = failed_sessions_;
  out.access_units_sent = sent_;
  out.access_units_dropped = ring_ ? ring_->dropped() : 0;
  out.bytes_sent = bytes_sent_;
  return out;
}

int RtmpSink::interrupted(void* opaque) {
  auto* self = static_cast<RtmpSink*>(opaque);
  return !self->running_ && std::chrono::steady_clock::now() >= self->interrupt_after_.load() ? 1 : 0;
}

void RtmpSink::sleep_interruptibly(std::chrono::milliseconds delay) {
  std::unique_lock<std::mutex> lock(sleep_mutex_);
  wake_.wait_for(lock, delay, [this] { return !running_.load(); });
}

std::string RtmpSink::without_key(std::string text) const {
  if (settings_.key.empty()) return text;
  for (std::size_t at = text.find(settings_.key); at != std::string::npos; at = text.find(settings_.key, at))
    text.replace(at, settings_.key.size(), "<stream key>");
  return text;
}

std::string RtmpSink::failure(int code) {
  char words[AV_ERROR_MAX_STRING_SIZE] = "";
  av_strerror(code, words, sizeof words);
  std::string why = last_log_line_.empty() ? words : last_log_line_ + " (" + words + ")";
  last_log_line_.clear();
  return without_key(why);
}

void RtmpSink::run() {
  pthread_setname_np(pthread_self(), "cp-rtmp");
  rtmp_log_line = &last_log_line_;
  std::mt19937 jitter(std::random_device{}());
  std::chrono::milliseconds backoff = kFirstBackoff;
  std::string last_failure;
  while (running_) {
    std::string why;
    if (connect(&why)) {
      auto began = std::chrono::steady_clock::now();
      sessions_++;
      publishing_ = true;
      if (on_event_) on_event_("connected", "");
      std::string lost = publish();
      publishing_ = false;
      auto held = std::chrono::steady_clock::now() - began;
      disconnect(!running_);
      if (!running_) break;
      if (held >= kHeldSession) {
        backoff = kFirstBackoff;
        last_failure.clear();
      } else {
        failed_sessions_++;
        lost = "ended after " + seconds_text(held) + " of publishing (" + lost +
               "): a server refuses a wrong stream key this way";
      }
      if (on_event_) on_event_("disconnected", lost);
    } else {
      if (!running_) break;
      failed_sessions_++;
      if (why != last_failure && on_event_) on_event_("error", why);
      last_failure = why;
    }
    // ±20 %, so that many sidecars that lost one server do not come back in lockstep.
    std::uniform_real_distribution<double> spread(0.8, 1.2);
    sleep_interruptibly(std::chrono::milliseconds(static_cast<int64_t>(backoff.count() * spread(jitter))));
    backoff = std::min(backoff * 2, kLongestBackoff);
  }
  rtmp_log_line = nullptr;
}

bool RtmpSink::connect(std::string* why) {
  AVIOInterruptCB interrupt{&RtmpSink::interrupted, this};
  AVDictionary* options = nullptr;
  av_dict_set(&options, "rw_timeout", kSocketTimeoutUs, 0);
  // Each picture goes out when it is written, not when Nagle's algorithm has gathered more.
  av_dict_set(&options, "tcp_nodelay", "1", 0);
  // RTMPS: the server must prove it is the host named in the URL, to a CA the system trusts.
  av_dict_set(&options, "tls_verify", "1", 0);
  int rc = avio_open2(&io_, settings_.url.c_str(), AVIO_FLAG_WRITE, &interrupt, &options);
  av_dict_free(&options);
  if (rc < 0) {
    io_ = nullptr;
    *why = "cannot publish: " + failure(rc);
    return false;
  }
  return true;
}

bool RtmpSink::start_muxer(const QueuedAccessUnit& keyframe, std::string* why) {
  if (!avc_decoder_configuration(keyframe.data.data(), keyframe.size, &configuration_)) {
    *why = "the keyframe carries no SPS and PPS";
    return false;
  }
  if (avformat_alloc_output_context2(&muxer_, nullptr, "flv", nullptr) < 0 || !muxer_) {
    *why = "cannot start the FLV muxer";
    return false;
  }
  muxer_->interrupt_callback = AVIOInterruptCB{&RtmpSink::interrupted, this};
  if (!add_avcc_stream(muxer_, configuration_, keyframe.width, keyframe.height, AVRational{1, 1000})) {
    *why = "out of memory";
    return false;
  }
  muxer_->pb = io_;
  muxer_->flags |= AVFMT_FLAG_FLUSH_PACKETS;
  muxer_->max_delay = 0;
  AVDictionary* options = nullptr;
  // A live stream has no length: the muxer must not try to seek back and write one at the end.
  av_dict_set(&options, "flvflags", "no_duration_filesize", 0);
  int rc = avformat_write_header(muxer_, &options);
  av_dict_free(&options);
  if (rc < 0) {
    *why = failure(rc);
    return false;
  }
  muxer_started_ = true;
  first_pts_ = keyframe.pts;
  last_ms_ = 0;
  return true;
}

bool RtmpSink::send(const QueuedAccessUnit& unit) {
  // Timestamps in milliseconds from the session's first picture, never going back (a new phone restarts its
  // clock after the last picture, so this only guards rounding).
  int64_t ms = std::max(last_ms_, (unit.pts - first_pts_) / 90);
  last_ms_ = ms;
  point_packet_at(packet_, unit, ms);
  // A new surface brings new parameter sets: the muxer sends a new sequence header before this keyframe. Only
  // then does anything here allocate.
  if (unit.keyframe && avc_decoder_configuration(unit.data.data(), unit.size, &candidate_) &&
      candidate_ != configuration_) {
    uint8_t* side = av_packet_new_side_data(packet_, AV_PKT_DATA_NEW_EXTRADATA, candidate_.size());
    if (side) std::memcpy(side, candidate_.data(), candidate_.size());
    configuration_ = candidate_;
  }
  int rc = av_write_frame(muxer_, packet_);
  av_packet_free_side_data(packet_);
  if (rc < 0) return false;
  bytes_sent_ = static_cast<uint64_t>(avio_tell(io_));
  return true;
}

std::string RtmpSink::publish() {
  ring_->open();
  std::string why;
  for (;;) {
    AccessUnitRing::Take taken = ring_->take(&sending_, std::chrono::milliseconds(200));
    if (taken == AccessUnitRing::Take::closed || !running_) return "stopping";
    if (taken == AccessUnitRing::Take::timeout) continue;
    if (!muxer_ && !start_muxer(sending_, &why)) break;
    if (!send(sending_)) {
      why = failure(io_->error ? io_->error : AVERROR(EIO));
      break;
    }
    sent_++;
  }
  return why;  // disconnect() closes the ring
}

void RtmpSink::disconnect(bool clean) {
  ring_->close();
  if (muxer_) {
    // Stopping: end the stream so the server closes it at once (the trailer and the protocol's unpublish).
    if (clean && muxer_started_) av_write_trailer(muxer_);
    muxer_->pb = nullptr;  // io_ is closed below, not by the muxer
    avformat_free_context(muxer_);
    muxer_ = nullptr;
    muxer_started_ = false;
  }
  if (io_) avio_closep(&io_);
  last_log_line_.clear();
}

}  // namespace cloudphone
