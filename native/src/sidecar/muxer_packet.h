// For the outputs that mux AVCC pictures on their own thread (the RTMP push, recording): the encoder thread's
// conversion into their ring, the muxer's H.264 stream, and its reusable AVPacket pointed at a queued picture.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "access_unit_ring.h"
#include "avcc.h"
#include "encoded_unit.h"

extern "C" {
#include <libavcodec/packet.h>
#include <libavformat/avformat.h>
}

namespace cloudphone {

// Encoder thread: the Annex-B picture converted to AVCC as it is copied into the ring.
inline void push_as_avcc(AccessUnitRing* ring, const EncodedUnit& unit) {
  ring->push(
      avcc_max_size(unit.size), unit.pts_90khz, unit.keyframe,
      [&](uint8_t* out) { return annexb_to_avcc(unit.data, unit.size, out); }, unit.width, unit.height);
}

// The muxer's one stream: H.264 of this size, with an AVCDecoderConfigurationRecord as extradata, which tells the
// muxer the pictures are AVCC already, so it writes them as they are. nullptr when out of memory.
inline AVStream* add_avcc_stream(AVFormatContext* muxer, const std::vector<uint8_t>& configuration, uint32_t width,
                                 uint32_t height, AVRational time_base) {
  AVStream* stream = avformat_new_stream(muxer, nullptr);
  auto* extradata = static_cast<uint8_t*>(av_mallocz(configuration.size() + AV_INPUT_BUFFER_PADDING_SIZE));
  if (!stream || !extradata) {
    av_free(extradata);
    return nullptr;
  }
  stream->time_base = time_base;
  stream->codecpar->codec_type = AVMEDIA_TYPE_VIDEO;
  stream->codecpar->codec_id = AV_CODEC_ID_H264;
  stream->codecpar->width = static_cast<int>(width);
  stream->codecpar->height = static_cast<int>(height);
  std::memcpy(extradata, configuration.data(), configuration.size());
  stream->codecpar->extradata = extradata;
  stream->codecpar->extradata_size = static_cast<int>(configuration.size());
  return stream;
}

// pts (in the stream's time base) serves as DTS too: the encoders make no B-frames. The packet is not
// reference-counted, so av_write_frame neither copies nor allocates; it is valid while unit is.
inline void point_packet_at(AVPacket* packet, const QueuedAccessUnit& unit, int64_t pts) {
  packet->data = const_cast<uint8_t*>(unit.data.data());
  packet->size = static_cast<int>(unit.size);
  packet->pts = pts;
  packet->dts = pts;
  packet->stream_index = 0;
  packet->flags = unit.keyframe ? AV_PKT_FLAG_KEY : 0;
  packet->buf = nullptr;
}

}  // namespace cloudphone
