/*
 * The smallest FlatBuffers writer and reader that the C producer needs for schemas/fbs/control.fbs, so that
 * an HWC links nothing beyond libc. Debian has no C FlatBuffers runtime (flatcc), and the C++ one needs
 * libstdc++; the sidecar side uses the generated C++ code and its Verifier. Tests check every message this
 * writes with that Verifier, and every message this reads against bytes the official builders wrote.
 *
 * Writer: front to back, so every uoffset points forward as the format requires. Reader: every offset and
 * length is checked against the buffer before use, as the C++ Verifier does.
 */
#ifndef CLOUDPHONE_FB_WIRE_H
#define CLOUDPHONE_FB_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* Union tags of cloudphone.control.Body, in declaration order. */
enum cp_body {
  CP_BODY_NONE = 0,
  CP_BODY_HELLO = 1,
  CP_BODY_WELCOME = 2,
  CP_BODY_SURFACE = 3,
  CP_BODY_FRAME_READY = 4,
  CP_BODY_ENCODED_FRAME = 5,
  CP_BODY_KEYFRAME_REQUEST = 6,
  CP_BODY_GOODBYE = 7,
  CP_BODY_TOUCH = 8,
  CP_BODY_KEY = 9,
  CP_BODY_TEXT = 10,
  CP_BODY_SCROLL = 11,
  CP_BODY_ROTATE = 12,
  CP_BODY_CLIPBOARD = 13
};

typedef struct fbw {
  uint8_t *buf;
  size_t cap;
  size_t len;
  int overflow;
} fbw;

/* One field of a table being written: an inline scalar or struct, or (child >= 0) an offset to a string
 * or vector written later with fbw_string/fbw_bytes. */
typedef struct fbw_field {
  uint16_t id;
  uint8_t size;
  uint8_t align;
  uint8_t value[16];
  /* Filled by fbw_table for offset fields: where the uoffset lives, to patch once the child is written. */
  size_t position;
  int is_offset;
} fbw_field;

void fbw_init(fbw *w, uint8_t *buf, size_t cap);
/* Starts a Message: root offset and file identifier "CPCT"; returns where the root uoffset is to patch. */
size_t fbw_begin_message(fbw *w);
size_t fbw_table(fbw *w, fbw_field *fields, int count);
size_t fbw_string(fbw *w, const char *text, size_t length);
size_t fbw_vector_u8(fbw *w, const uint8_t *bytes, size_t length);
void fbw_patch_offset(fbw *w, size_t at, size_t target);

/* Field helpers. */
fbw_field fbw_u8(uint16_t id, uint8_t value);
fbw_field fbw_u16(uint16_t id, uint16_t value);
fbw_field fbw_u32(uint16_t id, uint32_t value);
fbw_field fbw_u64(uint16_t id, uint64_t value);
fbw_field fbw_rect(uint16_t id, uint32_t x, uint32_t y, uint32_t width, uint32_t height);
fbw_field fbw_offset(uint16_t id);

/* Writes Message{body_type, body: <table>} where the body table has the given fields; strings and vectors
 * named by offset fields are taken from texts[] in field order (NULL entries are skipped). Returns the
 * message length, or 0 when it did not fit. */
size_t fbw_message(uint8_t *buf, size_t cap, enum cp_body body, fbw_field *fields, int count,
                   const char *const *texts, const size_t *text_lengths);

typedef struct fbr_table {
  const uint8_t *buf;
  size_t len;
  size_t table;
  size_t vtable;
  uint16_t vtable_size;
  uint16_t table_size;
  /* Set when a field lies outside its table; the message must then be dropped. */
  int malformed;
} fbr_table;

/* Opens a Message with identifier "CPCT" and returns its body's type and table; 0 when malformed. */
int fbr_message(const uint8_t *buf, size_t len, enum cp_body *body, fbr_table *table);
uint8_t fbr_u8(fbr_table *t, uint16_t id, uint8_t fallback);
uint16_t fbr_u16(fbr_table *t, uint16_t id, uint16_t fallback);
uint32_t fbr_u32(fbr_table *t, uint16_t id, uint32_t fallback);
float fbr_f32(fbr_table *t, uint16_t id, float fallback);
/* A string field: 1 with *text and *length set (not NUL-terminated in the API), 0 absent, -1 malformed. */
int fbr_string(fbr_table *t, uint16_t id, const char **text, size_t *length);

#endif
