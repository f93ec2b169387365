/*
 * cloudphone-simulator: the reference producer. It stands in for a phone in tests and benchmarks, and shows
 * HWC authors a complete use of include/cloudphone/producer.h.
 *
 *   cloudphone-simulator --dir /run/cloudphone --width 720 --height 1280 [--format rgba|rgbx|bgra|nv12]
 *                        [--fps 30] [--memory file|memfd] [--slots 3] [--frames N] [--socket control.sock]
 *   cloudphone-simulator --raw --width W --height H [--format ...] [--fps 30] [--frames N]
 *   cloudphone-simulator --h264 --dir /run/cloudphone --width W --height H < stream.h264
 *
 * Publishing mode reads commands on stdin, one per line: "resize W H [format]", "restart" (a new producer,
 * as when the phone's compositor restarts), "pause" and "resume" (a still screen: no frames, input still read),
 * "hold-input" and "take-input" (a phone too busy to read input, and again reading it), "clipboard TEXT" (the
 * user copied TEXT on the phone; \n in it stands for a newline) and "quit". It honours a viewer's rotation
 * request as a phone would: a new surface of the turned size (--width and --height are the natural, rotation 0
 * size). It prints JSON lines on stdout: what it did, and every input event it received with when (atNs), so
 * tests can check a click arrived at the right place.
 *
 * --raw writes the same frames to stdout as raw video instead, paced in real time, so that other encoders
 * (ffmpeg, GStreamer) can be measured on identical content.
 *
 * --h264 stands in for a phone with its own encoder (Android MediaCodec): it reads an H.264 Annex-B stream
 * with access unit delimiters on stdin (ffmpeg -c:v libx264 -x264-params aud=1 -f h264 -) and submits each
 * access unit with cp_producer_submit_h264. It prints "keyframe-request" when the sidecar asks for an IDR.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cloudphone/producer.h"
#include "painter.h"

typedef struct options {
  const char *dir, *socket;
  uint32_t width, height, fps, slots;
  enum cp_pixel_format format;
  cp_memory_kind memory;
  uint64_t frames;
  int raw, h264;
} options;

static volatile sig_atomic_t stopping;
static void on_signal(int signal) { (void)signal, stopping = 1; }

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_until(int64_t deadline) {
  struct timespec ts = {(time_t)(deadline / 1000000000LL), (long)(deadline % 1000000000LL)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !stopping) {
  }
}

static enum cp_pixel_format parse_format(const char *name) {
  if (!strcmp(name, "rgba")) return CP_PIXEL_RGBA8888;
  if (!strcmp(name, "rgbx")) return CP_PIXEL_RGBX8888;
  if (!strcmp(name, "bgra")) return CP_PIXEL_BGRA8888;
  if (!strcmp(name, "nv12")) return CP_PIXEL_NV12;
  return CP_PIXEL_UNKNOWN;
}

static int usage(const char *why) {
  fprintf(stderr, "cloudphone-simulator: %s\n", why);
  return 2;
}

static int parse(int argc, char **argv, options *o) {
  memset(o, 0, sizeof *o);
  o->width = 720, o->height = 1280, o->fps = 30, o->format = CP_PIXEL_RGBA8888, o->socket = "control.sock";
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(arg, "--raw")) {
      o->raw = 1;
      continue;
    }
    if (!strcmp(arg, "--h264")) {
      o->h264 = 1;
      continue;
    }
    if (!value) return usage("every option but --raw and --h264 takes a value");
    i++;
    if (!strcmp(arg, "--dir")) o->dir = value;
    else if (!strcmp(arg, "--socket")) o->socket = value;
    else if (!strcmp(arg, "--width")) o->width = (uint32_t)strtoul(value, NULL, 10);
    else if (!strcmp(arg, "--height")) o->height = (uint32_t)strtoul(value, NULL, 10);
    else if (!strcmp(arg, "--fps")) o->fps = (uint32_t)strtoul(value, NULL, 10);
    else if (!strcmp(arg, "--slots")) o->slots = (uint32_t)strtoul(value, NULL, 10);
    else if (!strcmp(arg, "--frames")) o->frames = strtoull(value, NULL, 10);
    else if (!strcmp(arg, "--format")) o->format = parse_format(value);
    else if (!strcmp(arg, "--memory")) o->memory = !strcmp(value, "memfd") ? CP_MEMORY_PASSED_FD : CP_MEMORY_SHARED_FILE;
    else return usage("unknown option");
  }
  if (o->format == CP_PIXEL_UNKNOWN) return usage("--format is one of rgba, rgbx, bgra, nv12");
  if (o->fps == 0 || o->fps > 240) return usage("--fps is 1 to 240");
  if (!o->raw && !o->dir) return usage("--dir is required (or --raw)");
  return 0;
}

static void print_input(const cp_input_event *e) {
  /* When the event was taken from the socket (CLOCK_MONOTONIC), for input latency measured from the viewer. */
  printf("{\"event\":\"input\",\"atNs\":%lld,", (long long)now_ns());
  switch (e->kind) {
    case CP_INPUT_TOUCH:
      printf("\"kind\":\"touch\",\"action\":%u,\"pointerId\":%u,\"x\":%.6f,\"y\":%.6f,\"pressure\":%.3f}\n",
             e->u.touch.action, e->u.touch.pointer_id, e->u.touch.x, e->u.touch.y, e->u.touch.pressure);
      break;
    case CP_INPUT_KEY:
      printf("\"kind\":\"key\",\"action\":%u,\"keycode\":%u,\"repeat\":%u,\"metaState\":%u}\n",
             e->u.key.action, e->u.key.keycode, e->u.key.repeat, e->u.key.meta_state);
      break;
    case CP_INPUT_TEXT:
      /* Escaping for JSON: quotes, backslashes and control characters become \u escapes. */
      printf("\"kind\":\"text\",\"text\":\"");
      for (const unsigned char *c = (const unsigned char *)e->u.text.text; *c; c++) {
        if (*c < 0x20 || *c == '"' || *c == '\\') printf("\\u%04x", *c);
        else putchar(*c);
      }
      printf("\"}\n");
      break;
    case CP_INPUT_SCROLL:
      printf("\"kind\":\"scroll\",\"x\":%.6f,\"y\":%.6f,\"horizontal\":%.3f,\"vertical\":%.3f}\n",
             e->u.scroll.x, e->u.scroll.y, e->u.scroll.horizontal, e->u.scroll.vertical);
      break;
    case CP_INPUT_ROTATE:
      printf("\"kind\":\"rotate\",\"rotation\":%u}\n", e->u.rotate.rotation);
      break;
  }
  fflush(stdout);
}

static int run_raw(const options *o) {
  painter painter;
  if (painter_init(&painter, o->width, o->height, o->format) != 0) return 1;
  uint32_t stride = o->width * cp_fb_bytes_per_pixel(o->format);
  size_t size = (size_t)cp_fb_frame_size(o->format, stride, o->height);
  uint8_t *frame = malloc(size);
  if (!frame) return 1;
  int64_t interval = 1000000000LL / o->fps, next = now_ns();
  for (uint64_t n = 1; !stopping && (!o->frames || n <= o->frames); n++) {
    sleep_until(next);
    next += interval;
    painter_paint(&painter, frame, stride, n, now_ns());
    for (size_t done = 0; done < size;) {
      ssize_t w = write(STDOUT_FILENO, frame + done, size - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return 0; /* the reader went away */
      done += (size_t)w;
    }
  }
  free(frame);
  painter_free(&painter);
  return 0;
}

/* Where the access unit delimiter (NAL type 9) at or after `from` starts, counting a 4-byte start code from
 * its first zero; `length` when there is none. */
static size_t find_delimiter(const uint8_t *data, size_t length, size_t from) {
  for (size_t i = from; i + 4 <= length; i++) {
    if (data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 && (data[i + 3] & 0x1f) == 9)
      return i > from && data[i - 1] == 0 ? i - 1 : i;
  }
  return length;
}

static int has_idr(const uint8_t *data, size_t length) {
  for (size_t i = 0; i + 4 <= length; i++)
    if (data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 && (data[i + 3] & 0x1f) == 5) return 1;
  return 0;
}

static void submit(cp_producer *p, const uint8_t *unit, size_t length) {
  if (length) cp_producer_submit_h264(p, unit, length, now_ns(), has_idr(unit, length));
  if (cp_producer_take_keyframe_request(p)) {
    printf("{\"event\":\"keyframe-request\"}\n");
    fflush(stdout);
  }
}

static int run_h264(const options *o) {
  cp_producer_config config = cp_producer_default_config(o->dir, o->width, o->height, CP_PIXEL_RGBA8888);
  config.socket_name = o->socket;
  config.memory = CP_MEMORY_ENCODED_H264;
  config.name = "cloudphone-simulator/0.1 (h264)";
  cp_producer *p;
  int rc = cp_producer_open(&config, &p);
  if (rc != 0) {
    fprintf(stderr, "cloudphone-simulator: cannot open the producer: %s\n", strerror(-rc));
    return 1;
  }
  printf("{\"event\":\"surface\",\"width\":%u,\"height\":%u,\"encoded\":true}\n", o->width, o->height);
  fflush(stdout);
  size_t capacity = CP_ENCODED_FRAME_MAX + 65536, length = 0;
  uint8_t *stream = malloc(capacity);
  if (!stream) return 1;
  while (!stopping) {
    ssize_t r = read(STDIN_FILENO, stream + length, capacity - length);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    length += (size_t)r;
    size_t start = find_delimiter(stream, length, 0);
    for (size_t next; (next = find_delimiter(stream, length, start + 4)) < length; start = next)
      submit(p, stream + start, next - start);
    if (start == length && length == capacity) start = length; /* no delimiter in 4 MiB: not our stream */
    memmove(stream, stream + start, length - start);
    length -= start;
  }
  submit(p, stream, length); /* the last access unit ends with the stream */
  cp_producer_stats stats;
  cp_producer_get_stats(p, &stats);
  printf("{\"event\":\"closed\",\"framesSent\":%llu,\"fragmentsSent\":%llu,\"framesDropped\":%llu}\n",
         (unsigned long long)stats.encoded_frames_sent, (unsigned long long)stats.encoded_fragments_sent,
         (unsigned long long)stats.encoded_frames_dropped);
  fflush(stdout);
  cp_producer_close(p);
  free(stream);
  return 0;
}

typedef struct session {
  cp_producer *producer;
  painter painter;
  uint32_t natural_width, natural_height; /* the screen's size at rotation 0 */
  uint32_t rotation;
  int connected;
  int paused;     /* "pause": the screen goes still (no frames), input is still read */
  int input_held; /* "hold-input": input is not read (a busy phone), until "take-input" */
} session;

/* The phone has a new surface: the painter draws at its size, and the test harness hears of it. */
static int surface_changed(session *s, uint32_t width, uint32_t height, enum cp_pixel_format format) {
  painter_free(&s->painter);
  if (painter_init(&s->painter, width, height, format) != 0) return -ENOMEM;
  cp_producer_stats stats;
  cp_producer_get_stats(s->producer, &stats);
  printf("{\"event\":\"surface\",\"generation\":%u,\"width\":%u,\"height\":%u,\"rotation\":%u}\n",
         stats.generation, width, height, s->rotation);
  fflush(stdout);
  return 0;
}

/* A viewer asked the phone to turn: a new surface of the turned size, upright pictures in it. */
static void rotate(session *s, uint32_t rotation) {
  int sideways = rotation % 2;
  uint32_t width = sideways ? s->natural_height : s->natural_width;
  uint32_t height = sideways ? s->natural_width : s->natural_height;
  int rc = cp_producer_rotate(s->producer, rotation, width, height);
  if (rc != 0) {
    printf("{\"event\":\"error\",\"command\":\"rotate\",\"reason\":\"%s\"}\n", strerror(-rc));
    fflush(stdout);
    return;
  }
  s->rotation = rotation;
  surface_changed(s, width, height, s->painter.format);
}

static void take_input(session *s) {
  cp_input_event event;
  while (!s->input_held && cp_producer_poll_input(s->producer, &event) > 0) {
    print_input(&event);
    if (event.kind == CP_INPUT_ROTATE && event.u.rotate.rotation != s->rotation) rotate(s, event.u.rotate.rotation);
    fflush(stdout);
  }
}

/* "clipboard TEXT": the user copied TEXT on the phone (\n in it for a newline, \\ for a backslash). */
static void set_clipboard(session *s, const char *text) {
  char unescaped[256];
  size_t length = 0;
  for (const char *c = text; *c && length < sizeof unescaped; c++) {
    if (c[0] == '\\' && (c[1] == 'n' || c[1] == '\\')) {
      unescaped[length++] = c[1] == 'n' ? '\n' : '\\';
      c++;
    } else {
      unescaped[length++] = *c;
    }
  }
  int rc = cp_producer_set_clipboard(s->producer, unescaped, length);
  if (rc != 0) printf("{\"event\":\"error\",\"command\":\"clipboard\",\"reason\":\"%s\"}\n", strerror(-rc));
  else printf("{\"event\":\"clipboard\",\"bytes\":%zu}\n", length);
}

/* Sleeps until the deadline, taking input as soon as it comes (as a phone's input thread would), so the
 * time printed with each event is when it reached the phone, not when the next frame was due. */
static void wait_taking_input(session *s, int64_t deadline) {
  for (int64_t now = now_ns(); now < deadline && !stopping; now = now_ns()) {
    int fd = cp_producer_fd(s->producer);
    if (s->input_held || fd < 0) {
      sleep_until(deadline);
      return;
    }
    struct pollfd waiting = {fd, POLLIN, 0};
    int timeout_ms = (int)((deadline - now + 999999) / 1000000);
    if (poll(&waiting, 1, timeout_ms) > 0) take_input(s);
  }
}

static int session_open(session *s, const options *o, uint32_t width, uint32_t height, enum cp_pixel_format format) {
  cp_producer_config config = cp_producer_default_config(o->dir, width, height, format);
  config.socket_name = o->socket;
  config.slot_count = o->slots;
  config.memory = o->memory;
  config.name = "cloudphone-simulator/0.1";
  config.rotation = s->rotation; /* a restarted phone is still turned */
  int rc = cp_producer_open(&config, &s->producer);
  if (rc != 0) {
    fprintf(stderr, "cloudphone-simulator: cannot open the producer: %s\n", strerror(-rc));
    return rc;
  }
  s->connected = 0;
  return surface_changed(s, width, height, format);
}

static void session_close(session *s) {
  cp_producer_close(s->producer);
  s->producer = NULL;
  painter_free(&s->painter);
}

/* Handles one command line; returns 0 to go on, 1 to quit. */
static int command(session *s, const options *o, char *line) {
  unsigned width, height;
  char format_name[16] = "";
  if (sscanf(line, "resize %u %u %15s", &width, &height, format_name) >= 2) {
    enum cp_pixel_format format = format_name[0] ? parse_format(format_name) : s->painter.format;
    int rc = cp_producer_resize(s->producer, width, height, format);
    if (rc != 0) {
      printf("{\"event\":\"error\",\"command\":\"resize\",\"reason\":\"%s\"}\n", strerror(-rc));
    } else {
      s->natural_width = s->rotation % 2 ? height : width;
      s->natural_height = s->rotation % 2 ? width : height;
      surface_changed(s, width, height, format);
    }
  } else if (!strncmp(line, "restart", 7)) {
    uint32_t w = s->painter.width, h = s->painter.height;
    enum cp_pixel_format f = s->painter.format;
    session_close(s);
    if (session_open(s, o, w, h, f) != 0) return 1;
  } else if (!strncmp(line, "pause", 5)) {
    s->paused = 1;
    printf("{\"event\":\"paused\"}\n");
  } else if (!strncmp(line, "resume", 6)) {
    s->paused = 0;
    printf("{\"event\":\"resumed\"}\n");
  } else if (!strncmp(line, "hold-input", 10)) {
    s->input_held = 1;
    printf("{\"event\":\"input-held\"}\n");
  } else if (!strncmp(line, "take-input", 10)) {
    s->input_held = 0;
    printf("{\"event\":\"input-taken\"}\n");
  } else if (!strncmp(line, "clipboard ", 10)) {
    set_clipboard(s, line + 10);
  } else if (!strncmp(line, "quit", 4)) {
    return 1;
  } else if (line[0] != '\n' && line[0] != 0) {
    printf("{\"event\":\"error\",\"command\":\"unknown\"}\n");
  }
  fflush(stdout);
  return 0;
}

static int run_producer(const options *o) {
  session s = {0};
  s.natural_width = o->width;
  s.natural_height = o->height;
  if (session_open(&s, o, o->width, o->height, o->format) != 0) return 1;
  fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
  char line[256];
  size_t line_length = 0;
  int64_t interval = 1000000000LL / o->fps, next = now_ns();
  int quit = 0;
  for (uint64_t n = 0; !stopping && !quit && (!o->frames || n < o->frames); n++) {
    cp_frame frame;
    if (!s.paused && cp_producer_begin_frame(s.producer, &frame) == 0) {
      int64_t capture = now_ns();
      painter_paint(&s.painter, frame.pixels, frame.stride, frame.frame_number, capture);
      cp_producer_end_frame(s.producer, capture, NULL);
    }
    if (cp_producer_connected(s.producer) != s.connected) {
      s.connected = !s.connected;
      printf("{\"event\":\"%s\"}\n", s.connected ? "connected" : "disconnected");
      fflush(stdout);
    }
    take_input(&s);

    /* Commands, read without blocking the frame clock. */
    for (;;) {
      ssize_t r = read(STDIN_FILENO, line + line_length, sizeof line - 1 - line_length);
      if (r <= 0) break;
      line_length += (size_t)r;
      line[line_length] = 0;
      char *newline;
      while (!quit && (newline = strchr(line, '\n'))) {
        *newline = 0;
        quit = command(&s, o, line);
        size_t rest = line_length - (size_t)(newline + 1 - line);
        memmove(line, newline + 1, rest + 1);
        line_length = rest;
      }
      if (line_length == sizeof line - 1) line_length = 0; /* an over-long line is dropped */
    }
    next += interval;
    int64_t now = now_ns();
    if (next < now - interval) next = now; /* fell behind: do not burst to catch up */
    wait_taking_input(&s, next);
  }
  session_close(&s);
  printf("{\"event\":\"closed\"}\n");
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  options o;
  int rc = parse(argc, argv, &o);
  if (rc) return rc;
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_signal;
  sigaction(SIGINT, &action, NULL);
  sigaction(SIGTERM, &action, NULL);
  signal(SIGPIPE, SIG_IGN);
  if (o.raw) return run_raw(&o);
  return o.h264 ? run_h264(&o) : run_producer(&o);
}
