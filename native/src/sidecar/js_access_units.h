// Encoded pictures on their way to JavaScript (the WebRTC sinks live there): a ring of 8 slots filled on
// the pipeline thread and emptied on the JavaScript thread, each hand-over one call of a thread-safe
// function. When JavaScript falls 8 pictures behind, pictures are dropped rather than queued, and the queue
// waits for the next keyframe (asking the encoder for one), so the JavaScript side never decodes a gap.
// Slots grow only at a new largest picture; JavaScript gets each picture as its own Buffer.
#pragma once

#include <napi.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "pipeline.h"

namespace cloudphone {

class JsAccessUnits {
 public:
  // Creates the queue and its thread-safe function; the function's finalizer deletes the queue, so it lives
  // until every queued call has run.
  static JsAccessUnits* create(Napi::Env env, Napi::Function listener);
  // Pipeline thread. Returns true when a picture was lost and a keyframe is needed.
  bool offer(const EncodedUnit& unit);
  // After the pipeline has stopped: no more offers; the queue goes once JavaScript has had the rest.
  void release();
  uint64_t dropped() const { return dropped_; }

 private:
  static constexpr std::size_t kSlots = 8;
  struct Slot {
    std::vector<uint8_t> data;
    std::size_t size = 0;
    int64_t pts_90khz = 0;
    int64_t capture_time_ns = 0;
    bool keyframe = false;
    std::atomic<bool> busy{false};
  };
  static void call_js(Napi::Env env, Napi::Function listener, Slot* slot);
  // Drops the picture on offer and waits for a keyframe; true the first time in a gap.
  bool lose();

  Napi::ThreadSafeFunction function_;
  Slot slots_[kSlots];
  std::size_t next_ = 0;
  bool waiting_for_keyframe_ = false;
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace cloudphone
