// The stream's 90 kHz presentation timestamps, from the capture times phones put on their frames.
//
// A capture time is believed only when it could be true: on the sidecar's CLOCK_MONOTONIC (the producer
// header says phones stamp with it), not after the moment the sidecar reads the frame and not more than
// kOldestBelievable before it. Anything else (a phone with a broken clock, or one lying) is replaced by the
// time the sidecar read the frame, and reported as unknown, so no latency figure comes from it. Every value
// used in arithmetic is then within [0, now], so no capture time can overflow anything.
//
// Timestamps restart per producer: a new producer's first picture comes after the stream's last one and
// its later ones follow its own capture times, so one phone's clock never stalls or skews the next one's.
// Within a producer the timestamps still strictly increase.
#pragma once

#include <cstdint>

namespace cloudphone {

class PresentationClock {
 public:
  static constexpr int64_t kOldestBelievable = 10'000'000'000;  // ns: a frame is read within milliseconds

  struct Stamp {
    int64_t pts_90khz = 0;
    int64_t capture_time_ns = 0;  // the believed capture time, or 0 when it was not believable
  };

  // A new producer connected: its first picture anchors its capture times after the stream's last timestamp.
  void restart() { anchored_ = false; }
  // Stamps one picture captured at capture_time_ns (as the phone said) and read at now_ns (CLOCK_MONOTONIC).
  Stamp stamp(int64_t capture_time_ns, int64_t now_ns);
  // Capture times not believed since the sidecar started.
  uint64_t unbelieved() const { return unbelieved_; }

 private:
  bool anchored_ = false;
  int64_t offset_ = 0;  // added to this producer's capture ticks; never negative
  int64_t last_pts_ = -1;
  uint64_t unbelieved_ = 0;
};

}  // namespace cloudphone
