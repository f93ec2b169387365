// Points a muxer's reusable AVPacket at a queued access unit, for the outputs that mux on their own thread.
#pragma once

#include <cstdint>

#include "access_unit_ring.h"

extern "C" {
#include <libavcodec/packet.h>
}

namespace cloudphone {

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
