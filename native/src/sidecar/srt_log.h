// libsrt's own log lines (a refused handshake writes four), routed through one handler that writes them to
// stderr as JSON lines like the sidecar's, at most kLinesPerSecond (bursts of kLineBurst): an SRT caller that
// tries wrong passphrases thousands of times a second must not flood the pod's log. Lines over the rate are
// counted, and the next line written says how many it stands for.
#pragma once

#include <cstdint>

namespace cloudphone {

constexpr double kSrtLogLinesPerSecond = 5;
constexpr double kSrtLogLineBurst = 20;

// Once per process, before libsrt logs anything (with srt_startup).
void install_srt_log_handler();
uint64_t srt_log_lines_suppressed();

}  // namespace cloudphone
