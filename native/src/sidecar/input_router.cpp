#include "input_router.h"

#include <algorithm>
#include <cstring>

#include "cloudphone/control_generated.h"
#include "control_socket.h"

namespace cloudphone {

InputRouter::InputRouter() : builder_(512) {}

int InputRouter::finger_of(uint32_t viewer, uint8_t viewer_pointer) const {
  for (std::size_t i = 0; i < kPhonePointers; i++)
    if (fingers_[i].viewer == viewer && fingers_[i].viewer_pointer == viewer_pointer) return static_cast<int>(i);
  return -1;
}

int InputRouter::key_of(uint32_t viewer, uint32_t keycode) const {
  for (std::size_t i = 0; i < kHeldKeysMax; i++)
    if (keys_[i].viewer == viewer && keys_[i].keycode == keycode) return static_cast<int>(i);
  return -1;
}

const char* InputRouter::route(uint32_t viewer, const InputEvent& event) {
  if (viewer == 0) return "input needs a viewer";
  switch (event.kind) {
    case InputKind::Touch:
      return touch(viewer, event);
    case InputKind::Key:
      return key(viewer, event);
    case InputKind::Scroll:
      if (count_ >= kMergeAfter && merge(event)) return nullptr;
      return enqueue(event, false);
    case InputKind::Text:
      return enqueue(event, false);
    case InputKind::Rotate:
      if (event.rotation > kRotationMax) return "rotation must be 0 to 3";
      return enqueue(event, false);
  }
  return "unknown input";
}

const char* InputRouter::touch(uint32_t viewer, InputEvent event) {
  int finger = finger_of(viewer, event.pointer_id);
  if (event.action == kTouchDown) {
    if (finger >= 0) return "that finger is already down";
    for (std::size_t i = 0; i < kPhonePointers && finger < 0; i++)
      if (fingers_[i].viewer == 0) finger = static_cast<int>(i);
    if (finger < 0) return "every finger on the phone is down";
    uint8_t viewer_pointer = event.pointer_id;
    event.pointer_id = static_cast<uint8_t>(finger);
    if (const char* refused = enqueue(event, false)) return refused;
    fingers_[finger] = Finger{viewer, viewer_pointer, event.x, event.y};
    return nullptr;
  }
  if (finger < 0) return "that finger is not down";
  event.pointer_id = static_cast<uint8_t>(finger);
  if (event.action == kTouchMove) {
    fingers_[finger].x = event.x;
    fingers_[finger].y = event.y;
    if (count_ >= kMergeAfter && merge(event)) return nullptr;
    return enqueue(event, false);
  }
  fingers_[finger] = Finger{};
  return enqueue(event, true);  // never refused: room is kept for it
}

const char* InputRouter::key(uint32_t viewer, const InputEvent& event) {
  int held = key_of(viewer, event.keycode);
  if (event.action == kKeyUp) {
    if (held < 0) return "that key is not down";
    keys_[held] = Key{};
    return enqueue(event, true);
  }
  if (held >= 0) return enqueue(event, false);  // auto-repeat of a key held
  int free_key = -1;
  for (std::size_t i = 0; i < kHeldKeysMax && free_key < 0; i++)
    if (keys_[i].viewer == 0) free_key = static_cast<int>(i);
  if (free_key < 0) return "too many keys are down";
  if (const char* refused = enqueue(event, false)) return refused;
  keys_[free_key] = Key{viewer, event.keycode};
  return nullptr;
}

void InputRouter::release(uint32_t viewer) {
  if (viewer == 0) return;
  for (std::size_t i = 0; i < kPhonePointers; i++) {
    if (fingers_[i].viewer != viewer) continue;
    InputEvent cancel;
    cancel.kind = InputKind::Touch;
    cancel.action = kTouchCancel;
    cancel.pointer_id = static_cast<uint8_t>(i);
    cancel.x = fingers_[i].x;
    cancel.y = fingers_[i].y;
    cancel.pressure = 0;
    fingers_[i] = Finger{};
    enqueue(cancel, true);
    counters_.released++;
  }
  for (Key& held : keys_) {
    if (held.viewer != viewer) continue;
    InputEvent up;
    up.kind = InputKind::Key;
    up.action = kKeyUp;
    up.keycode = held.keycode;
    held = Key{};
    enqueue(up, true);
    counters_.released++;
  }
}

void InputRouter::reset() {
  for (Finger& finger : fingers_) finger = Finger{};
  for (Key& held : keys_) held = Key{};
  head_ = count_ = starts_ = 0;
}

const char* InputRouter::enqueue(const InputEvent& event, bool release) {
  if (!release && starts_ >= kStartsMax) return "the phone is not taking input";
  // Cannot happen (see kQueueMax); refusing keeps the ring whole if it ever did.
  if (count_ == kQueueMax) return "the input queue is full";
  Waiting& slot = queue_[(head_ + count_) % kQueueMax];
  slot.event = event;
  slot.release = release;
  if (event.kind == InputKind::Text) {
    slot.event.text_length = std::min(event.text_length, kInputTextMax);
    std::memcpy(slot.bytes, event.text, slot.event.text_length);
    slot.event.text = slot.bytes;
  }
  count_++;
  if (!release) starts_++;
  return nullptr;
}

bool InputRouter::merge(const InputEvent& event) {
  if (count_ == 0) return false;
  if (event.kind == InputKind::Scroll) {
    // Only a scroll waiting last: folding across other events would reorder them.
    Waiting& last = queue_[(head_ + count_ - 1) % kQueueMax];
    if (last.event.kind != InputKind::Scroll) return false;
    last.event.x = event.x;
    last.event.y = event.y;
    last.event.horizontal = std::clamp(last.event.horizontal + event.horizontal, -16.0f, 16.0f);
    last.event.vertical = std::clamp(last.event.vertical + event.vertical, -16.0f, 16.0f);
    counters_.merged++;
    return true;
  }
  for (std::size_t i = count_; i-- > 0;) {
    Waiting& waiting = queue_[(head_ + i) % kQueueMax];
    if (waiting.event.kind != InputKind::Touch || waiting.event.pointer_id != event.pointer_id) continue;
    if (waiting.event.action != kTouchMove) return false;  // its Down still waits: keep the path after it
    waiting.event.x = event.x;
    waiting.event.y = event.y;
    waiting.event.pressure = event.pressure;
    counters_.merged++;
    return true;
  }
  return false;
}

std::size_t InputRouter::encode(const InputEvent& event) {
  builder_.Clear();
  flatbuffers::Offset<void> body;
  control::Body type = control::Body::NONE;
  switch (event.kind) {
    case InputKind::Touch:
      body = input::CreateTouch(builder_, static_cast<input::TouchAction>(event.action), event.pointer_id, event.x,
                                event.y, event.pressure)
                 .Union();
      type = control::Body::cloudphone_input_Touch;
      break;
    case InputKind::Key:
      body = input::CreateKey(builder_, static_cast<input::KeyAction>(event.action), event.keycode, event.repeat,
                              event.meta_state)
                 .Union();
      type = control::Body::cloudphone_input_Key;
      break;
    case InputKind::Text:
      body = input::CreateText(builder_, builder_.CreateString(event.text, event.text_length)).Union();
      type = control::Body::cloudphone_input_Text;
      break;
    case InputKind::Scroll:
      body = input::CreateScroll(builder_, event.x, event.y, event.horizontal, event.vertical).Union();
      type = control::Body::cloudphone_input_Scroll;
      break;
    case InputKind::Rotate:
      body = input::CreateRotate(builder_, static_cast<input::Rotation>(event.rotation)).Union();
      type = control::Body::cloudphone_input_Rotate;
      break;
  }
  control::FinishMessageBuffer(builder_, control::CreateMessage(builder_, type, body));
  return builder_.GetSize();
}

std::size_t InputRouter::flush(int fd) {
  while (count_ > 0 && fd >= 0) {
    Waiting& next = queue_[head_];
    std::size_t length = encode(next.event);
    SendResult sent = send_message_or_wait(fd, builder_.GetBufferPointer(), length);
    if (sent == SendResult::WouldBlock) {
      counters_.deferred++;
      return count_;
    }
    // Sent, or the connection failed (the pipeline sees the hang-up and drops the phone): either way done.
    if (sent == SendResult::Sent) counters_.sent++;
    if (!next.release) starts_--;
    head_ = (head_ + 1) % kQueueMax;
    count_--;
  }
  return count_;
}

}  // namespace cloudphone
