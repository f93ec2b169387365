#include "event_gate.h"

#include "monotonic_clock.h"

namespace cloudphone {

EventGate::Verdict EventGate::admit(const std::string& type) {
  std::lock_guard<std::mutex> lock(mutex_);
  Bucket& bucket = buckets_[type];
  if (in_flight_ >= kMaxInFlight || !bucket.tokens.take(monotonic_ns())) {
    bucket.suppressed++;
    suppressed_total_++;
    return {false, 0};
  }
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
