/*
 * cloudphone producer: what an Android compositor (HWC) links to publish its screen to the streaming sidecar
 * in the same pod, and to receive the viewers' touches and keys. Plain C, no dependency beyond libc; one
 * producer is used from one thread. The reference producer (native/src/simulator) shows a complete use.
 *
 *   cp_producer_config config = cp_producer_default_config("/run/cloudphone", 720, 1280, CP_PIXEL_RGBA8888);
 *   cp_producer *producer;
 *   if (cp_producer_open(&config, &producer) != 0) ...;
 *   for each composed frame:
 *     cp_frame frame;
 *     cp_producer_begin_frame(producer, &frame);   compose into frame.pixels, frame.stride bytes per row
 *     cp_producer_end_frame(producer, capture_ns, NULL);
 *     while (cp_producer_poll_input(producer, &event) > 0) inject event;
 *   cp_producer_close(producer);
 *
 * The sidecar may start before or after the producer and may restart: publishing never blocks and never
 * fails because the sidecar is away; the producer reconnects on its own (at most once a second) and
 * announces its surface again.
 *
 * Functions return 0 (or a count) on success and a negative errno value on failure.
 */
#ifndef CLOUDPHONE_PRODUCER_H
#define CLOUDPHONE_PRODUCER_H

#include <stddef.h>
#include <stdint.h>

#include "cloudphone/framebuffer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the control protocol this library speaks (Hello.protocol_version). */
#define CP_PROTOCOL_VERSION 1u
/* Largest control message either side sends or accepts. */
#define CP_CONTROL_MESSAGE_MAX 65536u
/* Largest encoded access unit the sidecar takes (a 4K IDR at a high bitrate fits). */
#define CP_ENCODED_FRAME_MAX (4u * 1024u * 1024u)
/* Largest clipboard text the sidecar forwards, in UTF-8 bytes. */
#define CP_CLIPBOARD_MAX 32768u

typedef struct cp_producer cp_producer;

typedef enum cp_memory_kind {
  /* A file in the shared directory, found by name. */
  CP_MEMORY_SHARED_FILE = 0,
  /* A sealed memfd handed to the sidecar over the control socket (SCM_RIGHTS). */
  CP_MEMORY_PASSED_FD = 1,
  /* No shared pixels: the phone encodes H.264 itself (MediaCodec) and submits access units with
   * cp_producer_submit_h264; the sidecar passes them through without re-encoding. format is ignored. */
  CP_MEMORY_ENCODED_H264 = 2
} cp_memory_kind;

typedef struct cp_producer_config {
  /* The pod's shared memory-backed volume, as mounted in the phone container. */
  const char *shared_dir;
  /* File name of the sidecar's control socket inside shared_dir; NULL means "control.sock". */
  const char *socket_name;
  uint32_t width;
  uint32_t height;
  enum cp_pixel_format format;
  /* Bytes per row; 0 picks width * bytes per pixel rounded up to 64. */
  uint32_t stride;
  /* CP_FB_MIN_SLOTS to CP_FB_MAX_SLOTS; 0 picks 3. */
  uint32_t slot_count;
  cp_memory_kind memory;
  /* Free-form name and version for the sidecar's logs; NULL means "libcloudphone-producer". */
  const char *name;
  /* How the screen is turned from its natural orientation (Android's Surface.ROTATION_*, 0 to 3). The pixels
   * are always the upright picture: width and height are those of the turned screen. */
  uint32_t rotation;
} cp_producer_config;

typedef struct cp_frame {
  /* Where to compose the frame: stride * height bytes (NV12: plus the chroma plane right after). */
  uint8_t *pixels;
  uint32_t stride;
  uint32_t width;
  uint32_t height;
  enum cp_pixel_format format;
  /* Frame number this frame will have, starting at 1 for each generation. */
  uint64_t frame_number;
} cp_frame;

typedef struct cp_rect {
  uint32_t x, y, width, height;
} cp_rect;

typedef enum cp_input_kind {
  CP_INPUT_TOUCH = 1,
  CP_INPUT_KEY = 2,
  CP_INPUT_TEXT = 3,
  CP_INPUT_SCROLL = 4,
  /* A viewer asks the phone to turn its screen (Android's Surface.ROTATION_*, 0 to 3). The phone may honour
   * it with cp_producer_rotate, or ignore it. */
  CP_INPUT_ROTATE = 5
} cp_input_kind;

/* A viewer's input, already checked by the sidecar and checked again here. Coordinates are normalized to
 * the screen (0 = left/top, 1 = right/bottom). Actions and key codes use Android's numbers. */
typedef struct cp_input_event {
  cp_input_kind kind;
  union {
    struct { uint8_t action, pointer_id; float x, y, pressure; } touch;
    struct { uint8_t action; uint32_t keycode, repeat, meta_state; } key;
    /* NUL-terminated UTF-8, truncated to fit. */
    struct { char text[256]; } text;
    struct { float x, y, horizontal, vertical; } scroll;
    struct { uint8_t rotation; } rotate;
  } u;
} cp_input_event;

/* A config with the given geometry and every other field at its default. */
cp_producer_config cp_producer_default_config(const char *shared_dir, uint32_t width, uint32_t height,
                                              enum cp_pixel_format format);

/* Creates the first surface generation and tries to reach the sidecar (not finding it is not an error). */
int cp_producer_open(const cp_producer_config *config, cp_producer **out);

/* Starts a new surface generation: a new size or format. Frames of the old generation are dropped. */
int cp_producer_resize(cp_producer *producer, uint32_t width, uint32_t height, enum cp_pixel_format format);

/* The screen turned: a new surface generation of the turned size (the pixels stay the upright picture),
 * announced with the rotation (0 to 3, Android's Surface.ROTATION_*). Works in every memory mode; an encoding
 * phone sends an IDR of the new size next. */
int cp_producer_rotate(cp_producer *producer, uint32_t rotation, uint32_t width, uint32_t height);

/* Tells the sidecar the phone's clipboard now holds this text (UTF-8, at most CP_CLIPBOARD_MAX bytes; the
 * sidecar refuses anything else), for the viewers with the control role. Never blocks: 0 when sent,
 * -ENOTCONN without a sidecar, -EAGAIN when the socket is full (try again later), -EINVAL when too long. */
int cp_producer_set_clipboard(cp_producer *producer, const char *text, size_t length);

/* Hands out the slot the next frame goes into; the sidecar will not read it until cp_producer_end_frame. */
int cp_producer_begin_frame(cp_producer *producer, cp_frame *frame);

/* Publishes the slot taken by cp_producer_begin_frame. capture_time_ns is CLOCK_MONOTONIC; damage may be
 * NULL (the whole screen changed). */
int cp_producer_end_frame(cp_producer *producer, int64_t capture_time_ns, const cp_rect *damage);

/* Takes one input event sent by the sidecar: 1 with *event filled, 0 when none is waiting, negative on
 * error. Malformed messages are skipped and counted (cp_producer_stats). Up to 64 events wait here; when
 * they are not taken, the oldest Moves and scrolls make room, and with none left the rest stays in the socket
 * (the sidecar holds it and sends it again), so a press or a release is never lost. Call it often, or from
 * poll(2) on cp_producer_fd: input waits while it is not called. */
int cp_producer_poll_input(cp_producer *producer, cp_input_event *event);

/* CP_MEMORY_ENCODED_H264 only: sends one H.264 access unit (Annex-B, one picture, SPS/PPS before each IDR)
 * to the sidecar, in fragments when it is larger than one control message. 0 when sent; -ENOTCONN when no
 * sidecar is connected and -EAGAIN when it did not drain the socket within 20 ms (the frame is dropped: send
 * a keyframe next; this is the one call that may wait);
 * -EINVAL in another memory mode or for an empty or oversized (> CP_ENCODED_FRAME_MAX) frame. */
int cp_producer_submit_h264(cp_producer *producer, const uint8_t *data, size_t length, int64_t capture_time_ns,
                            int keyframe);

/* CP_MEMORY_ENCODED_H264 only: 1 once after the sidecar asked for a keyframe (a receiver joined or lost
 * data), else 0. The phone should make its next frame an IDR (MediaCodec PARAMETER_KEY_REQUEST_SYNC_FRAME). */
int cp_producer_take_keyframe_request(cp_producer *producer);

/* The control socket's file descriptor, for poll(2) in the producer's own loop; -1 while disconnected. */
int cp_producer_fd(const cp_producer *producer);

/* 1 while the sidecar is connected and has welcomed this producer. */
int cp_producer_connected(const cp_producer *producer);

typedef struct cp_producer_stats {
  uint64_t frames_published;
  uint64_t notifications_dropped;
  uint64_t connects;
  uint64_t malformed_messages;
  /* CP_MEMORY_ENCODED_H264: access units sent, the messages they took, and those dropped unsent. */
  uint64_t encoded_frames_sent;
  uint64_t encoded_fragments_sent;
  uint64_t encoded_frames_dropped;
  uint32_t generation;
  /* The frame rate the sidecar asked for in its Welcome, 0 before it answered. */
  uint32_t consumer_max_fps;
} cp_producer_stats;

void cp_producer_get_stats(const cp_producer *producer, cp_producer_stats *stats);

/* Says goodbye to the sidecar, unmaps and removes the surface. Accepts NULL. */
void cp_producer_close(cp_producer *producer);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CLOUDPHONE_PRODUCER_H */
