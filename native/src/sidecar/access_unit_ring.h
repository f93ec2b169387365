// A small ring of encoded pictures between the encoder thread and one output's own sending thread (an SRT
// receiver, the RTMP push). The encoder thread only writes into a slot it reuses (a copy, or a conversion while
// copying); the sender swaps the oldest slot for its spare buffer, so neither side allocates once every slot has
// held its largest picture. When the sender falls a whole ring behind, everything queued is dropped and the
// output starts again at the next keyframe: the viewer sees a short freeze instead of a growing delay.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

namespace cloudphone {

struct QueuedAccessUnit {
  std::vector<uint8_t> data;
  std::size_t size = 0;
  int64_t pts = 0;  // 90 kHz
  bool keyframe = false;
  uint32_t width = 0, height = 0;  // set by outputs whose container states the picture size
};

class AccessUnitRing {
 public:
  static constexpr std::size_t kSize = 8;
  enum class Take { unit, timeout, closed };

  // request_keyframe is called (on the encoder thread) when the ring drops and must restart at a keyframe.
  explicit AccessUnitRing(std::function<void()> request_keyframe, std::size_t reserve = 256 * 1024)
      : request_keyframe_(std::move(request_keyframe)) {
    for (auto& unit : slots_) unit.data.reserve(reserve);
  }

  // Encoder thread. write(out) fills at most max_size bytes at out and returns how many it wrote; it runs under
  // the ring's lock, so it must only copy. Ignored while the ring is closed.
  template <typename Write>
  void push(std::size_t max_size, int64_t pts, bool keyframe, Write write, uint32_t width = 0, uint32_t height = 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    if (waiting_for_keyframe_ && !keyframe) {
      dropped_++;
      return;
    }
    if (count_ == kSize) {
      dropped_ += count_ + 1;
      count_ = 0;
      waiting_for_keyframe_ = true;
      if (request_keyframe_) request_keyframe_();
      return;
    }
    waiting_for_keyframe_ = false;
    QueuedAccessUnit& unit = slots_[(head_ + count_) % kSize];
    if (unit.data.size() < max_size) unit.data.resize(max_size);  // grows only at a new largest picture
    unit.size = write(unit.data.data());
    unit.pts = pts;
    unit.keyframe = keyframe;
    unit.width = width;
    unit.height = height;
    count_++;
    wake_.notify_one();
  }

  // Sending thread: waits up to timeout for the oldest picture and swaps it into *unit (whose buffer becomes the
  // slot's spare).
  Take take(QueuedAccessUnit* unit, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait_for(lock, timeout, [&] { return count_ > 0 || closed_; });
    if (closed_) return Take::closed;
    if (count_ == 0) return Take::timeout;
    std::swap(*unit, slots_[head_]);
    head_ = (head_ + 1) % kSize;
    count_--;
    return Take::unit;
  }

  // (Re)opens the ring empty, waiting for a keyframe, which it asks for.
  void open() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      count_ = 0;
      closed_ = false;
      waiting_for_keyframe_ = true;
    }
    if (request_keyframe_) request_keyframe_();
  }

  // Any thread: empties the ring, refuses pushes and makes take() return closed until open().
  void close() {
    std::lock_guard<std::mutex> lock(mutex_);
    count_ = 0;
    closed_ = true;
    wake_.notify_all();
  }

  uint64_t dropped() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return dropped_;
  }

 private:
  std::function<void()> request_keyframe_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  QueuedAccessUnit slots_[kSize];
  std::size_t head_ = 0, count_ = 0;
  bool waiting_for_keyframe_ = true;
  bool closed_ = false;
  uint64_t dropped_ = 0;
};

}  // namespace cloudphone
