#include "presentation_clock.h"

namespace cloudphone {

PresentationClock::Stamp PresentationClock::stamp(int64_t capture_time_ns, int64_t now_ns) {
  if (now_ns < 0) now_ns = 0;  // CLOCK_MONOTONIC is never negative; keeps the bounds below true regardless
  // Both comparisons are made before any subtraction, and capture > 0 keeps now - capture from overflowing.
  bool believable = capture_time_ns > 0 && capture_time_ns <= now_ns && now_ns - capture_time_ns <= kOldestBelievable;
  if (!believable) unbelieved_++;
  int64_t time = believable ? capture_time_ns : now_ns;
  int64_t ticks = time / 100000 * 9;  // ns to 90 kHz, within [0, now]
  if (!anchored_) {
    // Behind the stream's last timestamp (an earlier producer's clock ran ahead): shift this producer forward.
    offset_ = ticks <= last_pts_ ? last_pts_ + 1 - ticks : 0;
    anchored_ = true;
  }
  int64_t pts = ticks + offset_;
  if (pts <= last_pts_) pts = last_pts_ + 1;  // a capture time that went backwards within one producer
  last_pts_ = pts;
  return {pts, believable ? capture_time_ns : 0};
}

}  // namespace cloudphone
