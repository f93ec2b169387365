#define _POSIX_C_SOURCE 200809L
/*
 * cloudphone-stamp-reader: reads decoded frames as 8-bit luma (ffmpeg -f rawvideo -pix_fmt gray) on stdin and
 * prints one JSON line per frame: the stamp's frame number and capture time, and how long after capture the
 * frame arrived here (CLOCK_MONOTONIC on the same machine), or that no stamp could be read.
 *
 *   ffmpeg ... -f rawvideo -pix_fmt gray - | cloudphone-stamp-reader --width 720 --height 1280
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stamp.h"

int main(int argc, char **argv) {
  uint32_t width = 0, height = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--width")) width = (uint32_t)strtoul(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--height")) height = (uint32_t)strtoul(argv[i + 1], NULL, 10);
  }
  if (!width || !height || width > 8192 || height > 8192) {
    fprintf(stderr, "usage: cloudphone-stamp-reader --width W --height H < gray frames\n");
    return 2;
  }
  size_t size = (size_t)width * height;
  uint8_t *frame = malloc(size);
  if (!frame) return 1;
  for (uint64_t index = 0;; index++) {
    size_t have = 0;
    while (have < size) {
      ssize_t r = read(STDIN_FILENO, frame + have, size - have);
      if (r <= 0) {
        free(frame);
        return 0;
      }
      have += (size_t)r;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    cp_stamp stamp;
    if (cp_stamp_read_luma(frame, width, width, height, &stamp)) {
      printf("{\"index\":%llu,\"frame\":%u,\"captureNs\":%lld,\"latencyMs\":%.3f}\n", (unsigned long long)index,
             stamp.frame_number, (long long)stamp.capture_time_ns, (double)(now - stamp.capture_time_ns) / 1e6);
    } else {
      printf("{\"index\":%llu,\"frame\":null}\n", (unsigned long long)index);
    }
    fflush(stdout);
  }
}
