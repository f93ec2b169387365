/*
 * A machine-readable stamp drawn into every simulated frame: frame number and capture time in blocks large
 * enough to survive H.264 at low bitrates, read back from decoded frames to measure latency and order.
 *
 * 4 rows of 32 blocks at the top of the picture, each block black (0) or white (1), most significant bit
 * first: 16-bit marker 0xC1D0, 32-bit frame number, 64-bit CLOCK_MONOTONIC capture time in nanoseconds,
 * 16-bit CRC (CCITT) of the 12 data bytes. Block side = width / 32 pixels.
 */
#ifndef CLOUDPHONE_STAMP_H
#define CLOUDPHONE_STAMP_H

#include <stdint.h>

#define CP_STAMP_COLUMNS 32u
#define CP_STAMP_ROWS 4u
#define CP_STAMP_MARKER 0xC1D0u

typedef struct cp_stamp {
  uint32_t frame_number;
  int64_t capture_time_ns;
} cp_stamp;

/* Side of one block in pixels for a picture this wide (at least 4). */
uint32_t cp_stamp_block(uint32_t width);
/* The 128 bits of a stamp, bits[0] first. */
void cp_stamp_bits(const cp_stamp *stamp, uint8_t bits[128]);
/* Reads a stamp from a luma plane (8-bit, any stride). 1 when the marker and CRC check out. */
int cp_stamp_read_luma(const uint8_t *luma, uint32_t stride, uint32_t width, uint32_t height, cp_stamp *stamp);

#endif
