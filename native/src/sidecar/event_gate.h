// Bounds what the native side tells JavaScript. A phone that reconnects, or sends refused surfaces, thousands
// of times a second (or an SRT caller that does) must cost little: each kind of event passes at most
// kEventsPerSecond (bursts of kEventBurst), and at most kMaxInFlight wait for the JavaScript thread at once.
// What does not pass is counted, and the next event of that kind that passes says how many it stands for. The
// pipeline's own counters (connects, errors, malformed messages) still count every one.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "token_bucket.h"

namespace cloudphone {

class EventGate {
 public:
  static constexpr double kEventsPerSecond = 5;
  static constexpr double kEventBurst = 10;
  static constexpr int kMaxInFlight = 32;

  struct Verdict {
    bool deliver;
    uint64_t suppressed;  // events of this kind held back since the last one delivered
  };

  // A delivered event must be followed by delivered() once JavaScript has it.
  Verdict admit(const std::string& type);
  void delivered();
  uint64_t suppressed_total() const { return suppressed_total_; }

 private:
  struct Bucket {
    TokenBucket tokens{kEventsPerSecond, kEventBurst};
    uint64_t suppressed = 0;
  };
  std::mutex mutex_;
  std::map<std::string, Bucket> buckets_;  // one per event type: a fixed, small set
  int in_flight_ = 0;
  std::atomic<uint64_t> suppressed_total_{0};
};

}  // namespace cloudphone
