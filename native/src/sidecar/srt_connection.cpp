#include "srt_connection.h"
#include "muxer_packet.h"

#include <srt/srt.h>

#include <algorithm>
#include <chrono>
#include <cstring>

extern "C" {
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
}

namespace cloudphone {
void SrtConnectionStats::add_counters(const SrtConnectionStats& other) {
  packets_sent += other.packets_sent;
  packets_lost += other.packets_lost;
  packets_retransmitted += other.packets_retransmitted;
  packets_dropped += other.packets_dropped;
  access_units_sent += other.access_units_sent;
  access_units_dropped += other.access_units_dropped;
}

SrtConnection::SrtConnection(int socket, std::string peer, std::function<void()> request_keyframe)
    : socket_(socket), peer_(std::move(peer)), ring_(std::move(request_keyframe)) {
  sending_.data.reserve(256 * 1024);
  packet_ = av_packet_alloc();
}

SrtConnection::~SrtConnection() {
  close_muxer();
  av_packet_free(&packet_);
  srt_close(socket_);
}

void SrtConnection::push(const uint8_t* data, std::size_t size, int64_t pts_90khz, bool keyframe) {
  ring_.push(size, pts_90khz, keyframe, [&](uint8_t* out) {
    std::memcpy(out, data, size);
    return size;
  });
}

void SrtConnection::stop() { ring_.close(); }

int SrtConnection::write_packet(void* opaque, uint8_t* buffer, int size) {
  auto* self = static_cast<SrtConnection*>(opaque);
  for (int offset = 0; offset < size; offset += kSrtPayloadSize) {
    int chunk = std::min(kSrtPayloadSize, size - offset);
    if (srt_sendmsg2(self->socket_, reinterpret_cast<const char*>(buffer + offset), chunk, nullptr) == SRT_ERROR) {
      self->send_failed_ = true;
      return AVERROR(EIO);
    }
  }
  return size;
}

bool SrtConnection::open_muxer() {
  if (avformat_alloc_output_context2(&muxer_, nullptr, "mpegts", nullptr) < 0 || !muxer_) return false;
  AVStream* stream = avformat_new_stream(muxer_, nullptr);
  if (!stream) return false;
  stream->time_base = AVRational{1, 90000};
  stream->codecpar->codec_type = AVMEDIA_TYPE_VIDEO;
  stream->codecpar->codec_id = AV_CODEC_ID_H264;
  auto* io_buffer = static_cast<uint8_t*>(av_malloc(kSrtPayloadSize));
  AVIOContext* io = avio_alloc_context(io_buffer, kSrtPayloadSize, 1, this, nullptr, &SrtConnection::write_packet, nullptr);
  if (!io) {
    av_free(io_buffer);
    return false;
  }
  io->max_packet_size = kSrtPayloadSize;
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

void SrtConnection::close_muxer() {
  if (!muxer_) return;
  if (muxer_->pb) {
    av_freep(&muxer_->pb->buffer);
    avio_context_free(&muxer_->pb);
  }
  avformat_free_context(muxer_);
  muxer_ = nullptr;
}

bool SrtConnection::send_access_unit(const QueuedAccessUnit& unit) {
  if (first_pts_ < 0) first_pts_ = unit.pts;
  // Timestamps start near zero on each connection; 0.1 s of headroom keeps DTS above the first PCR.
  int64_t pts = unit.pts - first_pts_ + 9000;
  point_packet_at(packet_, unit, pts);
  send_failed_ = false;
  int rc = av_write_frame(muxer_, packet_);
  return rc >= 0 && !send_failed_;
}

std::string SrtConnection::serve(const std::atomic<bool>& running) {
  std::string lost = "receiver went away";
  if (!open_muxer()) {
    finished_ = true;
    return "cannot start the MPEG-TS muxer";
  }
  ring_.open();
  while (running) {
    AccessUnitRing::Take taken = ring_.take(&sending_, std::chrono::milliseconds(100));
    if (taken == AccessUnitRing::Take::closed || !running) break;
    if (taken == AccessUnitRing::Take::timeout) {
      SRT_SOCKSTATUS status = srt_getsockstate(socket_);
      if (status == SRTS_BROKEN || status == SRTS_CLOSED || status == SRTS_NONEXIST) break;
      continue;
    }
    if (!send_access_unit(sending_)) {
      lost = srt_getlasterror_str();
      break;
    }
    sent_++;
  }
  ring_.close();
  finished_ = true;
  close_muxer();
  return lost;
}

SrtConnectionStats SrtConnection::stats() const {
  SrtConnectionStats out;
  out.access_units_sent = sent_;
  out.access_units_dropped = ring_.dropped();
  SRT_TRACEBSTATS perf{};
  if (srt_bstats(socket_, &perf, 0) != SRT_ERROR) {
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
