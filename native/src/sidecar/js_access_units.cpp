#include "js_access_units.h"

#include <cstring>

namespace cloudphone {

JsAccessUnits* JsAccessUnits::create(Napi::Env env, Napi::Function listener) {
  auto* queue = new JsAccessUnits();
  queue->function_ = Napi::ThreadSafeFunction::New(env, listener, "cloudphone-access-units", kSlots, 1, queue,
                                                   [](Napi::Env, JsAccessUnits* owned) { delete owned; });
  // Like the event function: pending pictures must not keep a finished process alive.
  queue->function_.Unref(env);
  return queue;
}

void JsAccessUnits::call_js(Napi::Env env, Napi::Function listener, Slot* slot) {
  if (env && listener) {
    Napi::Object unit = Napi::Object::New(env);
    unit.Set("data", Napi::Buffer<uint8_t>::Copy(env, slot->data.data(), slot->size));
    unit.Set("pts90k", static_cast<double>(slot->pts_90khz));
    unit.Set("captureNs", static_cast<double>(slot->capture_time_ns));
    unit.Set("keyframe", slot->keyframe);
    slot->busy.store(false, std::memory_order_release);  // copied: the pipeline may refill it
    listener.Call({unit});
    return;
  }
  slot->busy.store(false, std::memory_order_release);
}

bool JsAccessUnits::lose() {
  dropped_++;
  bool first_loss = !waiting_for_keyframe_;
  waiting_for_keyframe_ = true;
  return first_loss;  // one keyframe request per gap
}

bool JsAccessUnits::offer(const EncodedUnit& unit) {
  if (waiting_for_keyframe_ && !unit.keyframe) {
    dropped_++;
    return false;
  }
  Slot& slot = slots_[next_ % kSlots];
  if (slot.busy.load(std::memory_order_acquire)) return lose();
  if (slot.data.size() < unit.size) slot.data.resize(unit.size);  // grows only at a new largest picture
  std::memcpy(slot.data.data(), unit.data, unit.size);
  slot.size = unit.size;
  slot.pts_90khz = unit.pts_90khz;
  slot.capture_time_ns = unit.capture_time_ns;
  slot.keyframe = unit.keyframe;
  slot.busy.store(true, std::memory_order_release);
  if (function_.NonBlockingCall(&slot, call_js) != napi_ok) {
    slot.busy.store(false, std::memory_order_release);
    return lose();
  }
  next_++;
  waiting_for_keyframe_ = false;
  return false;
}

void JsAccessUnits::release() { function_.Release(); }

}  // namespace cloudphone
