#include "stamp.h"

#include <string.h>

uint32_t cp_stamp_block(uint32_t width) {
  uint32_t block = width / CP_STAMP_COLUMNS;
  return block < 4 ? 4 : block;
}

static uint16_t crc16_ccitt(const uint8_t *data, int length) {
  uint16_t crc = 0xFFFF;
  for (int i = 0; i < length; i++) {
    crc ^= (uint16_t)(data[i] << 8);
    for (int bit = 0; bit < 8; bit++) crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
  }
  return crc;
}

static void payload(const cp_stamp *stamp, uint8_t bytes[16]) {
  bytes[0] = CP_STAMP_MARKER >> 8;
  bytes[1] = CP_STAMP_MARKER & 0xFF;
  for (int i = 0; i < 4; i++) bytes[2 + i] = (uint8_t)(stamp->frame_number >> (24 - 8 * i));
  uint64_t t = (uint64_t)stamp->capture_time_ns;
  for (int i = 0; i < 8; i++) bytes[6 + i] = (uint8_t)(t >> (56 - 8 * i));
  uint16_t crc = crc16_ccitt(bytes + 2, 12);
  bytes[14] = (uint8_t)(crc >> 8);
  bytes[15] = (uint8_t)crc;
}

void cp_stamp_bits(const cp_stamp *stamp, uint8_t bits[128]) {
  uint8_t bytes[16];
  payload(stamp, bytes);
  for (int i = 0; i < 128; i++) bits[i] = (bytes[i / 8] >> (7 - i % 8)) & 1;
}

int cp_stamp_read_luma(const uint8_t *luma, uint32_t stride, uint32_t width, uint32_t height, cp_stamp *stamp) {
  uint32_t block = cp_stamp_block(width);
  if (block * CP_STAMP_ROWS > height || block * CP_STAMP_COLUMNS > width) return 0;
  uint8_t bytes[16];
  memset(bytes, 0, sizeof bytes);
  for (uint32_t i = 0; i < 128; i++) {
    uint32_t bx = (i % CP_STAMP_COLUMNS) * block, by = (i / CP_STAMP_COLUMNS) * block;
    /* The middle half of the block: edges blur under compression and scaling. */
    uint32_t sum = 0, count = 0;
    for (uint32_t y = by + block / 4; y < by + block - block / 4; y++)
      for (uint32_t x = bx + block / 4; x < bx + block - block / 4; x++) sum += luma[(uint64_t)y * stride + x], count++;
    if (sum / count >= 128) bytes[i / 8] |= (uint8_t)(1 << (7 - i % 8));
  }
  if (((bytes[0] << 8) | bytes[1]) != CP_STAMP_MARKER) return 0;
  if (crc16_ccitt(bytes + 2, 12) != ((bytes[14] << 8) | bytes[15])) return 0;
  uint32_t n = 0;
  for (int i = 0; i < 4; i++) n = (n << 8) | bytes[2 + i];
  uint64_t t = 0;
  for (int i = 0; i < 8; i++) t = (t << 8) | bytes[6 + i];
  stamp->frame_number = n;
  stamp->capture_time_ns = (int64_t)t;
  return 1;
}
