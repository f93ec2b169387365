// A token bucket: per_second on average, bursts up to burst (the native twin of
// sidecar/src/webrtc/token-bucket.ts). Not locked: whoever owns one holds its own lock.
#pragma once

#include <algorithm>
#include <cstdint>

namespace cloudphone {

class TokenBucket {
 public:
  TokenBucket(double per_second, double burst) : per_second_(per_second), burst_(burst), tokens_(burst) {}

  // Refills for the time since the last call, then takes a token if there is one. now_ns: monotonic_ns().
  bool take(int64_t now_ns) {
    if (at_ns_ != 0) tokens_ = std::min(burst_, tokens_ + static_cast<double>(now_ns - at_ns_) / 1e9 * per_second_);
    at_ns_ = now_ns;
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
  }

 private:
  double per_second_;
  double burst_;
  double tokens_;
  int64_t at_ns_ = 0;
};

}  // namespace cloudphone
