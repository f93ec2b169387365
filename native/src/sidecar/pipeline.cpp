#include "pipeline.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "cloudphone/control_generated.h"
#include "control_message.h"
#include "libyuv/convert.h"
#include "libyuv/scale.h"
#include "monotonic_clock.h"
#include "sigbus_guard.h"
#include "utf8.h"

namespace cloudphone {
namespace {

constexpr uint16_t kProtocolVersion = 1;
// Messages handled per wake-up before frames get a turn: a flooding producer cannot starve the encoder.
constexpr int kMessagesPerTurn = 64;

std::size_t build_message(uint8_t* out, std::size_t capacity,
                          const std::function<flatbuffers::Offset<control::Message>(flatbuffers::FlatBufferBuilder&)>& body) {
  flatbuffers::FlatBufferBuilder builder(256);
  control::FinishMessageBuffer(builder, body(builder));
  if (builder.GetSize() > capacity) return 0;
  std::memcpy(out, builder.GetBufferPointer(), builder.GetSize());
  return builder.GetSize();
}

}  // namespace

Pipeline::~Pipeline() { stop(); }

NativeError Pipeline::start(const PipelineSettings& settings, EventFn on_event) {
  settings_ = settings;
  on_event_ = std::move(on_event);
  if (settings_.max_fps == 0 || settings_.max_fps > 240) return error("ConfigError", "fps must be 1 to 240");
  if (!safe_file_name(settings_.socket_name)) return error("ConfigError", "socket name must be a plain file name");
  if (NativeError refused = choose_encoder(settings_.encoder, &encoder_choice_)) return refused;
  dir_fd_ = ::open(settings_.shared_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) return error("ConfigError", "shared directory " + settings_.shared_dir + ": " + std::strerror(errno));
  NativeError failure = listener_.listen(settings_.shared_dir + "/" + settings_.socket_name);
  if (!failure && settings_.srt_enabled) {
    failure = srt_.start(
        settings_.srt,
        [this](const char* kind, const std::string& name, const std::string& reason) {
          PipelineEvent event;
          event.type = std::string("srt-") + kind;
          event.name = name;
          event.reason = reason;
          emit(std::move(event));
        },
        [this] { request_keyframe(); });
  }
  if (!failure && settings_.rtmp_enabled) {
    failure = rtmp_.start(
        settings_.rtmp,
        [this](const char* kind, const std::string& reason) {
          PipelineEvent event;
          event.type = std::string("rtmp-") + kind;
          event.reason = reason;
          emit(std::move(event));
        },
        [this] { request_keyframe(); });
  }
  if (!failure && settings_.recording_enabled) {
    failure = recording_.start(
        settings_.recording,
        [this](const char* kind, const std::string& detail) {
          PipelineEvent event;
          event.type = std::string("recording-") + kind;
          (event.type == "recording-segment" ? event.name : event.reason) = detail;
          emit(std::move(event));
        },
        [this] { request_keyframe(); });
  }
  if (failure) {
    srt_.stop();
    rtmp_.stop();
    listener_.close();
    ::close(dir_fd_);
    dir_fd_ = -1;
    return failure;
  }
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (settings_.phone_uids.empty()) settings_.phone_uids.push_back(static_cast<uint32_t>(::geteuid()));
  stats_.bitrate_kbps = settings_.bitrate_kbps;
  stats_.max_fps = settings_.max_fps;
  running_ = true;
  thread_ = std::thread([this] { run(); });
  return {};
}

void Pipeline::stop() {
  if (running_.exchange(false)) {
    wake();
    if (thread_.joinable()) thread_.join();
  }
  srt_.stop();
  rtmp_.stop();
  recording_.stop();  // finishes the segment being written
  drop_producer("sidecar stopping", false);
  listener_.close();
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (dir_fd_ >= 0) ::close(dir_fd_);
  wake_fd_ = dir_fd_ = -1;
}

void Pipeline::wake() {
  uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!::write(wake_fd_, &one, sizeof one);
}

void Pipeline::emit(PipelineEvent event) {
  if (on_event_) on_event_(std::move(event));
}

void Pipeline::request_keyframe() {
  keyframe_requested_ = true;
  wake();
}

void Pipeline::set_bitrate(uint32_t kbps) {
  requested_bitrate_ = kbps;
  wake();
}

void Pipeline::set_max_fps(uint32_t fps) {
  if (fps >= 1 && fps <= 240) stats_.max_fps = fps;
}

std::vector<uint8_t> Pipeline::parameter_sets() {
  std::lock_guard<std::mutex> lock(parameter_sets_mutex_);
  return parameter_sets_;
}

NativeError Pipeline::send_input(uint32_t viewer, const uint8_t* data, std::size_t length) {
  if (length > kInputMessageMax) return error("InputError", "input message is larger than 1024 bytes");
  ControlMessage message = read_control_message(data, length);
  if (message.kind == ControlKind::Invalid) return error("InputError", "input message is not a valid control Message");
  if (message.kind != ControlKind::Input)
    return error("InputError", "only touch, key, text and scroll messages go to the phone");
  std::lock_guard<std::mutex> lock(input_mutex_);
  if (input_fd_ < 0) return error("InputError", "no phone is connected");
  if (const char* refused = input_.route(viewer, message.input)) return error("InputError", refused);
  // While some wait, the pipeline thread sends them when the socket has room: no send tried per event here.
  if (!input_waiting_) flush_input_locked();
  return {};
}

void Pipeline::release_input(uint32_t viewer) {
  std::lock_guard<std::mutex> lock(input_mutex_);
  input_.release(viewer);
  flush_input_locked();
}

void Pipeline::flush_input_locked() {
  bool waiting = input_.flush(input_fd_) > 0;
  // The pipeline polls the socket for room only while something waits.
  if (waiting && !input_waiting_.exchange(true)) wake();
  if (!waiting) input_waiting_ = false;
}

InputCounters Pipeline::input_counters() {
  std::lock_guard<std::mutex> lock(input_mutex_);
  return input_.counters();
}

std::size_t Pipeline::input_waiting() {
  std::lock_guard<std::mutex> lock(input_mutex_);
  return input_.waiting();
}

void Pipeline::emit_error(const std::string& name, const std::string& reason) {
  PipelineEvent event;
  event.type = "error";
  event.name = name;
  event.reason = reason;
  emit(std::move(event));
}

void Pipeline::producer_error(const std::string& reason) {
  stats_.producer_errors++;
  emit_error("ProducerError", reason);
}

void Pipeline::refuse_shrunk_memory() {
  producer_error("framebuffer memory shrank under the sidecar");
  drop_producer("framebuffer memory shrank", true);
}

void Pipeline::accept_producer() {
  uint32_t uid = 0;
  int32_t pid = 0;
  int fd = listener_.accept_connection(&uid, &pid);
  if (fd < 0) return;
  const std::vector<uint32_t>& allowed_uids = settings_.phone_uids;
  if (std::find(allowed_uids.begin(), allowed_uids.end(), uid) == allowed_uids.end()) {
    // Another process that reached the socket (an app inside the phone, another container given the volume):
    // it neither publishes frames nor reads input, and the phone already connected keeps streaming.
    ::close(fd);
    stats_.connections_refused++;
    std::string allowed;
    for (uint32_t u : allowed_uids) allowed += (allowed.empty() ? "" : ", ") + std::to_string(u);
    emit_error("ProducerError", "refused a control socket connection from uid " + std::to_string(uid) + " (pid " +
                                    std::to_string(pid) + "): only uid " + allowed +
                                    " may publish frames (shared.phoneUids)");
    return;
  }
  // A second connection means the phone's compositor restarted; the newest producer wins.
  if (producer_fd_ >= 0) drop_producer("replaced by a new producer connection", true);
  producer_fd_ = fd;
  greeted_ = false;
  clock_.restart();
  stats_.producer_connects++;
}

void Pipeline::drop_producer(const std::string& reason, bool announce) {
  if (producer_fd_ < 0) return;
  {
    // What waited for this phone means nothing to the next one, nor does what it held down.
    std::lock_guard<std::mutex> lock(input_mutex_);
    input_fd_ = -1;
    input_.reset();
    input_waiting_ = false;
  }
  ::close(producer_fd_);
  producer_fd_ = -1;
  mapping_.reset();
  frame_pending_ = false;
  passthrough_ = false;
  assembler_.reset();
  bool was_connected = stats_.producer_connected.exchange(false);
  if (announce && was_connected) {
    PipelineEvent event;
    event.type = "producer-disconnected";
    event.reason = reason;
    event.producer = producer_name_;
    emit(std::move(event));
  }
}

void Pipeline::read_producer() {
  for (int i = 0; i < kMessagesPerTurn && producer_fd_ >= 0; i++) {
    ReceivedMessage received;
    int rc = receive_message(producer_fd_, message_, sizeof message_, &received);
    if (rc == 0) return;
    if (rc < 0) {
      drop_producer("producer closed the control socket", true);
      return;
    }
    if (received.truncated || received.length > kControlMessageMax) {
      if (received.fd >= 0) ::close(received.fd);
      stats_.malformed_messages++;
      continue;
    }
    handle_message(message_, received.length, received.fd);
  }
}

void Pipeline::handle_message(const uint8_t* data, std::size_t length, int fd) {
  struct FdCloser {
    int fd;
    ~FdCloser() {
      if (fd >= 0) ::close(fd);
    }
  } passed{fd};
  ControlMessage message = read_control_message(data, length);
  if (message.kind == ControlKind::Invalid) {
    stats_.malformed_messages++;
    return;
  }
  if (!greeted_) {
    if (message.kind != ControlKind::Hello) {
      stats_.malformed_messages++;
      drop_producer("producer did not start with Hello", false);
      return;
    }
    uint8_t reply[512];
    if (message.protocol_version != kProtocolVersion) {
      std::size_t n = build_message(reply, sizeof reply, [](flatbuffers::FlatBufferBuilder& b) {
        auto goodbye = control::CreateGoodbye(b, b.CreateString("unsupported protocol version"));
        return control::CreateMessage(b, control::Body::Goodbye, goodbye.Union());
      });
      send_message(producer_fd_, reply, n);
      producer_error("producer speaks protocol version " + std::to_string(message.protocol_version) + ", expected 1");
      drop_producer("unsupported protocol version", false);
      return;
    }
    uint32_t fps = stats_.max_fps;
    std::size_t n = build_message(reply, sizeof reply, [fps](flatbuffers::FlatBufferBuilder& b) {
      auto welcome = control::CreateWelcome(b, kProtocolVersion, b.CreateString("cloudphone-sidecar"),
                                            static_cast<uint16_t>(fps));
      return control::CreateMessage(b, control::Body::Welcome, welcome.Union());
    });
    send_message(producer_fd_, reply, n);
    greeted_ = true;
    {
      std::lock_guard<std::mutex> lock(input_mutex_);
      input_.reset();
      input_fd_ = producer_fd_;
    }
    producer_name_ = message.producer;
    stats_.producer_connected = true;
    PipelineEvent event;
    event.type = "producer-connected";
    event.producer = message.producer;
    emit(std::move(event));
    return;
  }
  switch (message.kind) {
    case ControlKind::Surface:
      if (message.rotation > kRotationMax)
        return producer_error("surface rotation must be 0 to 3 (Android's Surface.ROTATION_*)");
      if (message.memory == SurfaceMemory::EncodedH264) return start_passthrough(message);
      map_surface(message, passed.fd);
      passed.fd = -1;  // map_surface took it
      return;
    case ControlKind::EncodedFrame:
      return pass_through(message);
    case ControlKind::FrameReady:
      if (mapping_ && message.geometry.generation == mapping_->geometry().generation) frame_pending_ = true;
      return;
    case ControlKind::Clipboard:
      return forward_clipboard(message);
    case ControlKind::Goodbye:
      drop_producer(message.reason.empty() ? "producer said goodbye" : message.reason, true);
      return;
    default:
      // Hello twice, input (which flows the other way), or messages only the sidecar sends.
      stats_.malformed_messages++;
      return;
  }
}

void Pipeline::map_surface(const ControlMessage& surface, int fd) {
  mapping_.reset();
  passthrough_ = false;
  frame_pending_ = false;
  const SurfaceGeometry& geometry = surface.geometry;

  int memory_fd = -1;
  switch (surface.memory) {
    case SurfaceMemory::SharedFile: {
      if (fd >= 0) ::close(fd);
      const std::string& path = surface.path;
      if (!safe_file_name(path)) return producer_error("surface path must be a plain file name in the shared volume");
      memory_fd = ::openat(dir_fd_, path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
      if (memory_fd < 0) return producer_error("cannot open surface file " + path + ": " + std::strerror(errno));
      break;
    }
    case SurfaceMemory::PassedFd: {
      if (fd < 0) return producer_error("surface said PassedFd but no descriptor came with it");
      // Sealed against shrinking, the memory cannot be cut from under the mapping (the SIGBUS guard stays for
      // shared files); a descriptor that is not a memfd has no seals and is refused the same way.
      int seals = ::fcntl(fd, F_GET_SEALS);
      if (seals < 0 || (seals & F_SEAL_SHRINK) == 0) {
        ::close(fd);
        return producer_error("a passed framebuffer must be a memfd sealed against shrinking (F_SEAL_SHRINK)");
      }
      memory_fd = fd;
      break;
    }
    default:
      if (fd >= 0) ::close(fd);
      return producer_error("surface names an unknown memory kind");
  }
  std::string too_large = surface_size_problem(geometry.width, geometry.height, settings_.max_size, false);
  if (!too_large.empty()) {
    ::close(memory_fd);
    return producer_error(too_large);
  }
  NativeError failure;
  mapping_ = FramebufferMapping::open(memory_fd, geometry, &failure);
  if (!mapping_) return producer_error(failure.reason);

  encoded_size(geometry.width, geometry.height, settings_.max_size, &encode_width_, &encode_height_);
  const EncoderSettings& current = encoder_.settings();
  if (!encoder_.is_open() || current.width != encode_width_ || current.height != encode_height_) {
    EncoderSettings settings;
    settings.width = encode_width_;
    settings.height = encode_height_;
    settings.fps = stats_.max_fps;
    settings.bitrate_kbps = stats_.bitrate_kbps;
    settings.keyframe_interval_frames = settings_.keyframe_interval_seconds * settings.fps;
    settings.intra_refresh = settings_.intra_refresh;
    settings.preset = settings_.preset.c_str();
    failure = encoder_.open(settings);
    if (failure) {
      mapping_.reset();
      return emit_error(failure.name, failure.reason);
    }
    std::lock_guard<std::mutex> lock(parameter_sets_mutex_);
    parameter_sets_ = encoder_.parameter_sets();
  }
  // Our own I420 picture, converted from RGB, and behind it the scaled one when video.maxSize applies.
  bool scaling = encode_width_ != geometry.width || encode_height_ != geometry.height;
  std::size_t converted =
      geometry.format != CP_PIXEL_NV12 || scaling ? std::size_t{geometry.width} * geometry.height * 3 / 2 : 0;
  picture_.assign(converted + (scaling ? std::size_t{encode_width_} * encode_height_ * 3 / 2 : 0), 0);
  last_frame_number_ = 0;
  keyframe_requested_ = true;  // a new size starts with a keyframe carrying the new SPS
  announce_surface(geometry.generation, geometry.width, geometry.height, geometry.format, surface.rotation);
}

void Pipeline::announce_surface(uint32_t generation, uint32_t width, uint32_t height, uint32_t format,
                                uint8_t rotation) {
  stats_.generation = generation;
  stats_.width = width;
  stats_.height = height;
  stats_.format = format;
  stats_.rotation = rotation;
  PipelineEvent event;
  event.type = "surface";
  event.generation = generation;
  event.width = width;
  event.height = height;
  event.format = format;
  event.rotation = rotation;
  emit(std::move(event));
}

void Pipeline::forward_clipboard(const ControlMessage& message) {
  if (message.clipboard_length > kClipboardMax)
    return producer_error("clipboard text of " + std::to_string(message.clipboard_length) + " bytes is over the " +
                          std::to_string(kClipboardMax) + " forwarded");
  if (!well_formed_utf8(reinterpret_cast<const uint8_t*>(message.clipboard), message.clipboard_length,
                        Utf8Controls::AllButNul))
    return producer_error("clipboard text is not well-formed UTF-8 (or holds a NUL)");
  stats_.clipboard_updates++;
  PipelineEvent event;
  event.type = "clipboard";
  event.text.assign(message.clipboard, message.clipboard_length);
  emit(std::move(event));
}

std::string surface_size_problem(uint32_t width, uint32_t height, uint32_t max_size, bool encoded_by_phone) {
  if (max_size == 0) return {};
  // Scaling down by up to half keeps the sidecar's own copies and the conversion near the stream's size; what
  // the phone encodes itself cannot be scaled at all.
  uint64_t limit = encoded_by_phone ? max_size : uint64_t{max_size} * 2;
  if (std::max(width, height) <= limit) return {};
  return "surface " + std::to_string(width) + "x" + std::to_string(height) +
         " is larger than this stream takes: its longest side may be at most " + std::to_string(limit) +
         (encoded_by_phone ? " (video.maxSize, for H.264 the phone encodes)" : " (twice video.maxSize)");
}

void encoded_size(uint32_t width, uint32_t height, uint32_t max_size, uint32_t* out_width, uint32_t* out_height) {
  uint32_t longest = width > height ? width : height;
  if (max_size == 0 || longest <= max_size) {
    *out_width = width;
    *out_height = height;
    return;
  }
  // Keep the aspect ratio; even sizes for 4:2:0.
  *out_width = std::max<uint32_t>(2, static_cast<uint32_t>(uint64_t{width} * max_size / longest) & ~1u);
  *out_height = std::max<uint32_t>(2, static_cast<uint32_t>(uint64_t{height} * max_size / longest) & ~1u);
}

PresentationClock::Stamp Pipeline::stamp(int64_t capture_time_ns, int64_t now_ns) {
  PresentationClock::Stamp stamp = clock_.stamp(capture_time_ns, now_ns);
  stats_.capture_times_unbelieved = clock_.unbelieved();
  return stamp;
}

void Pipeline::start_passthrough(const ControlMessage& surface) {
  mapping_.reset();
  frame_pending_ = false;
  passthrough_ = false;
  const SurfaceGeometry& g = surface.geometry;
  if (g.width == 0 || g.height == 0 || g.width > CP_FB_MAX_DIMENSION || g.height > CP_FB_MAX_DIMENSION)
    return producer_error("encoded surface size " + std::to_string(g.width) + "x" + std::to_string(g.height) +
                          " is outside 1..8192");
  std::string too_large = surface_size_problem(g.width, g.height, settings_.max_size, true);
  if (!too_large.empty()) return producer_error(too_large);
  passthrough_ = true;
  passthrough_generation_ = g.generation;
  assembler_.reset();
  stream_check_.reset(g.width, g.height);
  encode_width_ = g.width;  // the phone's pictures go out as they are
  encode_height_ = g.height;
  keyframe_requested_ = true;  // receivers start at an IDR: ask the phone for one
  announce_surface(g.generation, g.width, g.height, kEncodedH264Format, surface.rotation);
}

void Pipeline::pass_through(const ControlMessage& message) {
  if (!passthrough_ || message.fragment.generation != passthrough_generation_) {
    stats_.malformed_messages++;
    return;
  }
  uint64_t abandoned = assembler_.abandoned();
  std::string why;
  AccessUnitAssembler::Result result = assembler_.add(message.fragment, &why);
  if (assembler_.abandoned() != abandoned) {
    stats_.frames_stale++;  // a frame the phone never finished sending; later ones refer to it
    keyframe_requested_ = true;
  }
  if (result == AccessUnitAssembler::Result::Refused) {
    // Counted, not announced: a phone sending garbage at frame rate must not flood JavaScript with events.
    stats_.malformed_messages++;
    keyframe_requested_ = true;
    return;
  }
  if (result == AccessUnitAssembler::Result::Incomplete) return;
  bool keyframe = false;
  switch (stream_check_.check(assembler_.data(), assembler_.size(), &keyframe, &why)) {
    case EncodedStreamCheck::Verdict::Refused:
      keyframe_requested_ = true;
      return producer_error("refused H.264 from the phone: " + why);
    case EncodedStreamCheck::Verdict::WaitingForKeyframe:
      stats_.frames_stale++;  // it refers to a picture that was refused or never came
      keyframe_requested_ = true;
      return;
    case EncodedStreamCheck::Verdict::Pass:
      break;
  }

  int64_t now = monotonic_ns();
  PresentationClock::Stamp stamped = stamp(assembler_.capture_time_ns(), now);
  stats_.frames_published++;
  stats_.frames_encoded++;
  stats_.bytes_encoded += assembler_.size();
  if (keyframe) {
    stats_.keyframes++;
    std::lock_guard<std::mutex> lock(parameter_sets_mutex_);
    copy_parameter_sets(assembler_.data(), assembler_.size(), &parameter_sets_);
  }
  stats_.last_capture_to_encoded_ns = stamped.capture_time_ns ? now - stamped.capture_time_ns : 0;
  EncodedUnit unit;
  unit.data = assembler_.data();
  unit.size = assembler_.size();
  unit.pts_90khz = stamped.pts_90khz;
  unit.capture_time_ns = stamped.capture_time_ns;
  unit.keyframe = keyframe;  // from the pictures themselves, not the phone's flag
  unit.width = encode_width_;
  unit.height = encode_height_;
  deliver(unit);
}

void Pipeline::deliver(const EncodedUnit& unit) {
  if (settings_.srt_enabled) srt_.push(unit.data, unit.size, unit.pts_90khz, unit.keyframe);
  if (settings_.rtmp_enabled) rtmp_.push(unit);
  if (settings_.recording_enabled) recording_.push(unit);
  if (settings_.on_access_unit && settings_.on_access_unit(unit)) keyframe_requested_ = true;
}

void Pipeline::ask_phone_for_keyframe() {
  int64_t now = monotonic_ns();
  // At most five requests a second: a receiver flapping must not make the phone send only keyframes.
  if (producer_fd_ < 0 || now - last_phone_keyframe_request_ns_ < 200000000) return;
  last_phone_keyframe_request_ns_ = now;
  keyframe_requested_ = false;
  uint8_t request[64];
  std::size_t n = build_message(request, sizeof request, [](flatbuffers::FlatBufferBuilder& b) {
    return control::CreateMessage(b, control::Body::KeyframeRequest, control::CreateKeyframeRequest(b).Union());
  });
  send_message(producer_fd_, request, n);
}

void Pipeline::encode_newest(bool repeat_last) {
  const SurfaceGeometry& g = mapping_->geometry();
  SigbusGuard guard(mapping_->base(), mapping_->length());
  FrameRef frame;
  uint64_t after = repeat_last ? last_frame_number_ - 1 : last_frame_number_;
  bool found = mapping_->newest(after, &frame);
  if (guard.faulted()) {
    return refuse_shrunk_memory();
  }
  if (!found) {
    frame_pending_ = false;
    return;
  }
  if (!repeat_last) {
    if (last_frame_number_ && frame.frame_number > last_frame_number_ + 1)
      stats_.frames_stale += frame.frame_number - last_frame_number_ - 1;
    stats_.frames_published += last_frame_number_ ? frame.frame_number - last_frame_number_ : 1;
  }

  InputPlanes planes;
  int64_t started = monotonic_ns();
  bool scaling = encode_width_ != g.width || encode_height_ != g.height;
  if (g.format == CP_PIXEL_NV12 && !scaling) {
    // NV12 goes to the encoder as it lies in the mapping; x264 copies it during encode().
    planes.nv12 = true;
    planes.plane[0] = frame.pixels;
    planes.plane[1] = frame.pixels + uint64_t{g.stride} * g.height;
    planes.stride[0] = planes.stride[1] = g.stride;
  } else {
    uint8_t* out_y = picture_.data();
    uint8_t* out_u = out_y + std::size_t{g.width} * g.height;
    uint8_t* out_v = out_u + std::size_t{g.width / 2} * (g.height / 2);
    int w = static_cast<int>(g.width), h = static_cast<int>(g.height), s = static_cast<int>(g.stride);
    // libyuv names formats by their order in a little-endian 32-bit word: Android's RGBA (bytes R,G,B,A)
    // is libyuv's ABGR, and BGRA (bytes B,G,R,A) is libyuv's ARGB. RGBX ignores the fourth byte either way.
    // I420 rather than NV12: libyuv's *ToNV12 mallocs a row buffer on every call, *ToI420 allocates nothing.
    if (g.format == CP_PIXEL_NV12)
      libyuv::NV12ToI420(frame.pixels, s, frame.pixels + uint64_t{g.stride} * g.height, s, out_y, w, out_u, w / 2,
                         out_v, w / 2, w, h);
    else if (g.format == CP_PIXEL_BGRA8888)
      libyuv::ARGBToI420(frame.pixels, s, out_y, w, out_u, w / 2, out_v, w / 2, w, h);
    else
      libyuv::ABGRToI420(frame.pixels, s, out_y, w, out_u, w / 2, out_v, w / 2, w, h);
    planes.plane[0] = out_y;
    planes.plane[1] = out_u;
    planes.plane[2] = out_v;
    planes.stride[0] = g.width;
    planes.stride[1] = planes.stride[2] = g.width / 2;
    if (guard.faulted()) {
      return refuse_shrunk_memory();
    }
    if (!mapping_->unchanged(frame)) {
      // The producer lapped us mid-copy: that picture is torn. The next notification brings a whole one.
      stats_.frames_torn++;
      return;
    }
    if (scaling) {
      // Down to video.maxSize, from our own copy (the mapping is no longer read). At exactly 1/2 or 1/4
      // libyuv scales without allocating; at other ratios its bilinear scaler mallocs three row buffers per
      // frame (a few KiB, measured with native/test/alloc_counter.c): the one per-frame allocation left.
      uint8_t* scaled_y = out_v + std::size_t{g.width / 2} * (g.height / 2);
      uint8_t* scaled_u = scaled_y + std::size_t{encode_width_} * encode_height_;
      uint8_t* scaled_v = scaled_u + std::size_t{encode_width_ / 2} * (encode_height_ / 2);
      int sw = static_cast<int>(encode_width_), sh = static_cast<int>(encode_height_);
      libyuv::I420Scale(out_y, w, out_u, w / 2, out_v, w / 2, w, h, scaled_y, sw, scaled_u, sw / 2, scaled_v, sw / 2,
                        sw, sh, libyuv::kFilterBilinear);
      planes.plane[0] = scaled_y;
      planes.plane[1] = scaled_u;
      planes.plane[2] = scaled_v;
      planes.stride[0] = encode_width_;
      planes.stride[1] = planes.stride[2] = encode_width_ / 2;
    }
    stats_.convert_ns_total += static_cast<uint64_t>(monotonic_ns() - started);
  }

  // A still frame encoded again is stamped when it is encoded; it has no capture time of its own.
  int64_t stamped_at = monotonic_ns();
  PresentationClock::Stamp stamped = stamp(repeat_last ? stamped_at : frame.capture_time_ns, stamped_at);
  int64_t capture = repeat_last ? 0 : stamped.capture_time_ns;
  int64_t pts = stamped.pts_90khz;

  uint32_t bitrate = requested_bitrate_.exchange(0);
  if (bitrate && encoder_.set_bitrate(bitrate)) stats_.bitrate_kbps = bitrate;
  bool keyframe = keyframe_requested_.exchange(false);
  EncodedPicture encoded;
  int64_t encode_started = monotonic_ns();
  bool ok = encoder_.encode(planes, pts, keyframe, &encoded);
  int64_t done = monotonic_ns();
  stats_.encode_ns_total += static_cast<uint64_t>(done - encode_started);
  if (guard.faulted()) {
    return refuse_shrunk_memory();
  }
  if (g.format == CP_PIXEL_NV12 && !mapping_->unchanged(frame)) {
    // Already encoded from a torn picture: make the next frame a keyframe so the damage does not linger.
    stats_.frames_torn++;
    keyframe_requested_ = true;
  }
  if (!ok) {
    return emit_error("EncoderError", "x264 failed to encode a frame");
  }
  last_frame_number_ = frame.frame_number;
  // The fps cap counts from when this frame was taken, not from when its encode finished: counting from the
  // end would add the encode time to every interval and skip frames at exactly the producer's rate.
  last_encode_ns_ = started;
  frame_pending_ = false;
  if (encoded.size == 0) return;
  stats_.frames_encoded++;
  stats_.bytes_encoded += encoded.size;
  if (encoded.keyframe) stats_.keyframes++;
  stats_.last_capture_to_encoded_ns = capture ? done - capture : 0;
  EncodedUnit unit;
  unit.data = encoded.data;
  unit.size = encoded.size;
  unit.pts_90khz = encoded.pts;
  unit.capture_time_ns = capture;
  unit.keyframe = encoded.keyframe;
  unit.width = encode_width_;
  unit.height = encode_height_;
  deliver(unit);
}

void Pipeline::run() {
  // Named for top -H and for the allocation counter; x264's worker threads inherit the name.
  pthread_setname_np(pthread_self(), "cp-pipeline");
  while (running_) {
    int timeout_ms = 100;
    int64_t interval = 1000000000 / stats_.max_fps.load();
    int64_t due = last_encode_ns_ + interval - interval / 10;  // 10 % slack for clock jitter
    // The screen counts as still when nothing was encoded for this long: only then is the last frame encoded
    // again for a joiner. Sooner, a frame that is merely late (jitter at the phone) would be sent twice.
    int64_t still_after = std::max<int64_t>(2 * interval, 100000000);
    if (mapping_ && frame_pending_) {
      // Over the fps cap: wait until the next frame is due; frames published meanwhile are superseded.
      int64_t wait = due - monotonic_ns();
      timeout_ms = wait > 0 ? static_cast<int>(wait / 1000000) + 1 : 0;
    } else if (mapping_ && keyframe_requested_ && last_frame_number_) {
      int64_t wait = last_encode_ns_ + still_after - monotonic_ns();
      timeout_ms = wait > 0 ? std::min(timeout_ms, static_cast<int>(wait / 1000000) + 1) : 0;
    }
    short producer_events = POLLIN | (input_waiting_ ? POLLOUT : 0);
    pollfd fds[3] = {{wake_fd_, POLLIN, 0}, {listener_.fd(), POLLIN, 0}, {producer_fd_, producer_events, 0}};
    int n = ::poll(fds, producer_fd_ >= 0 ? 3 : 2, timeout_ms);
    if (n < 0 && errno != EINTR) break;
    if (fds[0].revents & POLLIN) {
      uint64_t value;
      (void)!::read(wake_fd_, &value, sizeof value);
    }
    if (fds[1].revents & POLLIN) accept_producer();
    if (producer_fd_ >= 0 && (fds[2].revents & POLLOUT)) {
      std::lock_guard<std::mutex> lock(input_mutex_);
      flush_input_locked();
    }
    if (producer_fd_ >= 0 && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) read_producer();
    if (passthrough_ && keyframe_requested_) ask_phone_for_keyframe();
    if (!mapping_) continue;
    if (frame_pending_) {
      if (monotonic_ns() >= due) encode_newest(false);
    } else if (keyframe_requested_ && last_frame_number_ && monotonic_ns() - last_encode_ns_ >= still_after) {
      // A static screen still answers a joiner: the last frame again, as a keyframe.
      encode_newest(true);
    }
  }
}

}  // namespace cloudphone
