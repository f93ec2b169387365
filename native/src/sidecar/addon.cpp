// The N-API surface of the native core: one class, Pipeline, that sidecar/src/native.ts wraps. Nothing
// here throws C++ exceptions; failures become JS errors with a name (ConfigError, ProducerError,
// EncoderError, SrtError, InputError) and a reason.
#include <napi.h>

#include <memory>

#include "event_gate.h"
#include "js_access_units.h"
#include "pipeline.h"
#include "srt_log.h"
#include "viewer_message.h"

namespace cloudphone {
namespace {

Napi::Value throw_named(Napi::Env env, const NativeError& failure) {
  Napi::Error error = Napi::Error::New(env, failure.reason);
  error.Set("name", Napi::String::New(env, failure.name));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
}

std::string string_option(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : fallback;
}

uint32_t uint_option(const Napi::Object& o, const char* key, uint32_t fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : fallback;
}

bool bool_option(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : fallback;
}

// An event on its way to JavaScript; when it is gone (delivered or not), it no longer counts as in flight.
struct GatedEvent {
  PipelineEvent event;
  std::shared_ptr<EventGate> gate;
  ~GatedEvent() { gate->delivered(); }
};

class PipelineWrap : public Napi::ObjectWrap<PipelineWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "Pipeline",
                       {InstanceMethod("start", &PipelineWrap::start), InstanceMethod("stop", &PipelineWrap::stop),
                        InstanceMethod("requestKeyframe", &PipelineWrap::request_keyframe),
                        InstanceMethod("setBitrate", &PipelineWrap::set_bitrate),
                        InstanceMethod("setMaxFps", &PipelineWrap::set_max_fps),
                        InstanceMethod("sendInput", &PipelineWrap::send_input),
                        InstanceMethod("releaseInput", &PipelineWrap::release_input),
                        InstanceMethod("stats", &PipelineWrap::stats),
                        InstanceMethod("parameterSets", &PipelineWrap::parameter_sets),
                        InstanceMethod("onAccessUnit", &PipelineWrap::on_access_unit)});
  }

  explicit PipelineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PipelineWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      throw_named(env, error("ConfigError", "Pipeline(options, onEvent) needs an options object and a function"));
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    settings_.shared_dir = string_option(o, "sharedDir", "");
    settings_.socket_name = string_option(o, "socketName", "control.sock");
    settings_.max_fps = uint_option(o, "maxFps", 30);
    settings_.bitrate_kbps = uint_option(o, "bitrateKbps", 4000);
    settings_.keyframe_interval_seconds = uint_option(o, "keyframeIntervalSeconds", 2);
    settings_.intra_refresh = bool_option(o, "intraRefresh", false);
    settings_.preset = string_option(o, "preset", "ultrafast");
    settings_.encoder = string_option(o, "encoder", "auto");
    settings_.max_size = uint_option(o, "maxSize", 0);
    Napi::Value uids = o.Get("phoneUids");
    if (uids.IsArray()) {
      Napi::Array list = uids.As<Napi::Array>();
      for (uint32_t i = 0; i < list.Length(); i++) {
        Napi::Value uid = list.Get(i);
        if (!uid.IsNumber() || uid.As<Napi::Number>().DoubleValue() < 0 ||
            uid.As<Napi::Number>().DoubleValue() > 4294967294.0) {
          throw_named(env, error("ConfigError", "phoneUids must be uids (integers 0 to 4294967294)"));
          return;
        }
        settings_.phone_uids.push_back(uid.As<Napi::Number>().Uint32Value());
      }
    }
    Napi::Value srt = o.Get("srt");
    if (srt.IsObject()) {
      Napi::Object s = srt.As<Napi::Object>();
      settings_.srt_enabled = true;
      settings_.srt.listener = bool_option(s, "listener", false);
      settings_.srt.host = string_option(s, "host", "");
      settings_.srt.port = static_cast<uint16_t>(uint_option(s, "port", 0));
      settings_.srt.latency_ms = uint_option(s, "latencyMs", 120);
      settings_.srt.passphrase = string_option(s, "passphrase", "");
      settings_.srt.key_length = uint_option(s, "keyLength", 16);
      settings_.srt.stream_id = string_option(s, "streamId", "");
      settings_.srt.max_receivers = uint_option(s, "maxReceivers", 4);
    }
    Napi::Value rtmp = o.Get("rtmp");
    if (rtmp.IsObject()) {
      settings_.rtmp_enabled = true;
      settings_.rtmp.url = string_option(rtmp.As<Napi::Object>(), "url", "");
      settings_.rtmp.key = string_option(rtmp.As<Napi::Object>(), "key", "");
    }
    Napi::Value recording = o.Get("recording");
    if (recording.IsObject()) {
      Napi::Object r = recording.As<Napi::Object>();
      settings_.recording_enabled = true;
      settings_.recording.directory = string_option(r, "directory", "");
      settings_.recording.segment_seconds = uint_option(r, "segmentSeconds", 60);
      settings_.recording.max_age_seconds = uint_option(r, "maxAgeSeconds", 0);
      Napi::Value max_bytes = r.Get("maxBytes");
      double bytes = max_bytes.IsNumber() ? max_bytes.As<Napi::Number>().DoubleValue() : 0;
      if (!(bytes >= 0 && bytes <= 9007199254740991.0)) bytes = 0;  // refused by the sink with a reason
      settings_.recording.max_bytes = static_cast<uint64_t>(bytes);
    }
    events_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "cloudphone-pipeline-events", 0, 1);
    // The pipeline is stopped explicitly; pending events must not keep a finished process alive.
    events_.Unref(env);
  }

  ~PipelineWrap() override { shut_down(); }

 private:
  Napi::Value start(const Napi::CallbackInfo& info) {
    if (started_ || events_released_)
      return throw_named(info.Env(), error("StateError", "a pipeline starts once and cannot restart after stop"));
    Napi::ThreadSafeFunction events = events_;
    std::shared_ptr<EventGate> gate = event_gate_;
    NativeError failure = pipeline_.start(settings_, [events, gate](PipelineEvent event) mutable {
      EventGate::Verdict verdict = gate->admit(event.type);
      if (!verdict.deliver) return;
      event.suppressed = verdict.suppressed;
      // Owned by the call: however it ends (delivered, or the function already released), the gate hears of it.
      auto* heap = new GatedEvent{std::move(event), gate};
      napi_status status = events.NonBlockingCall(heap, [](Napi::Env env, Napi::Function callback, GatedEvent* g) {
        std::unique_ptr<GatedEvent> owned(g);
        const PipelineEvent* e = &g->event;
        if (!env || !callback) return;
        Napi::Object o = Napi::Object::New(env);
        o.Set("type", e->type);
        if (e->suppressed > 0) o.Set("suppressed", static_cast<double>(e->suppressed));
        if (!e->name.empty()) o.Set("name", e->name);
        if (!e->reason.empty()) o.Set("reason", e->reason);
        if (!e->producer.empty()) o.Set("producer", e->producer);
        if (e->type == "surface") {
          o.Set("generation", e->generation);
          o.Set("width", e->width);
          o.Set("height", e->height);
          o.Set("format", e->format);
          o.Set("rotation", e->rotation);
        }
        if (e->type == "clipboard") o.Set("text", Napi::String::New(env, e->text));
        callback.Call({o});
      });
      if (status != napi_ok) delete heap;
    });
    if (failure) return throw_named(info.Env(), failure);
    started_ = true;
    return info.Env().Undefined();
  }

  Napi::Value stop(const Napi::CallbackInfo& info) {
    shut_down();
    return info.Env().Undefined();
  }

  // After the native threads are joined no event can come, so the event function is released and nothing
  // of this pipeline keeps the process alive.
  void shut_down() {
    pipeline_.stop();
    if (events_released_) return;
    events_released_ = true;
    if (access_units_) {
      // The queue is freed once JavaScript has had its last pictures: keep its count, drop the pointer.
      access_units_dropped_ = access_units_->dropped();
      access_units_->release();
      access_units_ = nullptr;
    }
    if (static_cast<napi_threadsafe_function>(events_) != nullptr) events_.Release();
  }

  Napi::Value request_keyframe(const Napi::CallbackInfo& info) {
    pipeline_.request_keyframe();
    return info.Env().Undefined();
  }

  // The one number argument of a setter, within [min, max]; false (with a ConfigError thrown) otherwise.
  static bool number_argument(const Napi::CallbackInfo& info, const char* what, uint32_t min, uint32_t max,
                              uint32_t* value) {
    if (info.Length() < 1 || !info[0].IsNumber()) {
      throw_named(info.Env(), error("ConfigError", std::string(what) + " needs a number"));
      return false;
    }
    *value = info[0].As<Napi::Number>().Uint32Value();
    if (*value < min || *value > max) {
      throw_named(info.Env(), error("ConfigError", std::string(what) + " must be " + std::to_string(min) + " to " +
                                                       std::to_string(max)));
      return false;
    }
    return true;
  }

  Napi::Value set_bitrate(const Napi::CallbackInfo& info) {
    uint32_t kbps = 0;
    if (number_argument(info, "setBitrate(kbps)", 50, 100000, &kbps)) pipeline_.set_bitrate(kbps);
    return info.Env().Undefined();
  }

  Napi::Value set_max_fps(const Napi::CallbackInfo& info) {
    uint32_t fps = 0;
    if (number_argument(info, "setMaxFps(fps)", 1, 240, &fps)) pipeline_.set_max_fps(fps);
    return info.Env().Undefined();
  }

  static uint32_t viewer_argument(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsNumber()) return 0;
    double id = info[0].As<Napi::Number>().DoubleValue();
    return id >= 1 && id <= 4294967295.0 && id == static_cast<double>(static_cast<uint32_t>(id))
               ? static_cast<uint32_t>(id)
               : 0;
  }

  Napi::Value send_input(const Napi::CallbackInfo& info) {
    uint32_t viewer = viewer_argument(info);
    if (viewer == 0 || info.Length() < 2 || !info[1].IsTypedArray())
      return throw_named(info.Env(), error("InputError", "sendInput(viewer, message) needs a viewer id and a Uint8Array"));
    Napi::Uint8Array bytes = info[1].As<Napi::Uint8Array>();
    NativeError failure = pipeline_.send_input(viewer, bytes.Data(), bytes.ByteLength());
    if (failure) return throw_named(info.Env(), failure);
    return info.Env().Undefined();
  }

  Napi::Value release_input(const Napi::CallbackInfo& info) {
    uint32_t viewer = viewer_argument(info);
    if (viewer == 0) return throw_named(info.Env(), error("InputError", "releaseInput(viewer) needs a viewer id"));
    pipeline_.release_input(viewer);
    return info.Env().Undefined();
  }

  Napi::Value stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const PipelineStats& s = pipeline_.stats();
    Napi::Object o = Napi::Object::New(env);
    auto number = [&](const char* key, double value) { o.Set(key, Napi::Number::New(env, value)); };
    number("framesPublished", static_cast<double>(s.frames_published));
    number("eventsSuppressed", static_cast<double>(event_gate_->suppressed_total()));
    number("srtLogLinesSuppressed", static_cast<double>(srt_log_lines_suppressed()));
    number("framesEncoded", static_cast<double>(s.frames_encoded));
    number("framesStale", static_cast<double>(s.frames_stale));
    number("framesTorn", static_cast<double>(s.frames_torn));
    number("keyframes", static_cast<double>(s.keyframes));
    number("bytesEncoded", static_cast<double>(s.bytes_encoded));
    number("encodeSecondsTotal", static_cast<double>(s.encode_ns_total) / 1e9);
    number("convertSecondsTotal", static_cast<double>(s.convert_ns_total) / 1e9);
    number("malformedMessages", static_cast<double>(s.malformed_messages));
    number("producerErrors", static_cast<double>(s.producer_errors));
    number("producerConnects", static_cast<double>(s.producer_connects));
    number("captureTimesUnbelieved", static_cast<double>(s.capture_times_unbelieved));
    number("connectionsRefused", static_cast<double>(s.connections_refused));
    number("lastCaptureToEncodedMs", static_cast<double>(s.last_capture_to_encoded_ns) / 1e6);
    number("bitrateKbps", s.bitrate_kbps);
    number("maxFps", s.max_fps);
    o.Set("producerConnected", Napi::Boolean::New(env, s.producer_connected));
    number("width", s.width);
    number("height", s.height);
    number("format", s.format);
    number("generation", s.generation);
    number("rotation", s.rotation);
    number("clipboardUpdates", static_cast<double>(s.clipboard_updates));
    o.Set("encoder", pipeline_.encoder_choice().name);
    number("accessUnitsDroppedForJs",
           static_cast<double>(access_units_ ? access_units_->dropped() : access_units_dropped_));
    o.Set("encoderReason", pipeline_.encoder_choice().reason);
    InputCounters input = pipeline_.input_counters();
    Napi::Object i = Napi::Object::New(env);
    i.Set("sent", static_cast<double>(input.sent));
    i.Set("merged", static_cast<double>(input.merged));
    i.Set("deferred", static_cast<double>(input.deferred));
    i.Set("released", static_cast<double>(input.released));
    i.Set("waiting", static_cast<double>(pipeline_.input_waiting()));
    o.Set("input", i);
    SrtStats srt = pipeline_.srt_stats();
    Napi::Object r = Napi::Object::New(env);
    r.Set("connected", Napi::Boolean::New(env, srt.receivers > 0));
    r.Set("rttMs", srt.link.rtt_ms);
    r.Set("bandwidthMbps", srt.link.bandwidth_mbps);
    r.Set("sendRateMbps", srt.link.send_rate_mbps);
    r.Set("packetsSent", static_cast<double>(srt.link.packets_sent));
    r.Set("packetsLost", static_cast<double>(srt.link.packets_lost));
    r.Set("packetsRetransmitted", static_cast<double>(srt.link.packets_retransmitted));
    r.Set("packetsDropped", static_cast<double>(srt.link.packets_dropped));
    r.Set("sendBufferMs", static_cast<double>(srt.link.send_buffer_ms));
    r.Set("connects", static_cast<double>(srt.connects));
    r.Set("receivers", static_cast<double>(srt.receivers));
    r.Set("refused", static_cast<double>(srt.refused));
    r.Set("socketsCreated", static_cast<double>(srt.sockets_created));
    r.Set("accessUnitsSent", static_cast<double>(srt.link.access_units_sent));
    r.Set("accessUnitsDropped", static_cast<double>(srt.link.access_units_dropped));
    o.Set("srt", r);
    RtmpStats rtmp = pipeline_.rtmp_stats();
    Napi::Object m = Napi::Object::New(env);
    m.Set("publishing", Napi::Boolean::New(env, rtmp.publishing));
    m.Set("sessions", static_cast<double>(rtmp.sessions));
    m.Set("failedSessions", static_cast<double>(rtmp.failed_sessions));
    m.Set("accessUnitsSent", static_cast<double>(rtmp.access_units_sent));
    m.Set("accessUnitsDropped", static_cast<double>(rtmp.access_units_dropped));
    m.Set("bytesSent", static_cast<double>(rtmp.bytes_sent));
    o.Set("rtmp", m);
    RecordingStats recording = pipeline_.recording_stats();
    Napi::Object rec = Napi::Object::New(env);
    rec.Set("recording", Napi::Boolean::New(env, recording.recording));
    rec.Set("segments", static_cast<double>(recording.segments));
    rec.Set("segmentsRemoved", static_cast<double>(recording.segments_removed));
    rec.Set("accessUnitsWritten", static_cast<double>(recording.access_units_written));
    rec.Set("accessUnitsDropped", static_cast<double>(recording.access_units_dropped));
    rec.Set("bytesWritten", static_cast<double>(recording.bytes_written));
    rec.Set("bytesStored", static_cast<double>(recording.bytes_stored));
    rec.Set("failures", static_cast<double>(recording.failures));
    o.Set("recording", rec);
    return o;
  }

  // onAccessUnit(listener): every encoded picture, as {data, pts90k, captureNs, keyframe}; before start().
  Napi::Value on_access_unit(const Napi::CallbackInfo& info) {
    if (started_ || access_units_)
      return throw_named(info.Env(), error("StateError", "onAccessUnit is set once, before start()"));
    if (info.Length() < 1 || !info[0].IsFunction())
      return throw_named(info.Env(), error("ConfigError", "onAccessUnit(listener) needs a function"));
    JsAccessUnits* queue = JsAccessUnits::create(info.Env(), info[0].As<Napi::Function>());
    access_units_ = queue;
    settings_.on_access_unit = [queue](const EncodedUnit& unit) { return queue->offer(unit); };
    return info.Env().Undefined();
  }

  Napi::Value parameter_sets(const Napi::CallbackInfo& info) {
    std::vector<uint8_t> sets = pipeline_.parameter_sets();
    return Napi::Buffer<uint8_t>::Copy(info.Env(), sets.data(), sets.size());
  }

  PipelineSettings settings_;
  Pipeline pipeline_;
  Napi::ThreadSafeFunction events_;
  std::shared_ptr<EventGate> event_gate_ = std::make_shared<EventGate>();
  JsAccessUnits* access_units_ = nullptr;  // owned by its thread-safe function's finalizer
  uint64_t access_units_dropped_ = 0;
  bool events_released_ = false;
  bool started_ = false;
};

// readViewerMessage(bytes): one data-channel message from a WebRTC viewer, verified and bounds-checked.
// Returns { kind, ... } with kind 'invalid' (and a reason), 'keyframe-request', 'pong', 'render-report',
// 'stats' or 'input' (with control: the message to pass to Pipeline.sendInput).
Napi::Value read_viewer_message_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray())
    return throw_named(env, error("InputError", "readViewerMessage(bytes) needs a Uint8Array"));
  Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
  ViewerMessage m = read_viewer_message(bytes.Data(), bytes.ByteLength());
  Napi::Object o = Napi::Object::New(env);
  auto number = [&](const char* key, double value) { o.Set(key, Napi::Number::New(env, value)); };
  switch (m.kind) {
    case ViewerKind::Invalid:
      o.Set("kind", "invalid");
      o.Set("reason", m.reason);
      break;
    case ViewerKind::KeyframeRequest:
      o.Set("kind", "keyframe-request");
      break;
    case ViewerKind::Pong:
      o.Set("kind", "pong");
      number("id", m.id);
      number("sentUs", static_cast<double>(m.sent_us));
      number("viewerTimeUs", m.viewer_time_us);
      break;
    case ViewerKind::RenderReport:
      o.Set("kind", "render-report");
      number("rtpTimestamp", m.rtp_timestamp);
      number("renderedAtUs", m.rendered_at_us);
      break;
    case ViewerKind::Stats:
      o.Set("kind", "stats");
      number("framesDecoded", m.stats.frames_decoded);
      number("framesDropped", m.stats.frames_dropped);
      number("packetsLost", m.stats.packets_lost);
      number("fps", m.stats.fps);
      number("jitterMs", m.stats.jitter_ms);
      number("rttMs", m.stats.rtt_ms);
      number("bitrateKbps", m.stats.bitrate_kbps);
      break;
    case ViewerKind::Input:
      o.Set("kind", "input");
      o.Set("control", Napi::Buffer<uint8_t>::Copy(env, m.control.data(), m.control.size()));
      o.Set("release", Napi::Boolean::New(env, m.release));
      o.Set("rotate", Napi::Boolean::New(env, m.rotate));
      break;
  }
  return o;
}

}  // namespace
}  // namespace cloudphone

static Napi::Object InitCloudphone(Napi::Env env, Napi::Object exports) {
  exports.Set("Pipeline", cloudphone::PipelineWrap::define(env));
  exports.Set("readViewerMessage", Napi::Function::New(env, cloudphone::read_viewer_message_js));
  exports.Set("protocolVersion", Napi::Number::New(env, 1));
  return exports;
}

NODE_API_MODULE(cloudphone, InitCloudphone)
