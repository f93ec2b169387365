/* Writes the starting corpus for fuzz_control.cpp: one well-formed input per path it covers, written by the
 * same C writer the producer uses, so the fuzzer begins from messages that pass verification.
 * Usage: cloudphone-fuzz-seeds DIR */
#include <stdio.h>
#include <string.h>

#include "cloudphone/framebuffer.h"
#include "../src/producer/fb_wire.h"

static int write_seed(const char *dir, const char *name, uint8_t mode, const uint8_t *payload, size_t length) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *file = fopen(path, "wb");
  if (!file) return -1;
  uint8_t prefix[2] = {mode, 0};
  int ok = fwrite(prefix, 1, 2, file) == 2 && fwrite(payload, 1, length, file) == length;
  return fclose(file) == 0 && ok ? 0 : -1;
}

static size_t message(uint8_t *buf, enum cp_body body, fbw_field *fields, int count, const char *text) {
  size_t text_length = text ? strlen(text) : 0;
  return fbw_message(buf, 1024, body, fields, count, text ? &text : NULL, text ? &text_length : NULL);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: cloudphone-fuzz-seeds DIR\n");
    return 2;
  }
  const char *dir = argv[1];
  uint8_t buf[1024];
  int failed = 0;

  fbw_field hello[] = {fbw_u16(0, 1), fbw_offset(1)};
  failed |= write_seed(dir, "hello", 0, buf, message(buf, CP_BODY_HELLO, hello, 2, "seed-phone"));
  fbw_field surface[] = {fbw_u32(0, 1), fbw_u8(1, 0),  fbw_offset(2),    fbw_u32(3, 64), fbw_u32(4, 64),
                         fbw_u8(5, 1),  fbw_u32(6, 256), fbw_u8(7, 3), fbw_u64(8, 4096 + 3 * 16384)};
  failed |= write_seed(dir, "surface-file", 0, buf, message(buf, CP_BODY_SURFACE, surface, 9, "frames"));
  surface[1] = fbw_u8(1, 1);
  failed |= write_seed(dir, "surface-fd", 0, buf, message(buf, CP_BODY_SURFACE, surface, 9, NULL));
  fbw_field ready[] = {fbw_u32(0, 1), fbw_u8(1, 0), fbw_u64(2, 2), fbw_u64(3, 123456789),
                       fbw_rect(4, 0, 0, 64, 64)};
  failed |= write_seed(dir, "frame-ready", 0, buf, message(buf, CP_BODY_FRAME_READY, ready, 5, NULL));
  static const char annexb[] = "\x00\x00\x00\x01\x67\x42\x00\x1e\x00\x00\x01\x68\xce\x00\x00\x01\x65\x88";
  fbw_field encoded[] = {fbw_u32(0, 1), fbw_u64(1, 5), fbw_u8(2, 1), fbw_offset(3), fbw_u32(4, 0), fbw_u32(5, 0)};
  size_t annexb_length = sizeof annexb - 1;
  const char *annexb_text = annexb;
  failed |= write_seed(dir, "encoded-frame", 0, buf,
                       fbw_message(buf, 1024, CP_BODY_ENCODED_FRAME, encoded, 6, &annexb_text, &annexb_length));
  /* A whole keyframe as the H.264 check passes it: SPS (Baseline 64x64), PPS, IDR slice. */
  static const char keyframe[] = "\x00\x00\x00\x01\x67\x42\xc0\x1e\xda\x10\x99\x00\x00\x01\x68\xce\x38\x80"
                                 "\x00\x00\x01\x65\x88\x84\x21";
  size_t keyframe_length = sizeof keyframe - 1;
  const char *keyframe_text = keyframe;
  failed |= write_seed(dir, "encoded-keyframe", 0, buf,
                       fbw_message(buf, 1024, CP_BODY_ENCODED_FRAME, encoded, 6, &keyframe_text, &keyframe_length));
  fbw_field goodbye[] = {fbw_offset(0)};
  failed |= write_seed(dir, "goodbye", 0, buf, message(buf, CP_BODY_GOODBYE, goodbye, 1, "shutting down"));

  static struct cp_fb_header header;
  header.magic = CP_FB_MAGIC;
  header.version = CP_FB_VERSION;
  header.header_size = CP_FB_HEADER_SIZE;
  header.generation = 1;
  header.width = 64;
  header.height = 64;
  header.format = CP_PIXEL_RGBA8888;
  header.stride = 256;
  header.slot_count = 3;
  header.slot_size = 16384;
  header.total_size = 4096 + 3 * 16384;
  header.slots[1].sequence = 2;
  header.slots[1].frame_number = 1;
  failed |= write_seed(dir, "framebuffer", 1, (const uint8_t *)&header, sizeof header);

  fbw_field welcome[] = {fbw_u16(0, 1), fbw_offset(1), fbw_u16(2, 30)};
  failed |= write_seed(dir, "welcome", 2, buf, message(buf, CP_BODY_WELCOME, welcome, 3, "cloudphone-sidecar"));
  fbw_field touch[] = {fbw_u8(0, 0), fbw_u8(1, 0), fbw_u32(2, 0x3f000000), fbw_u32(3, 0x3e800000)};
  failed |= write_seed(dir, "touch", 2, buf, message(buf, CP_BODY_TOUCH, touch, 4, NULL));
  fbw_field text[] = {fbw_offset(0)};
  failed |= write_seed(dir, "text", 2, buf, message(buf, CP_BODY_TEXT, text, 1, "hello"));
  fbw_field rotate[] = {fbw_u8(0, 1)};
  failed |= write_seed(dir, "rotate", 2, buf, message(buf, CP_BODY_ROTATE, rotate, 1, NULL));
  fbw_field clipboard[] = {fbw_offset(0)};
  failed |= write_seed(dir, "clipboard", 0, buf, message(buf, CP_BODY_CLIPBOARD, clipboard, 1, "gr\xc3\xbc\xc3\x9f\x65\n"));

  /* Capture times: an honest phone at 30 fps, then a new producer whose clock runs behind, then one lying. */
  static const int64_t times[][2] = {{1000000000, 1001000000},   {1033333333, 1034000000}, {-1, 1067000000},
                                     {500000000, 1100000000},    {533333333, 1133000000},  {INT64_MAX, 1166000000},
                                     {INT64_MIN, INT64_MAX}};
  uint8_t records[sizeof times / sizeof times[0] * 17];
  for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
    records[i * 17] = i == 3;  /* restart: a new producer */
    memcpy(records + i * 17 + 1, &times[i][0], 8);
    memcpy(records + i * 17 + 9, &times[i][1], 8);
  }
  failed |= write_seed(dir, "capture-times", 4, records, sizeof records);

  /* An unfinished recording segment: ftyp, moov, a whole fragment, then a fragment cut in its mdat (a 64-bit
   * size claiming more than the file holds). */
  static const uint8_t segment[] = {
      0, 0, 0, 16, 'f', 't', 'y', 'p', 'i', 's', 'o', '5', 0, 0, 2, 0,    /* ftyp */
      0, 0, 0, 8,  'm', 'o', 'o', 'v',                                    /* moov */
      0, 0, 0, 12, 'm', 'o', 'o', 'f', 1, 2, 3, 4,                        /* moof */
      0, 0, 0, 12, 'm', 'd', 'a', 't', 0, 0, 0, 1,                        /* mdat */
      0, 0, 0, 8,  'm', 'o', 'o', 'f',                                    /* moof */
      0, 0, 0, 1,  'm', 'd', 'a', 't', 0, 0, 0, 0, 0, 0, 1, 0, 0xaa, 0xbb /* mdat, cut */
  };
  failed |= write_seed(dir, "recording-segment", 5, segment, sizeof segment);
  if (failed) perror("cloudphone-fuzz-seeds");
  return failed ? 1 : 0;
}
