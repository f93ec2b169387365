// Reading a shared mapping the producer can shrink under us (ftruncate on a file) raises SIGBUS, which would
// kill the sidecar. While a guard is active on this thread, a SIGBUS inside its range is answered the way
// Wayland compositors answer it for wl_shm pools: the range is replaced by zero pages, the read completes
// with garbage, and the guard reports the fault so the frame is dropped and the producer refused.
#pragma once

#include <cstddef>

namespace cloudphone {

class SigbusGuard {
 public:
  SigbusGuard(const void* base, std::size_t length);
  ~SigbusGuard();
  SigbusGuard(const SigbusGuard&) = delete;
  SigbusGuard& operator=(const SigbusGuard&) = delete;

  // True when a read in the range faulted since the guard started; the range now holds zero pages.
  bool faulted() const;

  // Installs the process-wide handler (idempotent, chains to the previous handler for other faults).
  static void install();
};

}  // namespace cloudphone
