#include "viewer_message.h"

#include <cmath>

#include "cloudphone/control_generated.h"
#include "cloudphone/viewer_generated.h"
#include "utf8.h"

namespace cloudphone {
namespace {

// Android's META_* bits (shift, alt, sym, function, ctrl, meta, and the lock states).
constexpr uint32_t kKnownMetaBits = 0x7770FF;

bool unit_interval(float value) { return std::isfinite(value) && value >= 0.0f && value <= 1.0f; }
bool within(float value, float limit) { return std::isfinite(value) && std::fabs(value) <= limit; }

ViewerMessage invalid(const char* reason) {
  ViewerMessage out;
  out.reason = reason;
  return out;
}

// An input event for the phone: build(builder) makes the cloudphone.control Message body from checked values.
template <typename Build>
ViewerMessage input_message(Build build) {
  flatbuffers::FlatBufferBuilder builder(128);
  builder.Finish(build(builder), control::MessageIdentifier());
  ViewerMessage out;
  out.kind = ViewerKind::Input;
  out.control.assign(builder.GetBufferPointer(), builder.GetBufferPointer() + builder.GetSize());
  return out;
}

ViewerMessage touch(const input::Touch* t) {
  if (t->action() > input::TouchAction::MAX) return invalid("touch action is unknown");
  if (t->pointer_id() > 9) return invalid("touch pointer id must be 0 to 9");
  if (!unit_interval(t->x()) || !unit_interval(t->y())) return invalid("touch coordinates must be 0 to 1");
  if (!unit_interval(t->pressure())) return invalid("touch pressure must be 0 to 1");
  ViewerMessage out = input_message([&](flatbuffers::FlatBufferBuilder& b) {
    auto event = input::CreateTouch(b, t->action(), t->pointer_id(), t->x(), t->y(), t->pressure());
    return control::CreateMessage(b, control::Body::cloudphone_input_Touch, event.Union());
  });
  out.release = t->action() == input::TouchAction::Up || t->action() == input::TouchAction::Cancel;
  return out;
}

ViewerMessage key(const input::Key* k) {
  if (k->action() > input::KeyAction::MAX) return invalid("key action is unknown");
  if (k->keycode() == 0 || k->keycode() > kLastAndroidKeycode) return invalid("key code is not an Android key code");
  if (k->repeat() > 10000) return invalid("key repeat count is too large");
  if (k->meta_state() & ~kKnownMetaBits) return invalid("key meta state has unknown bits");
  ViewerMessage out = input_message([&](flatbuffers::FlatBufferBuilder& b) {
    auto event = input::CreateKey(b, k->action(), k->keycode(), k->repeat(), k->meta_state());
    return control::CreateMessage(b, control::Body::cloudphone_input_Key, event.Union());
  });
  out.release = k->action() == input::KeyAction::Up;
  return out;
}

ViewerMessage text(const input::Text* t) {
  const flatbuffers::String* s = t->text();
  if (!s || s->size() == 0) return invalid("text is empty");
  if (s->size() > kViewerTextMax) return invalid("text is longer than 255 bytes");
  if (!well_formed_utf8(reinterpret_cast<const uint8_t*>(s->data()), s->size(), Utf8Controls::TabAndNewline))
    return invalid("text is not clean UTF-8");
  return input_message([&](flatbuffers::FlatBufferBuilder& b) {
    auto event = input::CreateText(b, b.CreateString(s->data(), s->size()));
    return control::CreateMessage(b, control::Body::cloudphone_input_Text, event.Union());
  });
}

ViewerMessage scroll(const input::Scroll* s) {
  if (!unit_interval(s->x()) || !unit_interval(s->y())) return invalid("scroll position must be 0 to 1");
  if (!within(s->horizontal(), 16) || !within(s->vertical(), 16)) return invalid("scroll amount must be -16 to 16");
  return input_message([&](flatbuffers::FlatBufferBuilder& b) {
    auto event = input::CreateScroll(b, s->x(), s->y(), s->horizontal(), s->vertical());
    return control::CreateMessage(b, control::Body::cloudphone_input_Scroll, event.Union());
  });
}

ViewerMessage rotate(const input::Rotate* r) {
  if (r->rotation() > input::Rotation::MAX) return invalid("rotation must be 0 to 3");
  ViewerMessage out = input_message([&](flatbuffers::FlatBufferBuilder& b) {
    auto event = input::CreateRotate(b, r->rotation());
    return control::CreateMessage(b, control::Body::cloudphone_input_Rotate, event.Union());
  });
  out.rotate = true;
  return out;
}

}  // namespace

ViewerMessage read_viewer_message(const uint8_t* data, std::size_t length) {
  if (length > kViewerMessageMax) return invalid("message is larger than 1024 bytes");
  flatbuffers::Verifier::Options options;
  options.max_depth = 8;
  options.max_tables = 16;
  flatbuffers::Verifier verifier(data, length, options);
  if (!viewer::VerifyMessageBuffer(verifier)) return invalid("message is not a valid cloudphone.viewer Message");
  const viewer::Message* message = viewer::GetMessage(data);
  if (message->body_type() == viewer::Body::NONE || !message->body()) return invalid("message has no body");
  ViewerMessage out;
  switch (message->body_type()) {
    case viewer::Body::KeyframeRequest:
      out.kind = ViewerKind::KeyframeRequest;
      return out;
    case viewer::Body::Pong: {
      const viewer::Pong* pong = message->body_as_Pong();
      if (!std::isfinite(pong->viewer_time_us())) return invalid("pong time is not finite");
      out.kind = ViewerKind::Pong;
      out.id = pong->id();
      out.sent_us = pong->sent_us();
      out.viewer_time_us = pong->viewer_time_us();
      return out;
    }
    case viewer::Body::RenderReport: {
      const viewer::RenderReport* report = message->body_as_RenderReport();
      if (!std::isfinite(report->rendered_at_us())) return invalid("render time is not finite");
      out.kind = ViewerKind::RenderReport;
      out.rtp_timestamp = report->rtp_timestamp();
      out.rendered_at_us = report->rendered_at_us();
      return out;
    }
    case viewer::Body::Stats: {
      const viewer::Stats* s = message->body_as_Stats();
      if (!within(s->fps(), 1000) || !within(s->jitter_ms(), 1e6) || !within(s->rtt_ms(), 1e6) ||
          !within(s->bitrate_kbps(), 1e7))
        return invalid("stats are out of range");
      out.kind = ViewerKind::Stats;
      out.stats = {s->frames_decoded(), s->frames_dropped(), s->packets_lost(),
                   std::fabs(s->fps()), std::fabs(s->jitter_ms()), std::fabs(s->rtt_ms()), std::fabs(s->bitrate_kbps())};
      return out;
    }
    case viewer::Body::cloudphone_input_Touch:
      return touch(message->body_as_cloudphone_input_Touch());
    case viewer::Body::cloudphone_input_Key:
      return key(message->body_as_cloudphone_input_Key());
    case viewer::Body::cloudphone_input_Text:
      return text(message->body_as_cloudphone_input_Text());
    case viewer::Body::cloudphone_input_Scroll:
      return scroll(message->body_as_cloudphone_input_Scroll());
    case viewer::Body::cloudphone_input_Rotate:
      return rotate(message->body_as_cloudphone_input_Rotate());
    default:
      return invalid("viewers do not send this message");
  }
}

}  // namespace cloudphone
