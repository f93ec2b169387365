// The sidecar's media pipeline on one native thread: it serves the control socket, maps each surface
// generation, takes the newest complete frame when the producer says one is ready (latest frame wins),
// converts it to I420 straight out of the shared mapping with libyuv, encodes it, and hands the access
// unit to the SRT sink. JavaScript only configures, controls and observes it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "access_unit_assembler.h"
#include "control_message.h"
#include "control_socket.h"
#include "encoded_stream_check.h"
#include "encoded_unit.h"
#include "encoder_choice.h"
#include "framebuffer_mapping.h"
#include "h264_encoder.h"
#include "input_router.h"
#include "native_error.h"
#include "presentation_clock.h"
#include "recording_sink.h"
#include "rtmp_sink.h"
#include "srt_sink.h"

namespace cloudphone {

// The surface format reported for a phone that sends H.264 it encoded itself: the fourcc 'H264', outside
// the pixel formats of framebuffer.h.
constexpr uint32_t kEncodedH264Format = 0x48323634;

// Why a surface of this size is refused under video.maxSize (0: no limit but the protocol's), or empty: a
// surface the sidecar maps may be at most twice max_size on its longest side, one the phone encodes max_size.
std::string surface_size_problem(uint32_t width, uint32_t height, uint32_t max_size, bool encoded_by_phone);

// The encoded size for a surface: its own, or scaled down so the longest side is max_size (0: no limit).
void encoded_size(uint32_t width, uint32_t height, uint32_t max_size, uint32_t* out_width, uint32_t* out_height);

struct PipelineSettings {
  std::string shared_dir;
  std::string socket_name = "control.sock";
  uint32_t max_fps = 30;
  uint32_t bitrate_kbps = 4000;
  uint32_t keyframe_interval_seconds = 2;
  bool intra_refresh = false;
  std::string preset = "ultrafast";
  std::string encoder = "auto";  // auto, software, vaapi, nvenc (encoder_choice.h)
  uint32_t max_size = 0;         // video.maxSize: longest side of the encoded picture, 0 for the phone's own
  // Users whose processes may connect to the control socket (shared.phoneUids); empty: the sidecar's own
  // (start() puts it in).
  std::vector<uint32_t> phone_uids;
  bool srt_enabled = false;
  SrtSettings srt;
  bool rtmp_enabled = false;
  RtmpSettings rtmp;
  bool recording_enabled = false;
  RecordingSettings recording;
  // Called on the pipeline thread for every encoded picture (after the SRT sink has it); returns true when
  // the listener lost pictures and needs a keyframe to recover. Must not block.
  std::function<bool(const EncodedUnit&)> on_access_unit;
};

struct PipelineEvent {
  // producer-connected, producer-disconnected, surface, clipboard, error, srt-connected, srt-disconnected,
  // srt-error, rtmp-connected, rtmp-disconnected, rtmp-error, recording-segment, recording-lost,
  // recording-stopped, recording-resumed, recording-adopted
  std::string type;
  std::string name;
  std::string reason;
  std::string producer;
  uint32_t generation = 0, width = 0, height = 0, format = 0;
  uint8_t rotation = 0;  // surface: Android's Surface.ROTATION_*
  std::string text;      // clipboard: checked UTF-8, at most kClipboardMax bytes
  uint64_t suppressed = 0;  // events of this type held back before it (EventGate)
};

struct PipelineStats {
  std::atomic<uint64_t> frames_published{0};  // frames the producer completed (frame numbers seen)
  std::atomic<uint64_t> frames_encoded{0};
  std::atomic<uint64_t> frames_stale{0};  // published but superseded before we got to them
  std::atomic<uint64_t> frames_torn{0};
  std::atomic<uint64_t> keyframes{0};
  std::atomic<uint64_t> bytes_encoded{0};
  std::atomic<uint64_t> encode_ns_total{0};
  std::atomic<uint64_t> convert_ns_total{0};
  std::atomic<uint64_t> malformed_messages{0};
  std::atomic<uint64_t> producer_errors{0};
  std::atomic<uint64_t> producer_connects{0};
  std::atomic<uint64_t> connections_refused{0};  // from a user not in phone_uids
  std::atomic<uint64_t> capture_times_unbelieved{0};  // PresentationClock: replaced by the time the frame was read
  std::atomic<int64_t> last_capture_to_encoded_ns{0};
  std::atomic<uint32_t> bitrate_kbps{0};
  std::atomic<uint32_t> max_fps{0};
  std::atomic<bool> producer_connected{false};
  std::atomic<uint32_t> width{0}, height{0}, format{0}, generation{0};
  std::atomic<uint8_t> rotation{0};
  std::atomic<uint64_t> clipboard_updates{0};  // clipboard texts the phone sent that passed the checks
};

class Pipeline {
 public:
  using EventFn = std::function<void(PipelineEvent event)>;
  ~Pipeline();
  NativeError start(const PipelineSettings& settings, EventFn on_event);
  void stop();
  void request_keyframe();
  void set_bitrate(uint32_t kbps);
  void set_max_fps(uint32_t fps);
  // Verifies a cloudphone.control Message carrying one input event from a viewer (a non-zero id the caller
  // gives each viewer) and sends it to the phone at once, from the calling thread: input never waits for a
  // conversion or an encode. What the phone's socket does not take waits in order and goes when it can.
  // Returns an empty error when sent or queued.
  NativeError send_input(uint32_t viewer, const uint8_t* data, std::size_t length);
  // The viewer is gone or has lost control: everything it holds down goes up on the phone.
  void release_input(uint32_t viewer);
  InputCounters input_counters();
  std::size_t input_waiting();
  const PipelineStats& stats() const { return stats_; }
  // Which encoder start() picked and why; fixed once started.
  const EncoderChoice& encoder_choice() const { return encoder_choice_; }
  SrtStats srt_stats() const { return srt_.stats(); }
  RtmpStats rtmp_stats() const { return rtmp_.stats(); }
  RecordingStats recording_stats() const { return recording_.stats(); }
  std::vector<uint8_t> parameter_sets();

 private:
  void run();
  void emit(PipelineEvent event);
  void wake();
  void accept_producer();
  void drop_producer(const std::string& reason, bool announce);
  void read_producer();
  void handle_message(const uint8_t* data, std::size_t length, int fd);
  void emit_error(const std::string& name, const std::string& reason);
  // Counts a refused surface or frame and tells JavaScript why.
  void producer_error(const std::string& reason);
  // The phone shrank its memory under our mapping (caught by the SigbusGuard): refuse it, keep running.
  void refuse_shrunk_memory();
  void map_surface(const ControlMessage& surface, int fd);
  // A surface is ready to stream: the stats and the "surface" event say what it is.
  void announce_surface(uint32_t generation, uint32_t width, uint32_t height, uint32_t format, uint8_t rotation);
  // The phone's clipboard, checked (length, UTF-8), to JavaScript for the control viewers.
  void forward_clipboard(const ControlMessage& message);
  // A phone that encodes H.264 itself: its access units go to the sinks as they are, not re-encoded.
  void start_passthrough(const ControlMessage& surface);
  void pass_through(const ControlMessage& fragment);
  void ask_phone_for_keyframe();
  // The picture's timestamp and believed capture time (PresentationClock), counted in the stats.
  PresentationClock::Stamp stamp(int64_t capture_time_ns, int64_t now_ns);
  // Hands one encoded picture to every sink: the SRT and RTMP sinks directly, then the listener (JavaScript).
  void deliver(const EncodedUnit& unit);
  void encode_newest(bool repeat_last);
  // Sends what input waits, with input_mutex_ held; wakes the pipeline to poll for room if some still waits.
  void flush_input_locked();

  PipelineSettings settings_;
  EncoderChoice encoder_choice_;
  EventFn on_event_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  int wake_fd_ = -1;
  int dir_fd_ = -1;
  ControlListener listener_;
  int producer_fd_ = -1;
  bool greeted_ = false;
  std::string producer_name_;

  std::unique_ptr<FramebufferMapping> mapping_;
  H264Encoder encoder_;
  std::vector<uint8_t> picture_;  // I420 converted from RGB (and the scaled copy); allocated once per surface
  uint32_t encode_width_ = 0, encode_height_ = 0;
  uint64_t last_frame_number_ = 0;
  bool frame_pending_ = false;
  int64_t last_encode_ns_ = 0;
  PresentationClock clock_;
  std::atomic<bool> keyframe_requested_{false};
  std::atomic<uint32_t> requested_bitrate_{0};
  SrtSink srt_;
  RtmpSink rtmp_;
  RecordingSink recording_;
  bool passthrough_ = false;
  uint32_t passthrough_generation_ = 0;
  AccessUnitAssembler assembler_;
  EncodedStreamCheck stream_check_;
  int64_t last_phone_keyframe_request_ns_ = 0;

  // Input for the phone, sent from the threads that call send_input (and from the pipeline thread when the
  // phone's socket has room again). input_fd_ is the producer's socket once it has been welcomed, else -1;
  // only the pipeline thread changes it or closes the socket, and only with input_mutex_ held.
  static constexpr std::size_t kInputMessageMax = 1024;
  std::mutex input_mutex_;
  InputRouter input_;
  int input_fd_ = -1;
  std::atomic<bool> input_waiting_{false};
  std::mutex parameter_sets_mutex_;
  std::vector<uint8_t> parameter_sets_;

  PipelineStats stats_;
  alignas(8) uint8_t message_[65536 + 8];
};

}  // namespace cloudphone
