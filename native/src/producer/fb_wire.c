#include "fb_wire.h"

#include <string.h>

/* FlatBuffers is little-endian on the wire; so are every target Android and this project run on. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "FlatBuffers wire format is little-endian");

void fbw_init(fbw *w, uint8_t *buf, size_t cap) {
  w->buf = buf;
  w->cap = cap;
  w->len = 0;
  w->overflow = 0;
}

static size_t fbw_reserve(fbw *w, size_t size) {
  size_t at = w->len;
  if (w->overflow || size > w->cap - w->len) {
    w->overflow = 1;
    return at;
  }
  memset(w->buf + at, 0, size);
  w->len += size;
  return at;
}

static void fbw_pad_to(fbw *w, size_t align) {
  size_t pad = (align - (w->len & (align - 1))) & (align - 1);
  fbw_reserve(w, pad);
}

static void fbw_put(fbw *w, size_t at, const void *bytes, size_t size) {
  if (!w->overflow && at + size <= w->len) memcpy(w->buf + at, bytes, size);
}

size_t fbw_begin_message(fbw *w) {
  size_t root = fbw_reserve(w, 4);
  size_t id = fbw_reserve(w, 4);
  fbw_put(w, id, "CPCT", 4);
  return root;
}

void fbw_patch_offset(fbw *w, size_t at, size_t target) {
  uint32_t offset = (uint32_t)(target - at);
  fbw_put(w, at, &offset, 4);
}

size_t fbw_table(fbw *w, fbw_field *fields, int count) {
  uint16_t entries = 0;
  size_t max_align = 4;
  for (int i = 0; i < count; i++) {
    if (fields[i].id + 1 > entries) entries = (uint16_t)(fields[i].id + 1);
    if (fields[i].align > max_align) max_align = fields[i].align;
  }
  uint16_t vtable_size = (uint16_t)(4 + 2 * entries);
  fbw_pad_to(w, 2);
  size_t vtable = fbw_reserve(w, vtable_size);

  /* The table starts where its soffset is 4-aligned and, after it, the widest field can be aligned. */
  fbw_pad_to(w, 4);
  size_t table = fbw_reserve(w, 4);
  int32_t soffset = (int32_t)(table - vtable);
  fbw_put(w, table, &soffset, 4);

  /* Widest fields first packs the table without holes between them. */
  for (size_t align = max_align; align >= 1; align /= 2) {
    for (int i = 0; i < count; i++) {
      if (fields[i].align != align) continue;
      fbw_pad_to(w, align);
      size_t at = fbw_reserve(w, fields[i].size);
      if (!fields[i].is_offset) fbw_put(w, at, fields[i].value, fields[i].size);
      fields[i].position = at;
      uint16_t field_offset = (uint16_t)(at - table);
      fbw_put(w, vtable + 4 + 2 * (size_t)fields[i].id, &field_offset, 2);
    }
  }
  uint16_t table_size = (uint16_t)(w->len - table);
  fbw_put(w, vtable, &vtable_size, 2);
  fbw_put(w, vtable + 2, &table_size, 2);
  return table;
}

size_t fbw_vector_u8(fbw *w, const uint8_t *bytes, size_t length) {
  fbw_pad_to(w, 4);
  size_t at = fbw_reserve(w, 4 + length);
  uint32_t n = (uint32_t)length;
  fbw_put(w, at, &n, 4);
  if (length) fbw_put(w, at + 4, bytes, length);
  return at;
}

size_t fbw_string(fbw *w, const char *text, size_t length) {
  size_t at = fbw_vector_u8(w, (const uint8_t *)text, length);
  fbw_reserve(w, 1); /* the NUL FlatBuffers keeps after every string */
  return at;
}

static fbw_field fbw_scalar(uint16_t id, const void *value, uint8_t size) {
  fbw_field f;
  memset(&f, 0, sizeof f);
  f.id = id;
  f.size = size;
  f.align = size;
  memcpy(f.value, value, size);
  return f;
}

fbw_field fbw_u8(uint16_t id, uint8_t value) { return fbw_scalar(id, &value, 1); }
fbw_field fbw_u16(uint16_t id, uint16_t value) { return fbw_scalar(id, &value, 2); }
fbw_field fbw_u32(uint16_t id, uint32_t value) { return fbw_scalar(id, &value, 4); }
fbw_field fbw_u64(uint16_t id, uint64_t value) { return fbw_scalar(id, &value, 8); }

fbw_field fbw_rect(uint16_t id, uint32_t x, uint32_t y, uint32_t width, uint32_t height) {
  uint32_t rect[4] = {x, y, width, height};
  fbw_field f;
  memset(&f, 0, sizeof f);
  f.id = id;
  f.size = 16;
  f.align = 4;
  memcpy(f.value, rect, 16);
  return f;
}

fbw_field fbw_offset(uint16_t id) {
  fbw_field f;
  memset(&f, 0, sizeof f);
  f.id = id;
  f.size = 4;
  f.align = 4;
  f.is_offset = 1;
  return f;
}

size_t fbw_message(uint8_t *buf, size_t cap, enum cp_body body, fbw_field *fields, int count,
                   const char *const *texts, const size_t *text_lengths) {
  fbw w;
  fbw_init(&w, buf, cap);
  size_t root = fbw_begin_message(&w);
  fbw_field message_fields[2] = {fbw_u8(0, (uint8_t)body), fbw_offset(1)};
  size_t message = fbw_table(&w, message_fields, 2);
  fbw_patch_offset(&w, root, message);
  /* Offset fields without a value are left out of the table: absent, not an offset to nowhere. */
  fbw_field present[32];
  const char *present_texts[32];
  size_t present_lengths[32];
  int kept = 0, texts_kept = 0, text = 0;
  for (int i = 0; i < count && kept < 32; i++) {
    if (fields[i].is_offset) {
      const char *value = texts ? texts[text] : NULL;
      size_t length = text_lengths ? text_lengths[text] : 0;
      text++;
      if (!value) continue;
      present_texts[texts_kept] = value;
      present_lengths[texts_kept++] = length;
    }
    present[kept++] = fields[i];
  }
  size_t body_table = fbw_table(&w, present, kept);
  fbw_patch_offset(&w, message_fields[1].position, body_table);
  text = 0;
  for (int i = 0; i < kept; i++) {
    if (!present[i].is_offset) continue;
    fbw_patch_offset(&w, present[i].position, fbw_string(&w, present_texts[text], present_lengths[text]));
    text++;
  }
  /* Verifiers check the buffer's length is a multiple of the largest alignment used. */
  fbw_pad_to(&w, 8);
  return w.overflow ? 0 : w.len;
}

/* ---- reader ---- */

static uint32_t load_u32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static uint16_t load_u16(const uint8_t *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}

static int fbr_open_table(const uint8_t *buf, size_t len, size_t at, fbr_table *t) {
  if (at > len || len - at < 4 || (at & 3)) return 0;
  int32_t soffset;
  memcpy(&soffset, buf + at, 4);
  int64_t vtable = (int64_t)at - soffset;
  if (vtable < 0 || (size_t)vtable > len || len - (size_t)vtable < 4 || (vtable & 1)) return 0;
  uint16_t vtable_size = load_u16(buf + vtable);
  uint16_t table_size = load_u16(buf + vtable + 2);
  if (vtable_size < 4 || (vtable_size & 1) || len - (size_t)vtable < vtable_size) return 0;
  if (table_size < 4 || len - at < table_size) return 0;
  t->buf = buf;
  t->len = len;
  t->table = at;
  t->vtable = (size_t)vtable;
  t->vtable_size = vtable_size;
  t->table_size = table_size;
  t->malformed = 0;
  return 1;
}

/* Where field `id` lives, or 0 when absent (0 can never be a field: the soffset is there). */
static size_t fbr_field(fbr_table *t, uint16_t id, size_t size) {
  size_t entry = 4 + 2 * (size_t)id;
  if (entry + 2 > t->vtable_size) return 0;
  uint16_t offset = load_u16(t->buf + t->vtable + entry);
  if (offset == 0) return 0;
  if (offset < 4 || (size_t)offset + size > t->table_size || ((t->table + offset) & (size - 1))) {
    t->malformed = 1;
    return 0;
  }
  return t->table + offset;
}

uint8_t fbr_u8(fbr_table *t, uint16_t id, uint8_t fallback) {
  size_t at = fbr_field(t, id, 1);
  return at ? t->buf[at] : fallback;
}

uint16_t fbr_u16(fbr_table *t, uint16_t id, uint16_t fallback) {
  size_t at = fbr_field(t, id, 2);
  return at ? load_u16(t->buf + at) : fallback;
}

uint32_t fbr_u32(fbr_table *t, uint16_t id, uint32_t fallback) {
  size_t at = fbr_field(t, id, 4);
  return at ? load_u32(t->buf + at) : fallback;
}

float fbr_f32(fbr_table *t, uint16_t id, float fallback) {
  size_t at = fbr_field(t, id, 4);
  float v = fallback;
  if (at) memcpy(&v, t->buf + at, 4);
  return v;
}

static int fbr_follow(const uint8_t *buf, size_t len, size_t at, size_t *target) {
  uint32_t offset = load_u32(buf + at);
  if (offset == 0 || offset > len - at) return 0;
  *target = at + offset;
  return 1;
}

int fbr_string(fbr_table *t, uint16_t id, const char **text, size_t *length) {
  size_t at = fbr_field(t, id, 4);
  if (!at) return t->malformed ? -1 : 0;
  size_t string;
  /* Room for the length and at least the NUL terminator, before the subtraction below relies on it. */
  if (!fbr_follow(t->buf, t->len, at, &string) || (string & 3) || t->len - string < 5) return -1;
  uint32_t n = load_u32(t->buf + string);
  /* The bytes and the NUL terminator must fit. */
  if (n > t->len - string - 4 - 1 || t->buf[string + 4 + n] != 0) return -1;
  *text = (const char *)t->buf + string + 4;
  *length = n;
  return 1;
}

int fbr_message(const uint8_t *buf, size_t len, enum cp_body *body, fbr_table *table) {
  if (len < 8 || memcmp(buf + 4, "CPCT", 4) != 0) return 0;
  size_t root;
  if (!fbr_follow(buf, len, 0, &root)) return 0;
  fbr_table message;
  if (!fbr_open_table(buf, len, root, &message)) return 0;
  uint8_t type = fbr_u8(&message, 0, 0);
  size_t at = fbr_field(&message, 1, 4);
  if (message.malformed || !at || type == CP_BODY_NONE || type > CP_BODY_CLIPBOARD) return 0;
  size_t body_table;
  if (!fbr_follow(buf, len, at, &body_table) || !fbr_open_table(buf, len, body_table, table)) return 0;
  *body = (enum cp_body)type;
  return 1;
}
