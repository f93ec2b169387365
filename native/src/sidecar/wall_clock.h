// The wall clock, for what people read: recording segments' names and their creation times.
#pragma once

#include <time.h>

#include <cstdint>
#include <cstdio>
#include <string>

namespace cloudphone {

inline int64_t unix_ms_now() {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

// UTC to the millisecond: 2026-12-07T21:28:56.123Z, or compact (for file names) 20261207T212856.123Z.
inline std::string utc_text(int64_t unix_ms, bool compact) {
  if (unix_ms < 0) unix_ms = 0;
  time_t seconds = static_cast<time_t>(unix_ms / 1000);
  struct tm utc;
  gmtime_r(&seconds, &utc);
  char text[80];
  std::snprintf(text, sizeof text, compact ? "%04d%02d%02dT%02d%02d%02d.%03dZ" : "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(unix_ms % 1000));
  return text;
}

}  // namespace cloudphone
