/*
 * cloudphone-hostile-producer: a deliberately broken phone, for tests that the sidecar survives one. Each mode
 * connects to the control socket, misbehaves one way, and exits 0 once it has done so.
 *
 *   cloudphone-hostile-producer --dir D --mode garbage-message|no-hello|lying-size|garbage-header|bad-path|truncate
 *                                             |unsealed-memfd|encoded-lies|reconnect-flood|surface-flood
 *                                             |lying-capture-times|encoded-bad-h264|bad-clipboard
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cloudphone/framebuffer.h"
#include "cloudphone/producer.h"
#include "../src/producer/fb_wire.h"

static uint8_t message[4096];

static int connect_socket(const char *dir) {
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  snprintf(address.sun_path, sizeof address.sun_path, "%s/control.sock", dir);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
    perror("connect");
    exit(1);
  }
  return fd;
}

static void send_bytes(int fd, const void *bytes, size_t length) {
  if (send(fd, bytes, length, MSG_NOSIGNAL) != (ssize_t)length) perror("send");
}

static void hello(int fd) {
  fbw_field fields[] = {fbw_u16(0, 1), fbw_offset(1)};
  const char *name = "hostile";
  size_t length = 7;
  send_bytes(fd, message, fbw_message(message, sizeof message, CP_BODY_HELLO, fields, 2, &name, &length));
}

static void surface(int fd, const char *path, uint32_t width, uint32_t height, uint64_t size) {
  uint32_t stride = width * 4;
  fbw_field fields[] = {fbw_u32(0, 7), fbw_u8(1, 0), fbw_offset(2), fbw_u32(3, width), fbw_u32(4, height),
                        fbw_u8(5, CP_PIXEL_RGBA8888), fbw_u32(6, stride), fbw_u8(7, 3), fbw_u64(8, size)};
  size_t length = strlen(path);
  send_bytes(fd, message, fbw_message(message, sizeof message, CP_BODY_SURFACE, fields, 9, &path, &length));
}

static void frame_ready(int fd, uint32_t slot) {
  fbw_field fields[] = {fbw_u32(0, 7), fbw_u8(1, (uint8_t)slot), fbw_u64(2, 2), fbw_u64(3, 1)};
  send_bytes(fd, message, fbw_message(message, sizeof message, CP_BODY_FRAME_READY, fields, 4, NULL, NULL));
}

/* A 64x64 PassedFd surface with its memory descriptor as ancillary data. */
static void surface_passing(int fd, int memory, uint64_t size) {
  fbw_field fields[] = {fbw_u32(0, 7), fbw_u8(1, 1), fbw_u32(3, 64), fbw_u32(4, 64), fbw_u8(5, CP_PIXEL_RGBA8888),
                        fbw_u32(6, 256), fbw_u8(7, 3), fbw_u64(8, size)};
  size_t length = fbw_message(message, sizeof message, CP_BODY_SURFACE, fields, 8, NULL, NULL);
  struct iovec iov = {.iov_base = message, .iov_len = length};
  union {
    char bytes[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof control);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes,
                       .msg_controllen = sizeof control.bytes};
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cmsg), &memory, sizeof(int));
  if (sendmsg(fd, &msg, MSG_NOSIGNAL) != (ssize_t)length) perror("sendmsg");
}

/* One EncodedFrame fragment of generation 7. */
static void encoded_fragment(int fd, const char *data, size_t length, uint32_t offset, uint32_t size) {
  fbw_field fields[] = {fbw_u32(0, 7), fbw_u64(1, 1), fbw_u8(2, 1), fbw_offset(3), fbw_u32(4, offset), fbw_u32(5, size)};
  send_bytes(fd, message, fbw_message(message, sizeof message, CP_BODY_ENCODED_FRAME, fields, 6, &data, &length));
}

/* One whole access unit (a single fragment) of generation 7. */
static void encoded_unit(int fd, const char *data, size_t length, int keyframe) {
  fbw_field fields[] = {fbw_u32(0, 7), fbw_u64(1, 1), fbw_u8(2, (uint8_t)keyframe), fbw_offset(3), fbw_u32(4, 0),
                        fbw_u32(5, 0)};
  send_bytes(fd, message, fbw_message(message, sizeof message, CP_BODY_ENCODED_FRAME, fields, 6, &data, &length));
}

/* A valid surface of 64x64 RGBA in a file of the shared directory, or in a memfd without seals when name is
 * NULL; returned mapped, the caller may then damage it. */
static uint8_t *make_surface(const char *dir, const char *name, uint64_t *total, int *out_fd) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name ? name : "");
  uint64_t slot = ((uint64_t)64 * 4 * 64 + CP_FB_SLOT_ALIGN - 1) / CP_FB_SLOT_ALIGN * CP_FB_SLOT_ALIGN;
  *total = CP_FB_HEADER_SIZE + 3 * slot;
  int fd = name ? open(path, O_RDWR | O_CREAT | O_TRUNC, 0644) : memfd_create("hostile", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, (off_t)*total) != 0) exit(1);
  uint8_t *map = mmap(NULL, *total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  struct cp_fb_header *h = (struct cp_fb_header *)map;
  h->magic = CP_FB_MAGIC, h->version = CP_FB_VERSION, h->header_size = CP_FB_HEADER_SIZE, h->generation = 7;
  h->width = 64, h->height = 64, h->format = CP_PIXEL_RGBA8888, h->stride = 256, h->slot_count = 3;
  h->slot_size = slot, h->total_size = *total;
  for (int i = 0; i < 3; i++) h->slots[i].sequence = 2, h->slots[i].frame_number = (uint64_t)i + 1;
  *out_fd = fd;
  return map;
}

/* Publishes frame_number into slot (the seqlock as the producer library writes it) and says it is ready. */
static void publish(int fd, uint8_t *map, uint32_t slot, uint64_t frame_number, int64_t capture_time_ns) {
  struct cp_fb_slot *s = &((struct cp_fb_header *)map)->slots[slot];
  __atomic_store_n(&s->sequence, s->sequence + 1, __ATOMIC_RELEASE);
  s->frame_number = frame_number;
  s->capture_time_ns = capture_time_ns;
  __atomic_store_n(&s->sequence, s->sequence + 1, __ATOMIC_RELEASE);
  frame_ready(fd, slot);
}

static int64_t monotonic_now(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

int main(int argc, char **argv) {
  const char *dir = NULL, *mode = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
    if (!strcmp(argv[i], "--mode")) mode = argv[i + 1];
  }
  if (!dir || !mode) return 2;
  int fd = connect_socket(dir);
  uint64_t total;
  int file;
  if (!strcmp(mode, "garbage-message")) {
    hello(fd);
    srand(42);
    for (int i = 0; i < 200; i++) {
      size_t length = 1 + (size_t)(rand() % 512);
      for (size_t j = 0; j < length; j++) message[j] = (uint8_t)rand();
      if (i % 2) memcpy(message + 4, "CPCT", length > 8 ? 4 : 0);
      send_bytes(fd, message, length);
    }
  } else if (!strcmp(mode, "no-hello")) {
    frame_ready(fd, 0);
  } else if (!strcmp(mode, "lying-size")) {
    hello(fd);
    make_surface(dir, "hostile.bin", &total, &file);
    /* A consistent 128x128 surface, in a file made for 64x64: claims more memory than there is. */
    surface(fd, "hostile.bin", 128, 128, CP_FB_HEADER_SIZE + 3 * (uint64_t)128 * 128 * 4);
    frame_ready(fd, 0);
  } else if (!strcmp(mode, "garbage-header")) {
    hello(fd);
    uint8_t *map = make_surface(dir, "hostile.bin", &total, &file);
    memset(map, 0xA5, 128); /* magic and geometry overwritten */
    surface(fd, "hostile.bin", 64, 64, total);
    frame_ready(fd, 0);
  } else if (!strcmp(mode, "bad-path")) {
    hello(fd);
    surface(fd, "../../etc/passwd", 64, 64, 4096 * 4);
  } else if (!strcmp(mode, "truncate")) {
    hello(fd);
    make_surface(dir, "hostile.bin", &total, &file);
    surface(fd, "hostile.bin", 64, 64, total);
    usleep(200000);
    /* Shrinks the memory under the sidecar's mapping, then says a frame is ready: reading it would SIGBUS. */
    if (ftruncate(file, 0) != 0) return 1;
    frame_ready(fd, 2);
  } else if (!strcmp(mode, "reconnect-flood")) {
    /* A compositor in a crash loop, as fast as it can: connect, greet, go, 2000 times. */
    close(fd);
    for (int i = 0; i < 2000; i++) {
      int again = connect_socket(dir);
      hello(again);
      close(again);
    }
    return 0;
  } else if (!strcmp(mode, "surface-flood")) {
    /* 2000 surfaces the sidecar must refuse, one after another. */
    hello(fd);
    for (int i = 0; i < 2000; i++) surface(fd, "../refused", 64, 64, 4096 * 4);
  } else if (!strcmp(mode, "unsealed-memfd")) {
    hello(fd);
    make_surface(dir, NULL, &total, &file);
    /* A memfd the phone can still shrink under the sidecar's mapping. */
    surface_passing(fd, file, total);
    frame_ready(fd, 0);
  } else if (!strcmp(mode, "encoded-lies")) {
    hello(fd);
    fbw_field fields[] = {fbw_u32(0, 7), fbw_u8(1, 2), fbw_u32(3, 320), fbw_u32(4, 640)};
    send_bytes(fd, message, fbw_message(message, sizeof message, CP_BODY_SURFACE, fields, 4, NULL, NULL));
    static const char start[] = "\x00\x00\x00\x01\x65\x88\x84";
    encoded_fragment(fd, start, 7, 100, 200);             /* a continuation with no beginning */
    encoded_fragment(fd, start, 7, 0, 1u << 30);          /* a 1 GiB frame */
    encoded_fragment(fd, "not h264", 8, 0, 0);            /* no start code */
    encoded_fragment(fd, start, 7, 0, 10);                /* begins a 10-byte frame... */
    encoded_fragment(fd, start, 7, 7, 10);                /* ...and runs past it */
  } else if (!strcmp(mode, "lying-capture-times")) {
    /* Frames stamped far in the future, at the ends of the range, before boot and long ago: none may reach the
     * stream's timestamps or its latency figures, nor spoil the timestamps of the phone after this one. */
    hello(fd);
    uint8_t *map = make_surface(dir, "hostile.bin", &total, &file);
    surface(fd, "hostile.bin", 64, 64, total);
    usleep(100000);
    const int64_t lies[] = {INT64_MAX, monotonic_now() + 3600000000000, INT64_MIN, -1, 0, monotonic_now() - 3600000000000,
                            INT64_MAX - 1};
    for (uint64_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
      publish(fd, map, (uint32_t)(i % 3), 10 + i, lies[i]);
      usleep(60000); /* slower than the fps cap: each one is encoded */
    }
  } else if (!strcmp(mode, "encoded-bad-h264")) {
    /* Access units that are whole as messages but are not H.264 a viewer should get, for a 64x64 surface. Each
     * is refused for a different reason; the SPS below is Baseline 64x64 (and its 128x128 twin). */
    hello(fd);
    fbw_field fields[] = {fbw_u32(0, 7), fbw_u8(1, 2), fbw_u32(3, 64), fbw_u32(4, 64)};
    send_bytes(fd, message, fbw_message(message, sizeof message, CP_BODY_SURFACE, fields, 4, NULL, NULL));
#define UNIT(bytes, keyframe) encoded_unit(fd, bytes, sizeof bytes - 1, keyframe)
    UNIT("\x00\x00\x00\x01\xe5\x88\x84\x21", 1);                        /* forbidden bit set */
    UNIT("\x00\x00\x00\x01\x74\x88\x84\x21", 0);                        /* MVC slice extension (20) */
    UNIT("\x00\x00\x00\x01\x06\x05\x01\x00\x80", 0);                     /* SEI alone: no picture */
    UNIT("\x00\x00\x00\x01\x65\x88\x84\x21", 1);                        /* IDR without SPS and PPS */
    UNIT("\x00\x00\x00\x01\x68\xce\x38\x80\x00\x00\x01\x65\x88\x84", 1); /* PPS naming an SPS never sent */
    UNIT("\x00\x00\x00\x01\x67\x42\xc0\x1e\xda\x08\x11\x90\x00\x00\x01\x68\xce\x38\x80\x00\x00\x01\x65\x88\x84",
         1);                                                                /* SPS of 128x128 */
    UNIT("\x00\x00\x00\x01\x67\x42\xc0", 1);                             /* SPS cut short */
    UNIT("\x00\x00\x00\x01\x67\x64\xc0\x1e\xda\x10\x99\x00\x00\x01\x65\x88", 1); /* High, 4:0:0 (monochrome) */
#undef UNIT
  } else if (!strcmp(mode, "bad-clipboard")) {
    /* Clipboard texts the sidecar must not forward, then a surface turned a way no screen turns. */
    hello(fd);
    static uint8_t big[CP_CONTROL_MESSAGE_MAX];
    static char text[40000];
    memset(text, 'a', sizeof text);
    const char *texts[] = {text, "\xff\xfe not UTF-8", "a\0b", "\xc0\xaf overlong", "\xed\xa0\x80 surrogate"};
    const size_t lengths[] = {sizeof text, strlen(texts[1]), 3, strlen(texts[3]), strlen(texts[4])};
    for (int i = 0; i < 5; i++) {
      fbw_field fields[] = {fbw_offset(0)};
      send_bytes(fd, big, fbw_message(big, sizeof big, CP_BODY_CLIPBOARD, fields, 1, &texts[i], &lengths[i]));
    }
    fbw_field surface[] = {fbw_u32(0, 9), fbw_u8(1, 2), fbw_u32(3, 64), fbw_u32(4, 64), fbw_u8(9, 7)};
    send_bytes(fd, message, fbw_message(message, sizeof message, CP_BODY_SURFACE, surface, 5, NULL, NULL));
  } else {
    return 2;
  }
  usleep(300000);
  close(fd);
  return 0;
}
