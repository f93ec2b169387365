#include "srt_log.h"

#include <srt/srt.h>
#include <sys/syslog.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>

#include "monotonic_clock.h"
#include "token_bucket.h"

namespace cloudphone {
namespace {

std::mutex log_mutex;
TokenBucket lines(kSrtLogLinesPerSecond, kSrtLogLineBurst);
uint64_t held_back = 0;  // since the last line written
std::atomic<uint64_t> suppressed_total{0};

// pino's numbers, so the lines sort with the sidecar's own.
int pino_level(int syslog_level) {
  if (syslog_level <= LOG_ERR) return 50;
  if (syslog_level == LOG_WARNING) return 40;
  if (syslog_level <= LOG_INFO) return 30;
  return 20;
}

std::string json_escaped(const char* text) {
  std::string out;
  for (const char* c = text; *c; c++) {
    unsigned char ch = static_cast<unsigned char>(*c);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", ch);
      out += escaped;
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out;
}

void write_line(void*, int level, const char*, int, const char* area, const char* message) {
  std::lock_guard<std::mutex> lock(log_mutex);
  if (!lines.take(monotonic_ns())) {
    held_back++;
    suppressed_total++;
    return;
  }
  std::string line = "{\"level\":" + std::to_string(pino_level(level)) + ",\"name\":\"libsrt\",\"area\":\"" +
                     json_escaped(area ? area : "") + "\"";
  if (held_back > 0) line += ",\"suppressed\":" + std::to_string(held_back);
  // With the time, thread and severity left out, libsrt still starts its message with ": ".
  const char* text = message ? message : "";
  while (*text == ':' || *text == ' ') text++;
  line += ",\"msg\":\"" + json_escaped(text) + "\"}\n";
  held_back = 0;
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace

void install_srt_log_handler() {
  srt_setlogflags(SRT_LOGF_DISABLE_TIME | SRT_LOGF_DISABLE_THREADNAME | SRT_LOGF_DISABLE_SEVERITY |
                  SRT_LOGF_DISABLE_EOL);
  srt_setloghandler(nullptr, write_line);
}

uint64_t srt_log_lines_suppressed() { return suppressed_total; }

}  // namespace cloudphone
