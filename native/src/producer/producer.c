/* The producer side of the shared framebuffer (include/cloudphone/producer.h). libc only. */
#define _GNU_SOURCE
#include "cloudphone/producer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fb_wire.h"

#define INPUT_QUEUE 64
#define RECONNECT_INTERVAL_NS 1000000000LL

struct cp_producer {
  cp_producer_config config;
  char shared_dir[256];
  char socket_name[64];
  char name[64];
  int dir_fd;

  /* Current generation. */
  uint32_t generation;
  uint32_t width, height, stride;
  uint32_t rotation;
  enum cp_pixel_format format;
  uint32_t slot_count;
  uint64_t slot_size;
  uint64_t total_size;
  int memory_fd;
  char file_name[64];
  uint8_t *mapping;
  struct cp_fb_header *header;
  uint64_t next_frame_number;
  uint32_t next_slot;
  int writing_slot;

  int socket_fd;
  int welcomed;
  int keyframe_requested;
  int64_t last_connect_attempt_ns;

  cp_input_event input[INPUT_QUEUE];
  unsigned input_head, input_count;

  cp_producer_stats stats;
  uint8_t message[CP_CONTROL_MESSAGE_MAX];
};

static int64_t monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

cp_producer_config cp_producer_default_config(const char *shared_dir, uint32_t width, uint32_t height,
                                              enum cp_pixel_format format) {
  cp_producer_config config;
  memset(&config, 0, sizeof config);
  config.shared_dir = shared_dir;
  config.width = width;
  config.height = height;
  config.format = format;
  return config;
}

static int geometry_valid(uint32_t width, uint32_t height, enum cp_pixel_format format) {
  if (width == 0 || height == 0 || width > CP_FB_MAX_DIMENSION || height > CP_FB_MAX_DIMENSION) return 0;
  if (cp_fb_bytes_per_pixel(format) == 0) return 0;
  /* Chroma is subsampled 2x2, and H.264 encoders want even sizes either way. */
  if ((width | height) & 1) return 0;
  return 1;
}

/* ---- control socket ---- */

static void disconnect(cp_producer *p) {
  if (p->socket_fd >= 0) close(p->socket_fd);
  p->socket_fd = -1;
  p->welcomed = 0;
  p->stats.consumer_max_fps = 0;
}

static int send_message(cp_producer *p, size_t length, int fd_to_pass) {
  if (p->socket_fd < 0) return -ENOTCONN;
  struct iovec iov = {.iov_base = p->message, .iov_len = length};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  union {
    struct cmsghdr align;
    char bytes[CMSG_SPACE(sizeof(int))];
  } control;
  if (fd_to_pass >= 0) {
    memset(&control, 0, sizeof control);
    msg.msg_control = control.bytes;
    msg.msg_controllen = sizeof control.bytes;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd_to_pass, sizeof(int));
  }
  ssize_t sent = sendmsg(p->socket_fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (sent == (ssize_t)length) return 0;
  if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -EAGAIN;
  int error = sent < 0 ? errno : EIO;
  disconnect(p);
  return -error;
}

static int send_surface(cp_producer *p) {
  fbw_field fields[] = {
      fbw_u32(0, p->generation),
      fbw_u8(1, (uint8_t)p->config.memory),
      fbw_offset(2),
      fbw_u32(3, p->width),
      fbw_u32(4, p->height),
      fbw_u8(5, (uint8_t)p->format),
      fbw_u32(6, p->stride),
      fbw_u8(7, (uint8_t)p->slot_count),
      fbw_u64(8, p->total_size),
      fbw_u8(9, (uint8_t)p->rotation),
  };
  const char *path = p->config.memory == CP_MEMORY_SHARED_FILE ? p->file_name : NULL;
  size_t path_length = path ? strlen(path) : 0;
  size_t length = fbw_message(p->message, sizeof p->message, CP_BODY_SURFACE, fields, 10, &path, &path_length);
  if (!length) return -EMSGSIZE;
  return send_message(p, length, p->config.memory == CP_MEMORY_PASSED_FD ? p->memory_fd : -1);
}

static void try_connect(cp_producer *p) {
  int64_t now = monotonic_ns();
  if (p->socket_fd >= 0 || now - p->last_connect_attempt_ns < RECONNECT_INTERVAL_NS) return;
  p->last_connect_attempt_ns = now;

  struct sockaddr_un address;
  memset(&address, 0, sizeof address);
  address.sun_family = AF_UNIX;
  int n = snprintf(address.sun_path, sizeof address.sun_path, "%s/%s", p->shared_dir, p->socket_name);
  if (n < 0 || (size_t)n >= sizeof address.sun_path) return;
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
    close(fd);
    return;
  }
  p->socket_fd = fd;
  p->stats.connects++;
  if (p->config.memory == CP_MEMORY_ENCODED_H264) {
    /* Room for a whole keyframe in flight; the kernel caps this at net.core.wmem_max. */
    int size = (int)CP_ENCODED_FRAME_MAX;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  }

  fbw_field hello[] = {fbw_u16(0, CP_PROTOCOL_VERSION), fbw_offset(1)};
  const char *name = p->name;
  size_t name_length = strlen(name);
  size_t length = fbw_message(p->message, sizeof p->message, CP_BODY_HELLO, hello, 2, &name, &name_length);
  if (send_message(p, length, -1) != 0) return;
  send_surface(p);
}

static float clamp_unit(float v) {
  /* NaN fails both comparisons and becomes 0. */
  if (v >= 0.0f && v <= 1.0f) return v;
  return v > 1.0f ? 1.0f : 0.0f;
}

static int droppable(const cp_input_event *event) {
  return (event->kind == CP_INPUT_TOUCH && event->u.touch.action == 2 /* Move */) || event->kind == CP_INPUT_SCROLL;
}

/* Makes room in a full input queue by dropping the oldest Move or scroll (a later one says where the finger
 * is); a press or a release is never dropped. 0 when there is no such event: the phone is not reading input. */
static int make_room(cp_producer *p) {
  for (unsigned i = 0; i < p->input_count; i++) {
    if (!droppable(&p->input[(p->input_head + i) % INPUT_QUEUE])) continue;
    for (unsigned j = i; j + 1 < p->input_count; j++)
      p->input[(p->input_head + j) % INPUT_QUEUE] = p->input[(p->input_head + j + 1) % INPUT_QUEUE];
    p->input_count--;
    return 1;
  }
  return 0;
}

static void queue_input(cp_producer *p, const cp_input_event *event) {
  /* service() made room before it read the message. */
  p->input[(p->input_head + p->input_count) % INPUT_QUEUE] = *event;
  p->input_count++;
}

static void handle_message(cp_producer *p, size_t length) {
  enum cp_body body;
  fbr_table t;
  if (!fbr_message(p->message, length, &body, &t)) {
    p->stats.malformed_messages++;
    return;
  }
  cp_input_event event;
  memset(&event, 0, sizeof event);
  switch (body) {
    case CP_BODY_WELCOME:
      p->welcomed = 1;
      p->stats.consumer_max_fps = fbr_u16(&t, 2, 0);
      break;
    case CP_BODY_GOODBYE:
      disconnect(p);
      return;
    case CP_BODY_KEYFRAME_REQUEST:
      p->keyframe_requested = 1;
      return;
    case CP_BODY_TOUCH:
      event.kind = CP_INPUT_TOUCH;
      event.u.touch.action = fbr_u8(&t, 0, 0);
      event.u.touch.pointer_id = fbr_u8(&t, 1, 0);
      event.u.touch.x = clamp_unit(fbr_f32(&t, 2, 0));
      event.u.touch.y = clamp_unit(fbr_f32(&t, 3, 0));
      event.u.touch.pressure = clamp_unit(fbr_f32(&t, 4, 1.0f));
      if (event.u.touch.action > 3 || event.u.touch.pointer_id > 9) t.malformed = 1;
      break;
    case CP_BODY_KEY:
      event.kind = CP_INPUT_KEY;
      event.u.key.action = fbr_u8(&t, 0, 0);
      event.u.key.keycode = fbr_u32(&t, 1, 0);
      event.u.key.repeat = fbr_u32(&t, 2, 0);
      event.u.key.meta_state = fbr_u32(&t, 3, 0);
      if (event.u.key.action > 1) t.malformed = 1;
      break;
    case CP_BODY_TEXT: {
      const char *text;
      size_t text_length;
      event.kind = CP_INPUT_TEXT;
      if (fbr_string(&t, 0, &text, &text_length) != 1) {
        t.malformed = 1;
        break;
      }
      if (text_length >= sizeof event.u.text.text) text_length = sizeof event.u.text.text - 1;
      memcpy(event.u.text.text, text, text_length);
      event.u.text.text[text_length] = 0;
      break;
    }
    case CP_BODY_SCROLL:
      event.kind = CP_INPUT_SCROLL;
      event.u.scroll.x = clamp_unit(fbr_f32(&t, 0, 0));
      event.u.scroll.y = clamp_unit(fbr_f32(&t, 1, 0));
      event.u.scroll.horizontal = fbr_f32(&t, 2, 0);
      event.u.scroll.vertical = fbr_f32(&t, 3, 0);
      if (!(event.u.scroll.horizontal >= -16 && event.u.scroll.horizontal <= 16) ||
          !(event.u.scroll.vertical >= -16 && event.u.scroll.vertical <= 16))
        t.malformed = 1;
      break;
    case CP_BODY_ROTATE:
      event.kind = CP_INPUT_ROTATE;
      event.u.rotate.rotation = fbr_u8(&t, 0, 0);
      if (event.u.rotate.rotation > 3) t.malformed = 1;
      break;
    default:
      /* Messages meant for the sidecar, or for encoder producers, mean nothing here. */
      return;
  }
  if (t.malformed) {
    p->stats.malformed_messages++;
    return;
  }
  if (event.kind) queue_input(p, &event);
}

/* Reads whatever the sidecar sent, and reconnects when it went away. Never blocks. */
static void service(cp_producer *p) {
  try_connect(p);
  while (p->socket_fd >= 0) {
    /* With no room for input, the rest stays in the socket: the sidecar keeps it and sends it again later. */
    if (p->input_count == INPUT_QUEUE && !make_room(p)) return;
    ssize_t n = recv(p->socket_fd, p->message, sizeof p->message, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      disconnect(p);
      return;
    }
    if (n == 0) {
      disconnect(p);
      return;
    }
    if ((size_t)n > sizeof p->message) {
      p->stats.malformed_messages++;
      continue;
    }
    handle_message(p, (size_t)n);
  }
}

/* ---- surface memory ---- */

static void release_surface(cp_producer *p) {
  if (p->mapping) munmap(p->mapping, p->total_size);
  p->mapping = NULL;
  p->header = NULL;
  if (p->memory_fd >= 0) close(p->memory_fd);
  p->memory_fd = -1;
  if (p->file_name[0]) unlinkat(p->dir_fd, p->file_name, 0);
  p->file_name[0] = 0;
}

static int encoded_size_valid(uint32_t width, uint32_t height) {
  return width && height && width <= CP_FB_MAX_DIMENSION && height <= CP_FB_MAX_DIMENSION;
}

/* A phone that encodes itself shares no memory: a new generation only names the size, and frames travel in
 * EncodedFrame messages. */
static void start_encoded_generation(cp_producer *p, uint32_t width, uint32_t height) {
  p->generation++;
  p->stats.generation = p->generation;
  p->width = width;
  p->height = height;
}

static int create_surface(cp_producer *p, uint32_t width, uint32_t height, enum cp_pixel_format format,
                          uint32_t stride) {
  uint32_t bpp = cp_fb_bytes_per_pixel(format);
  uint64_t min_stride = (uint64_t)width * bpp;
  if (stride == 0) stride = (uint32_t)((min_stride + 63) & ~(uint64_t)63);
  if (stride < min_stride) return -EINVAL;
  uint64_t frame = cp_fb_frame_size(format, stride, height);
  uint64_t slot_size = (frame + CP_FB_SLOT_ALIGN - 1) & ~(uint64_t)(CP_FB_SLOT_ALIGN - 1);
  uint64_t total = CP_FB_HEADER_SIZE + slot_size * p->slot_count;

  /* The new surface is complete before the old one goes, so a failed resize leaves the producer working. */
  int fd;
  char name[64] = "";
  uint32_t generation = p->generation + 1;
  if (p->config.memory == CP_MEMORY_PASSED_FD) {
    fd = memfd_create("cloudphone-framebuffer", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -errno;
  } else {
    snprintf(name, sizeof name, "framebuffer-%d-%u.bin", (int)getpid(), generation);
    fd = openat(p->dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0) return -errno;
  }
  void *mapping = MAP_FAILED;
  int error = 0;
  if (ftruncate(fd, (off_t)total) != 0) {
    error = errno;
  } else {
    /* Sealed, the sidecar can trust the size never shrinks under its mapping. */
    if (p->config.memory == CP_MEMORY_PASSED_FD) fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    mapping = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mapping == MAP_FAILED) error = errno;
  }
  if (error) {
    close(fd);
    if (name[0]) unlinkat(p->dir_fd, name, 0);
    return -error;
  }
  release_surface(p);
  snprintf(p->file_name, sizeof p->file_name, "%s", name);
  p->memory_fd = fd;
  p->mapping = mapping;
  p->header = (struct cp_fb_header *)mapping;
  p->generation = generation;
  p->width = width;
  p->height = height;
  p->format = format;
  p->stride = stride;
  p->slot_size = slot_size;
  p->total_size = total;
  p->next_frame_number = 1;
  p->next_slot = 0;
  p->writing_slot = -1;

  struct cp_fb_header *h = p->header;
  h->magic = CP_FB_MAGIC;
  h->version = CP_FB_VERSION;
  h->header_size = CP_FB_HEADER_SIZE;
  h->generation = generation;
  h->width = width;
  h->height = height;
  h->format = (uint32_t)format;
  h->stride = stride;
  h->slot_count = p->slot_count;
  h->slot_size = slot_size;
  h->total_size = total;
  p->stats.generation = generation;
  return 0;
}

/* ---- public API ---- */

int cp_producer_open(const cp_producer_config *config, cp_producer **out) {
  *out = NULL;
  if (!config || !config->shared_dir) return -EINVAL;
  uint32_t slots = config->slot_count ? config->slot_count : CP_FB_MIN_SLOTS;
  if (slots < CP_FB_MIN_SLOTS || slots > CP_FB_MAX_SLOTS) return -EINVAL;
  int encoded = config->memory == CP_MEMORY_ENCODED_H264;
  if (encoded ? !encoded_size_valid(config->width, config->height)
              : !geometry_valid(config->width, config->height, config->format))
    return -EINVAL;
  if (config->memory != CP_MEMORY_SHARED_FILE && config->memory != CP_MEMORY_PASSED_FD && !encoded) return -EINVAL;
  if (config->rotation > 3) return -EINVAL;

  cp_producer *p = calloc(1, sizeof *p);
  if (!p) return -ENOMEM;
  p->config = *config;
  p->rotation = config->rotation;
  p->socket_fd = -1;
  p->memory_fd = -1;
  p->slot_count = slots;
  p->last_connect_attempt_ns = INT64_MIN / 2;
  snprintf(p->shared_dir, sizeof p->shared_dir, "%s", config->shared_dir);
  snprintf(p->socket_name, sizeof p->socket_name, "%s", config->socket_name ? config->socket_name : "control.sock");
  snprintf(p->name, sizeof p->name, "%s", config->name ? config->name : "libcloudphone-producer");
  /* Generations differ across producer restarts, so the sidecar never mistakes an old surface for a new one. */
  p->generation = (uint32_t)(monotonic_ns() / 1000000) << 8;

  p->dir_fd = open(p->shared_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (p->dir_fd < 0) {
    int error = errno;
    free(p);
    return -error;
  }
  int rc = 0;
  if (encoded) {
    p->format = CP_PIXEL_UNKNOWN;
    p->writing_slot = -1;
    start_encoded_generation(p, config->width, config->height);
  } else {
    rc = create_surface(p, config->width, config->height, config->format, config->stride);
  }
  if (rc != 0) {
    close(p->dir_fd);
    free(p);
    return rc;
  }
  service(p);
  *out = p;
  return 0;
}

int cp_producer_resize(cp_producer *p, uint32_t width, uint32_t height, enum cp_pixel_format format) {
  if (p->config.memory == CP_MEMORY_ENCODED_H264) return -EINVAL;
  if (!geometry_valid(width, height, format)) return -EINVAL;
  int rc = create_surface(p, width, height, format, 0);
  if (rc != 0) return rc;
  if (p->socket_fd >= 0) send_surface(p);
  service(p);
  return 0;
}

int cp_producer_rotate(cp_producer *p, uint32_t rotation, uint32_t width, uint32_t height) {
  if (rotation > 3) return -EINVAL;
  if (p->config.memory == CP_MEMORY_ENCODED_H264) {
    if (!encoded_size_valid(width, height)) return -EINVAL;
    start_encoded_generation(p, width, height);
  } else {
    if (!geometry_valid(width, height, p->format)) return -EINVAL;
    int rc = create_surface(p, width, height, p->format, 0);
    if (rc != 0) return rc;
  }
  p->rotation = rotation;
  if (p->socket_fd >= 0) send_surface(p);
  service(p);
  return 0;
}

int cp_producer_set_clipboard(cp_producer *p, const char *text, size_t length) {
  if (!text || length > CP_CLIPBOARD_MAX) return -EINVAL;
  service(p);
  if (!cp_producer_connected(p)) return -ENOTCONN;
  fbw_field fields[] = {fbw_offset(0)};
  size_t message = fbw_message(p->message, sizeof p->message, CP_BODY_CLIPBOARD, fields, 1, &text, &length);
  return message ? send_message(p, message, -1) : -EMSGSIZE;
}

int cp_producer_begin_frame(cp_producer *p, cp_frame *frame) {
  if (p->config.memory == CP_MEMORY_ENCODED_H264) return -EINVAL;
  if (p->writing_slot >= 0) return -EBUSY;
  uint32_t slot = p->next_slot;
  struct cp_fb_slot *s = &p->header->slots[slot];
  uint64_t sequence = __atomic_load_n(&s->sequence, __ATOMIC_RELAXED);
  /* Odd: readers that start now or are mid-read see the slot is being written. */
  __atomic_store_n(&s->sequence, sequence | 1, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  p->writing_slot = (int)slot;
  frame->pixels = p->mapping + CP_FB_HEADER_SIZE + (uint64_t)slot * p->slot_size;
  frame->stride = p->stride;
  frame->width = p->width;
  frame->height = p->height;
  frame->format = p->format;
  frame->frame_number = p->next_frame_number;
  return 0;
}

int cp_producer_end_frame(cp_producer *p, int64_t capture_time_ns, const cp_rect *damage) {
  if (p->writing_slot < 0) return -EINVAL;
  uint32_t slot = (uint32_t)p->writing_slot;
  struct cp_fb_slot *s = &p->header->slots[slot];
  uint64_t frame_number = p->next_frame_number++;
  s->frame_number = frame_number;
  s->capture_time_ns = capture_time_ns;
  if (damage) {
    s->damage_x = damage->x;
    s->damage_y = damage->y;
    s->damage_width = damage->width;
    s->damage_height = damage->height;
  } else {
    s->damage_x = s->damage_y = s->damage_width = s->damage_height = 0;
  }
  uint64_t sequence = __atomic_load_n(&s->sequence, __ATOMIC_RELAXED);
  __atomic_store_n(&s->sequence, sequence + 1, __ATOMIC_RELEASE);
  p->writing_slot = -1;
  p->next_slot = (slot + 1) % p->slot_count;
  p->stats.frames_published++;

  service(p);
  if (p->socket_fd >= 0) {
    fbw_field fields[] = {
        fbw_u32(0, p->generation), fbw_u8(1, (uint8_t)slot), fbw_u64(2, sequence + 1),
        fbw_u64(3, (uint64_t)capture_time_ns),
        fbw_rect(4, damage ? damage->x : 0, damage ? damage->y : 0, damage ? damage->width : 0,
                 damage ? damage->height : 0),
    };
    /* Without damage the rect is left out: absent means the whole screen. */
    size_t length =
        fbw_message(p->message, sizeof p->message, CP_BODY_FRAME_READY, fields, damage ? 5 : 4, NULL, NULL);
    /* A full socket means the sidecar is behind: it will find this frame in the slots anyway. */
    if (send_message(p, length, -1) == -EAGAIN) p->stats.notifications_dropped++;
  }
  return 0;
}

/* Data per EncodedFrame message: the rest of a 64 KiB message is ample for the table around it. */
#define ENCODED_FRAGMENT_MAX (CP_CONTROL_MESSAGE_MAX - 1024u)

int cp_producer_submit_h264(cp_producer *p, const uint8_t *data, size_t length, int64_t capture_time_ns,
                            int keyframe) {
  if (p->config.memory != CP_MEMORY_ENCODED_H264 || !data || !length || length > CP_ENCODED_FRAME_MAX)
    return -EINVAL;
  service(p);
  if (!cp_producer_connected(p)) {
    p->stats.encoded_frames_dropped++;
    return -ENOTCONN;
  }
  for (size_t offset = 0; offset < length;) {
    size_t chunk = length - offset < ENCODED_FRAGMENT_MAX ? length - offset : ENCODED_FRAGMENT_MAX;
    fbw_field fields[] = {
        fbw_u32(0, p->generation), fbw_u64(1, (uint64_t)capture_time_ns), fbw_u8(2, keyframe ? 1 : 0),
        fbw_offset(3),             fbw_u32(4, (uint32_t)offset),         fbw_u32(5, (uint32_t)length),
    };
    /* A FlatBuffers string is a [ubyte] vector plus a NUL of padding, so the string writer serves here. */
    const char *bytes = (const char *)data + offset;
    size_t message = fbw_message(p->message, sizeof p->message, CP_BODY_ENCODED_FRAME, fields, 6, &bytes, &chunk);
    int rc = message ? send_message(p, message, -1) : -EMSGSIZE;
    /* A keyframe is several messages at once: give the sidecar (64 messages a turn) up to 20 ms to drain
     * the socket before giving the frame up. */
    for (int64_t deadline = monotonic_ns() + 20000000; rc == -EAGAIN && monotonic_ns() < deadline;) {
      struct pollfd writable = {p->socket_fd, POLLOUT, 0};
      if (poll(&writable, 1, 5) < 0 && errno != EINTR) break;
      rc = send_message(p, message, -1);
    }
    if (rc != 0) {
      /* A frame cut short is useless: the sidecar drops the part it got when the next frame begins. */
      p->stats.encoded_frames_dropped++;
      return rc;
    }
    p->stats.encoded_fragments_sent++;
    offset += chunk;
  }
  p->stats.encoded_frames_sent++;
  return 0;
}

int cp_producer_take_keyframe_request(cp_producer *p) {
  service(p);
  int requested = p->keyframe_requested;
  p->keyframe_requested = 0;
  return requested;
}

int cp_producer_poll_input(cp_producer *p, cp_input_event *event) {
  if (p->input_count == 0) service(p);
  if (p->input_count == 0) return 0;
  *event = p->input[p->input_head];
  p->input_head = (p->input_head + 1) % INPUT_QUEUE;
  p->input_count--;
  return 1;
}

int cp_producer_fd(const cp_producer *p) { return p->socket_fd; }

int cp_producer_connected(const cp_producer *p) { return p->socket_fd >= 0 && p->welcomed; }

void cp_producer_get_stats(const cp_producer *p, cp_producer_stats *stats) { *stats = p->stats; }

void cp_producer_close(cp_producer *p) {
  if (!p) return;
  if (p->socket_fd >= 0) {
    fbw_field fields[] = {fbw_offset(0)};
    const char *reason = "producer closed";
    size_t reason_length = strlen(reason);
    size_t length = fbw_message(p->message, sizeof p->message, CP_BODY_GOODBYE, fields, 1, &reason, &reason_length);
    send_message(p, length, -1);
  }
  disconnect(p);
  release_surface(p);
  close(p->dir_fd);
  free(p);
}
