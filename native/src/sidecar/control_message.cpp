#include "control_message.h"

#include <cctype>

#include "cloudphone/control_generated.h"
#include "cloudphone/producer.h"

namespace cloudphone {

// The sidecar's own limits are the ones the C library promises phones.
static_assert(kClipboardMax == CP_CLIPBOARD_MAX, "the clipboard limit is the C library's");

namespace {

std::string bounded(const flatbuffers::String* text, std::size_t limit) {
  if (!text) return {};
  return std::string(text->c_str(), std::min<std::size_t>(text->size(), limit));
}

SurfaceMemory memory_kind(control::MemoryKind kind) {
  switch (kind) {
    case control::MemoryKind::SharedFile:
      return SurfaceMemory::SharedFile;
    case control::MemoryKind::PassedFd:
      return SurfaceMemory::PassedFd;
    case control::MemoryKind::EncodedH264:
      return SurfaceMemory::EncodedH264;
    default:
      return SurfaceMemory::Unknown;
  }
}

}  // namespace

bool verify_control_message(const uint8_t* data, std::size_t length) {
  // Small depth and table limits: no legitimate control message nests deeper than Message -> body -> field.
  flatbuffers::Verifier::Options options;
  options.max_depth = 8;
  options.max_tables = 16;
  flatbuffers::Verifier verifier(data, length, options);
  return control::VerifyMessageBuffer(verifier);
}

ControlMessage read_control_message(const uint8_t* data, std::size_t length) {
  ControlMessage out;
  if (!verify_control_message(data, length)) return out;
  const control::Message* message = control::GetMessage(data);
  // The Verifier accepts a union whose type is set but whose table is absent: that is malformed here.
  if (message->body_type() != control::Body::NONE && !message->body()) return out;
  switch (message->body_type()) {
    case control::Body::Hello: {
      const control::Hello* hello = message->body_as_Hello();
      out.kind = ControlKind::Hello;
      out.protocol_version = hello->protocol_version();
      out.producer = bounded(hello->producer(), 128);
      break;
    }
    case control::Body::Surface: {
      const control::Surface* surface = message->body_as_Surface();
      out.kind = ControlKind::Surface;
      out.geometry.generation = surface->generation();
      out.geometry.width = surface->width();
      out.geometry.height = surface->height();
      out.geometry.format = static_cast<uint32_t>(surface->format());
      out.geometry.stride = surface->stride();
      out.geometry.slot_count = surface->slot_count();
      out.geometry.total_size = surface->size();
      out.memory = memory_kind(surface->memory());
      out.path = bounded(surface->path(), 256);
      out.rotation = static_cast<uint8_t>(surface->rotation());
      break;
    }
    case control::Body::FrameReady:
      out.kind = ControlKind::FrameReady;
      out.geometry.generation = message->body_as_FrameReady()->generation();
      break;
    case control::Body::EncodedFrame: {
      const control::EncodedFrame* frame = message->body_as_EncodedFrame();
      out.kind = ControlKind::EncodedFrame;
      out.fragment.generation = frame->generation();
      out.fragment.capture_time_ns = static_cast<int64_t>(frame->capture_time_ns());
      out.fragment.keyframe = frame->keyframe();
      out.fragment.data = frame->data()->data();  // required: the Verifier refused a message without it
      out.fragment.length = frame->data()->size();
      out.fragment.offset = frame->offset();
      out.fragment.frame_size = frame->size();
      break;
    }
    case control::Body::Goodbye:
      out.kind = ControlKind::Goodbye;
      out.reason = bounded(message->body_as_Goodbye()->reason(), 256);
      break;
    case control::Body::cloudphone_input_Touch: {
      const input::Touch* touch = message->body_as_cloudphone_input_Touch();
      out.kind = ControlKind::Input;
      out.input.kind = InputKind::Touch;
      out.input.action = static_cast<uint8_t>(touch->action());
      out.input.pointer_id = touch->pointer_id();
      out.input.x = touch->x();
      out.input.y = touch->y();
      out.input.pressure = touch->pressure();
      break;
    }
    case control::Body::cloudphone_input_Key: {
      const input::Key* key = message->body_as_cloudphone_input_Key();
      out.kind = ControlKind::Input;
      out.input.kind = InputKind::Key;
      out.input.action = static_cast<uint8_t>(key->action());
      out.input.keycode = key->keycode();
      out.input.repeat = key->repeat();
      out.input.meta_state = key->meta_state();
      break;
    }
    case control::Body::cloudphone_input_Text: {
      const flatbuffers::String* text = message->body_as_cloudphone_input_Text()->text();  // required
      out.kind = ControlKind::Input;
      out.input.kind = InputKind::Text;
      out.input.text = text->c_str();
      out.input.text_length = text->size();
      break;
    }
    case control::Body::cloudphone_input_Scroll: {
      const input::Scroll* scroll = message->body_as_cloudphone_input_Scroll();
      out.kind = ControlKind::Input;
      out.input.kind = InputKind::Scroll;
      out.input.x = scroll->x();
      out.input.y = scroll->y();
      out.input.horizontal = scroll->horizontal();
      out.input.vertical = scroll->vertical();
      break;
    }
    case control::Body::cloudphone_input_Rotate:
      out.kind = ControlKind::Input;
      out.input.kind = InputKind::Rotate;
      out.input.rotation = static_cast<uint8_t>(message->body_as_cloudphone_input_Rotate()->rotation());
      break;
    case control::Body::Clipboard: {
      const flatbuffers::String* text = message->body_as_Clipboard()->text();  // required
      out.kind = ControlKind::Clipboard;
      out.clipboard = text->c_str();
      out.clipboard_length = text->size();
      break;
    }
    default:
      // A verified message whose body only flows the other way (Welcome, KeyframeRequest) or is empty.
      out.kind = ControlKind::Other;
      break;
  }
  return out;
}

bool safe_file_name(const std::string& name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

}  // namespace cloudphone
