#include "painter.h"

#include <stdlib.h>
#include <string.h>

#include "../stamp/stamp.h"

/* A tall strip of screen content that scrolls like a list, in the surface's own pixel format; built once per
 * size so that each frame costs one row copy per line plus a few small boxes. */

static uint32_t hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

/* RGB of the content at texture position (x, y): coloured list rows with "text" made of noisy glyph blocks,
 * over a gradient, which gives the encoder the edges and motion a real screen has. */
static void content_rgb(uint32_t x, uint32_t y, uint32_t width, uint8_t rgb[3]) {
  uint32_t row = y / 96, in_row = y % 96;
  uint8_t base_r = (uint8_t)(40 + (row * 53) % 160), base_g = (uint8_t)(60 + (row * 97) % 150),
          base_b = (uint8_t)(90 + (row * 31) % 140);
  uint8_t gradient = (uint8_t)((x * 255) / (width ? width : 1));
  rgb[0] = (uint8_t)((base_r + gradient) / 2);
  rgb[1] = base_g;
  rgb[2] = (uint8_t)((base_b + (255 - gradient)) / 2);
  if (in_row < 4) rgb[0] = rgb[1] = rgb[2] = 230; /* separator */
  /* "Text": glyph cells 12x20 px in two lines per row, some lit, with noise inside. */
  uint32_t line = (in_row >= 24 && in_row < 44) ? 1 : (in_row >= 56 && in_row < 76) ? 2 : 0;
  if (line && x > 24 && x < width - 24) {
    uint32_t cell = (x / 12) + row * 131 + line * 17;
    if (hash32(cell) % 5 != 0 && (hash32(x * 7 + y * 13) & 3)) rgb[0] = rgb[1] = rgb[2] = 20;
  }
}

static void store_pixel(uint8_t *p, enum cp_pixel_format format, const uint8_t rgb[3]) {
  if (format == CP_PIXEL_BGRA8888) {
    p[0] = rgb[2], p[1] = rgb[1], p[2] = rgb[0], p[3] = 255;
  } else {
    p[0] = rgb[0], p[1] = rgb[1], p[2] = rgb[2], p[3] = 255;
  }
}

static uint8_t luma(const uint8_t rgb[3]) { return (uint8_t)(((66 * rgb[0] + 129 * rgb[1] + 25 * rgb[2] + 128) >> 8) + 16); }
static uint8_t chroma_u(const uint8_t rgb[3]) { return (uint8_t)(((-38 * rgb[0] - 74 * rgb[1] + 112 * rgb[2] + 128) >> 8) + 128); }
static uint8_t chroma_v(const uint8_t rgb[3]) { return (uint8_t)(((112 * rgb[0] - 94 * rgb[1] - 18 * rgb[2] + 128) >> 8) + 128); }

int painter_init(painter *p, uint32_t width, uint32_t height, enum cp_pixel_format format) {
  memset(p, 0, sizeof *p);
  p->width = width;
  p->height = height;
  p->format = format;
  p->texture_height = height * 2;
  uint32_t bpp = cp_fb_bytes_per_pixel(format);
  p->texture_stride = width * bpp;
  size_t size = (size_t)p->texture_stride * p->texture_height;
  if (format == CP_PIXEL_NV12) size += (size_t)width * p->texture_height / 2;
  p->texture = malloc(size);
  if (!p->texture) return -1;
  uint8_t rgb[3];
  for (uint32_t y = 0; y < p->texture_height; y++) {
    for (uint32_t x = 0; x < width; x++) {
      content_rgb(x, y, width, rgb);
      if (format == CP_PIXEL_NV12) {
        p->texture[(size_t)y * width + x] = luma(rgb);
        if (!(x & 1) && !(y & 1)) {
          uint8_t *uv = p->texture + (size_t)width * p->texture_height + (size_t)(y / 2) * width + x;
          uv[0] = chroma_u(rgb);
          uv[1] = chroma_v(rgb);
        }
      } else {
        store_pixel(p->texture + (size_t)y * p->texture_stride + (size_t)x * 4, format, rgb);
      }
    }
  }
  return 0;
}

void painter_free(painter *p) {
  free(p->texture);
  p->texture = NULL;
}

static void fill_rect(const painter *p, uint8_t *pixels, uint32_t stride, uint32_t x0, uint32_t y0, uint32_t w,
                      uint32_t h, const uint8_t rgb[3]) {
  if (x0 >= p->width || y0 >= p->height) return;
  if (x0 + w > p->width) w = p->width - x0;
  if (y0 + h > p->height) h = p->height - y0;
  if (p->format == CP_PIXEL_NV12) {
    uint8_t y_value = luma(rgb), u = chroma_u(rgb), v = chroma_v(rgb);
    for (uint32_t y = y0; y < y0 + h; y++) memset(pixels + (size_t)y * stride + x0, y_value, w);
    uint8_t *uv_plane = pixels + (size_t)stride * p->height;
    for (uint32_t y = y0 / 2; y < (y0 + h + 1) / 2; y++)
      for (uint32_t x = x0 & ~1u; x < x0 + w; x += 2) uv_plane[(size_t)y * stride + x] = u, uv_plane[(size_t)y * stride + x + 1] = v;
    return;
  }
  for (uint32_t y = y0; y < y0 + h; y++)
    for (uint32_t x = x0; x < x0 + w; x++) store_pixel(pixels + (size_t)y * stride + (size_t)x * 4, p->format, rgb);
}

void painter_paint(const painter *p, uint8_t *pixels, uint32_t stride, uint64_t frame_number, int64_t capture_time_ns) {
  /* Scroll 6 px per frame through the strip, wrapping around. */
  uint32_t offset = (uint32_t)((frame_number * 6) % p->height);
  uint32_t row_bytes = p->width * cp_fb_bytes_per_pixel(p->format);
  for (uint32_t y = 0; y < p->height; y++)
    memcpy(pixels + (size_t)y * stride, p->texture + (size_t)(y + offset) * p->texture_stride, row_bytes);
  if (p->format == CP_PIXEL_NV12) {
    const uint8_t *uv_texture = p->texture + (size_t)p->width * p->texture_height;
    uint8_t *uv = pixels + (size_t)stride * p->height;
    for (uint32_t y = 0; y < p->height / 2; y++)
      memcpy(uv + (size_t)y * stride, uv_texture + (size_t)(y + offset / 2) * p->width, p->width);
  }

  /* Three boxes bouncing around: motion that does not follow the scroll. */
  uint32_t box = p->width / 6;
  for (uint32_t i = 0; i < 3; i++) {
    uint32_t range_x = p->width - box, range_y = p->height - box;
    uint64_t tx = frame_number * (5 + i * 3), ty = frame_number * (7 + i * 2) + i * 300;
    uint32_t x = (uint32_t)(tx % (2 * range_x)), y = (uint32_t)(ty % (2 * range_y));
    if (x > range_x) x = 2 * range_x - x;
    if (y > range_y) y = 2 * range_y - y;
    uint8_t rgb[3] = {(uint8_t)(200 - i * 60), (uint8_t)(80 + i * 70), (uint8_t)(40 + i * 90)};
    fill_rect(p, pixels, stride, x, y, box, box, rgb);
  }

  cp_stamp stamp = {(uint32_t)frame_number, capture_time_ns};
  uint8_t bits[128];
  cp_stamp_bits(&stamp, bits);
  uint32_t block = cp_stamp_block(p->width);
  static const uint8_t black[3] = {0, 0, 0}, white[3] = {255, 255, 255};
  for (uint32_t i = 0; i < 128; i++)
    fill_rect(p, pixels, stride, (i % CP_STAMP_COLUMNS) * block, (i / CP_STAMP_COLUMNS) * block, block, block,
              bits[i] ? white : black);
}
