// libFuzzer target for everything the sidecar and the phone read from each other before trusting it:
//   mode 0: a control message from the producer (FlatBuffers Verifier, then the fields the pipeline reads,
//           then the geometry checks and the file-name rule for a Surface, and for an EncodedFrame the
//           access unit assembler, fed the fragment and then the same bytes as its continuation, and what it
//           completes through the H.264 check: NAL types, SPS and PPS read bit by bit, and through the AVCC
//           conversion of the RTMP push, whose output must stay in its bound and hold the same NAL units);
//   mode 1: a framebuffer header page, mapped the way the pipeline maps it, then the seqlock reads and
//           a touch of the first and last byte of the newest frame (a bounds mistake faults here);
//   mode 2: a message the C producer library reads from the sidecar (fb_wire.c's reader);
//   mode 3: a message a WebRTC viewer sent on its data channel (read_viewer_message), and for an input event
//           the control message it was re-encoded as, which the phone's reader must accept as that input
//           (anything else is a bug: the trap makes libFuzzer report it).
//   mode 4: a run of capture times and read times from producers that come and go, stamped by the
//           PresentationClock: timestamps must strictly increase, a believed capture time must be the one
//           given and lie in [now - 10 s, now], and no value may overflow (UBSan).
// The first input byte picks the mode, the second carries flags, the rest is the payload.
// Built by `make -C native fuzz`; seeds come from build/cloudphone-fuzz-seeds.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../src/sidecar/access_unit_assembler.h"
#include "../src/sidecar/annexb.h"
#include "../src/sidecar/avcc.h"
#include "../src/sidecar/control_message.h"
#include "../src/sidecar/encoded_stream_check.h"
#include "../src/sidecar/framebuffer_mapping.h"
#include "../src/sidecar/mp4_fragments.h"
#include "../src/sidecar/presentation_clock.h"
#include "../src/sidecar/utf8.h"
#include "../src/sidecar/viewer_message.h"

extern "C" {
#include "../src/producer/fb_wire.h"
}

namespace {

using namespace cloudphone;

volatile uint8_t sink;

// The RTMP push's conversion: within avcc_max_size (ASan catches a write past it), the same NAL units in the
// same order, and a configuration record read only from inside the unit.
void fuzz_avcc(const uint8_t* annexb, std::size_t size) {
  std::vector<uint8_t> avcc(avcc_max_size(size));
  std::size_t written = annexb_to_avcc(annexb, size, avcc.data());
  if (written > avcc.size()) __builtin_trap();
  std::vector<std::pair<const uint8_t*, std::size_t>> nal_units;
  for_each_nal_unit(annexb, size, [&](const uint8_t* nal, std::size_t length) { nal_units.emplace_back(nal, length); });
  std::size_t at = 0;
  for_each_avcc_nal_unit(avcc.data(), written, [&](const uint8_t* nal, std::size_t length) {
    if (at >= nal_units.size() || nal_units[at].second != length || std::memcmp(nal_units[at].first, nal, length) != 0)
      __builtin_trap();
    at++;
  });
  if (at != nal_units.size()) __builtin_trap();
  std::vector<uint8_t> record;
  (void)avc_decoder_configuration(avcc.data(), written, &record);
}

// An unfinished recording segment left on a volume others may write: the length kept lies within the file and
// on a box boundary the reader found, and nothing is read outside it.
void fuzz_mp4_fragments(const uint8_t* file, std::size_t size) {
  uint64_t whole = complete_fragments_length(size, [&](uint64_t at, uint8_t* out, uint64_t length) {
    if (at > size || length > size - at) __builtin_trap();
    std::memcpy(out, file + at, length);
    return true;
  });
  if (whole > size) __builtin_trap();
}

void fuzz_encoded_frame(const ControlMessage& message) {
  AccessUnitAssembler assembler;
  EncodedFragment fragment = message.fragment;
  std::string why;
  for (int round = 0; round < 2; round++) {
    if (assembler.add(fragment, &why) == AccessUnitAssembler::Result::Complete) {
      sink = assembler.data()[assembler.size() - 1];
      std::vector<uint8_t> parameter_sets;
      copy_parameter_sets(assembler.data(), assembler.size(), &parameter_sets);
      // The H.264 check, as for a 64x64 surface, twice: the second time it knows the first's SPS.
      EncodedStreamCheck check;
      check.reset(64, 64);
      bool keyframe = false;
      std::string refused;
      for (int pass = 0; pass < 2; pass++) (void)check.check(assembler.data(), assembler.size(), &keyframe, &refused);
      fuzz_avcc(assembler.data(), assembler.size());
    }
    fragment.offset += static_cast<uint32_t>(fragment.length);
  }
}

void fuzz_control_message(const uint8_t* data, std::size_t size) {
  ControlMessage message = read_control_message(data, size);
  if (message.kind == ControlKind::EncodedFrame) return fuzz_encoded_frame(message);
  if (message.kind == ControlKind::Clipboard) {
    // What the pipeline runs on a phone's clipboard before JavaScript sees it: the text stays inside the message.
    if (message.clipboard < reinterpret_cast<const char*>(data) ||
        message.clipboard + message.clipboard_length > reinterpret_cast<const char*>(data) + size)
      __builtin_trap();
    sink = well_formed_utf8(reinterpret_cast<const uint8_t*>(message.clipboard), message.clipboard_length,
                            Utf8Controls::AllButNul);
    return;
  }
  if (message.kind != ControlKind::Surface) return;
  uint64_t slot_size = 0;
  (void)check_geometry(message.geometry, &slot_size);
  (void)safe_file_name(message.path);
}

void fuzz_framebuffer(uint8_t flags, const uint8_t* data, std::size_t size) {
  static int memory = memfd_create("fuzz-framebuffer", MFD_CLOEXEC);
  cp_fb_header header{};
  std::memcpy(&header, data, std::min(size, sizeof header));
  // The announcement repeats the header (so the fuzzer reaches the slot reads), unless a flag says to
  // perturb it, which must always be refused.
  SurfaceGeometry announced;
  announced.generation = header.generation ^ (flags & 1);
  announced.width = header.width;
  announced.height = header.height;
  announced.format = header.format;
  announced.stride = header.stride;
  announced.slot_count = header.slot_count;
  announced.total_size = header.total_size;
  uint64_t slot_size = 0;
  if (check_geometry(announced, &slot_size)) return;
  if (announced.total_size > (uint64_t{1} << 30)) return;  // sparse, but keep the fuzzer's memory sane
  // Flag 2: memory shorter than announced, which must be refused before mapping.
  uint64_t file_size = (flags & 2) ? CP_FB_HEADER_SIZE : announced.total_size;
  if (ftruncate(memory, 0) != 0 || ftruncate(memory, static_cast<off_t>(file_size)) != 0) return;
  if (pwrite(memory, data, std::min<std::size_t>(size, CP_FB_HEADER_SIZE), 0) < 0) return;
  NativeError failure;
  std::unique_ptr<FramebufferMapping> mapping = FramebufferMapping::open(dup(memory), announced, &failure);
  if (!mapping) return;
  if (flags & 3) __builtin_trap();  // a perturbed announcement or short memory was accepted
  FrameRef frame;
  uint64_t after = size > sizeof header ? data[sizeof header] : 0;
  if (!mapping->newest(after, &frame)) return;
  uint64_t frame_size = cp_fb_frame_size(announced.format, announced.stride, announced.height);
  sink = frame.pixels[0];
  sink = frame.pixels[frame_size - 1];
  (void)mapping->unchanged(frame);
}

void fuzz_producer_reader(const uint8_t* data, std::size_t size) {
  cp_body body;
  fbr_table table;
  if (!fbr_message(data, size, &body, &table)) return;
  for (uint16_t id = 0; id < 12; id++) {
    sink = fbr_u8(&table, id, 0);
    sink = static_cast<uint8_t>(fbr_u16(&table, id, 0));
    sink = static_cast<uint8_t>(fbr_u32(&table, id, 0));
    sink = static_cast<uint8_t>(fbr_f32(&table, id, 0) > 0);
    const char* text;
    std::size_t length;
    if (fbr_string(&table, id, &text, &length) == 1 && length) sink = static_cast<uint8_t>(text[0] ^ text[length - 1]);
  }
}

void fuzz_viewer_message(const uint8_t* data, std::size_t size) {
  ViewerMessage message = read_viewer_message(data, size);
  if (message.kind == ViewerKind::Invalid && message.reason.empty()) __builtin_trap();  // refused without a reason
  if (message.kind != ViewerKind::Input) return;
  cp_body body;
  fbr_table table;
  if (!fbr_message(message.control.data(), message.control.size(), &body, &table)) __builtin_trap();
  if (body != CP_BODY_TOUCH && body != CP_BODY_KEY && body != CP_BODY_TEXT && body != CP_BODY_SCROLL &&
      body != CP_BODY_ROTATE)
    __builtin_trap();
}

void fuzz_capture_times(const uint8_t* data, std::size_t size) {
  PresentationClock clock;
  int64_t last_pts = -1;
  // Each record: a restart flag, the capture time the phone gave, and the read time (any int64: the clock must
  // cope with values CLOCK_MONOTONIC never gives, too).
  constexpr std::size_t kRecord = 17;
  for (std::size_t at = 0; at + kRecord <= size; at += kRecord) {
    if (data[at] & 1) clock.restart();
    int64_t capture, now;
    std::memcpy(&capture, data + at + 1, 8);
    std::memcpy(&now, data + at + 9, 8);
    PresentationClock::Stamp stamp = clock.stamp(capture, now);
    if (stamp.pts_90khz <= last_pts) __builtin_trap();
    last_pts = stamp.pts_90khz;
    if (stamp.capture_time_ns != 0 &&
        (stamp.capture_time_ns != capture || capture > now || now - capture > PresentationClock::kOldestBelievable))
      __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  uint8_t mode = data[0] % 6, flags = data[1];
  data += 2;
  size -= 2;
  // An aligned heap copy of exactly the payload's size, so AddressSanitizer sees any read past its end.
  if (size > 65536) return 0;
  std::unique_ptr<uint8_t[]> copy(new uint8_t[size ? size : 1]);
  std::memcpy(copy.get(), data, size);
  const uint8_t* message = copy.get();
  switch (mode) {
    case 0:
      fuzz_control_message(message, size);
      break;
    case 1:
      fuzz_framebuffer(flags, message, size);
      break;
    case 2:
      fuzz_producer_reader(message, size);
      break;
    case 3:
      fuzz_viewer_message(message, size);
      break;
    case 5:
      fuzz_mp4_fragments(message, size);
      break;
    default:
      fuzz_capture_times(message, size);
      break;
  }
  return 0;
}
