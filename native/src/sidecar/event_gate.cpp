#include "event_gate.h"

#include <algorithm>

namespace cloudphone {

EventGate::Verdict EventGate::admit(const std::string& type, int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mutex_);
  Bucket& bucket = buckets_[type];
  if (bucket.at_ns != 0)
    bucket.tokens = std::min(kEventBurst, bucket.tokens + static_cast<double>(now_ns - bucket.at_ns) / 1e9 *
                                                              kEventsPerSecond);
  bucket.at_ns = now_ns;
  if (bucket.tokens < 1 || in_flight_ >= kMaxInFlight) {
    bucket.suppressed++;
    suppressed_total_++;
    return {false, 0};
  }
  bucket.tokens -= 1;
  in_flight_++;
  uint64_t suppressed = bucket.suppressed;
  bucket.suppressed = 0;
  return {true, suppressed};
}

void EventGate::delivered() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (in_flight_ > 0) in_flight_--;
}

}  // namespace cloudphone
