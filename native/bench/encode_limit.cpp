// cloudphone-encode-limit: the unavoidable encoder stages measured alone, for the benchmark's limit row.
// Paints the simulator's frames (the same painter), and at the real frame rate converts each one with
// libyuv and encodes it with the sidecar's own H264Encoder (same settings), timing only those two stages.
// Prints one JSON line; --out writes the Annex-B stream so the decode stage can be timed on it.
//
//   cloudphone-encode-limit --width 720 --height 1280 --fps 30 --bitrate 4000 --frames 600 [--out clip.h264]
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../src/sidecar/h264_encoder.h"
#include "libyuv/convert.h"

extern "C" {
#include "../src/simulator/painter.h"
}

namespace {

int64_t clock_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  std::size_t index = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[index];
}

}  // namespace

int main(int argc, char** argv) {
  uint32_t width = 720, height = 1280, fps = 30, bitrate = 4000, frames = 600;
  const char* out_path = nullptr;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string name = argv[i];
    uint32_t value = static_cast<uint32_t>(std::strtoul(argv[i + 1], nullptr, 10));
    if (name == "--width") width = value;
    else if (name == "--height") height = value;
    else if (name == "--fps") fps = value;
    else if (name == "--bitrate") bitrate = value;
    else if (name == "--frames") frames = value;
    else if (name == "--out") out_path = argv[i + 1];
  }
  if (!width || !height || !fps || !frames || width > 8192 || height > 8192 || ((width | height) & 1)) {
    std::fprintf(stderr, "usage: cloudphone-encode-limit --width W --height H --fps F --bitrate K --frames N [--out F]\n");
    return 2;
  }

  painter painter;
  if (painter_init(&painter, width, height, CP_PIXEL_RGBA8888) != 0) return 1;
  uint32_t stride = width * 4;
  std::vector<uint8_t> rgba(std::size_t{stride} * height);
  std::vector<uint8_t> i420(std::size_t{width} * height * 3 / 2);

  cloudphone::H264Encoder encoder;
  cloudphone::EncoderSettings settings;
  settings.width = width;
  settings.height = height;
  settings.fps = fps;
  settings.bitrate_kbps = bitrate;
  settings.keyframe_interval_frames = 2 * fps;
  cloudphone::NativeError failure = encoder.open(settings);
  if (failure) {
    std::fprintf(stderr, "%s\n", failure.reason.c_str());
    return 1;
  }
  FILE* out = out_path ? std::fopen(out_path, "wb") : nullptr;

  std::vector<double> stage_ms;
  stage_ms.reserve(frames);
  int64_t interval = 1000000000 / fps, next = clock_ns(CLOCK_MONOTONIC), cpu_total = 0;
  for (uint32_t n = 1; n <= frames; n++) {
    painter_paint(&painter, rgba.data(), stride, n, clock_ns(CLOCK_MONOTONIC));
    next += interval;
    timespec until{static_cast<time_t>(next / 1000000000), static_cast<long>(next % 1000000000)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, nullptr);

    int64_t started = clock_ns(CLOCK_MONOTONIC), cpu_started = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    uint8_t* y = i420.data();
    uint8_t* u = y + std::size_t{width} * height;
    uint8_t* v = u + std::size_t{width / 2} * (height / 2);
    int w = static_cast<int>(width), h = static_cast<int>(height);
    libyuv::ABGRToI420(rgba.data(), static_cast<int>(stride), y, w, u, w / 2, v, w / 2, w, h);
    cloudphone::InputPlanes planes;
    planes.plane[0] = y;
    planes.plane[1] = u;
    planes.plane[2] = v;
    planes.stride[0] = width;
    planes.stride[1] = planes.stride[2] = width / 2;
    cloudphone::EncodedPicture encoded;
    if (!encoder.encode(planes, static_cast<int64_t>(n) * 90000 / fps, false, &encoded)) return 1;
    stage_ms.push_back(static_cast<double>(clock_ns(CLOCK_MONOTONIC) - started) / 1e6);
    cpu_total += clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu_started;
    if (out && encoded.size) std::fwrite(encoded.data, 1, encoded.size, out);
  }
  if (out) std::fclose(out);
  painter_free(&painter);
  std::printf("{\"frames\":%u,\"encode_p50_ms\":%.3f,\"encode_p99_ms\":%.3f,\"cpu_ms_per_frame\":%.3f}\n", frames,
              percentile(stage_ms, 0.5), percentile(stage_ms, 0.99),
              static_cast<double>(cpu_total) / 1e6 / frames);
  return 0;
}
