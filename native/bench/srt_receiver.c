/*
 * cloudphone-srt-receiver: the benchmark's receiver, the same for every pipeline. An SRT listener takes
 * MPEG-TS, reassembles each video PES (one access unit per PES, as libavformat's and GStreamer's muxers
 * write them), hands it straight to libavcodec's H.264 decoder (low delay: no frame threads, no parser),
 * and reads the stamp from each decoded picture. Prints one JSON line per picture, as
 * cloudphone-stamp-reader does: {"index","frame","captureNs","latencyMs"} (frame null when unreadable).
 *
 * Why not the ffmpeg CLI: its H.264 parser holds every access unit until the next one begins, and the CLI
 * adds about one more frame of its own, so it would measure itself. Here a PES is decoded the moment its
 * last byte arrives: at once when the sender wrote the PES length, at the next PES start when it did not.
 *
 *   cloudphone-srt-receiver --port 9000 [--latency 20]
 */
#define _POSIX_C_SOURCE 200809L
#include <libavcodec/avcodec.h>
#include <netinet/in.h>
#include <srt/srt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src/stamp/stamp.h"

typedef struct pes {
  uint8_t *data;
  size_t length, capacity, expected; /* expected: ES bytes the header announced, 0 when unbounded */
  int active, corrupt;
} pes;

typedef struct receiver {
  AVCodecContext *decoder;
  AVPacket *packet;
  AVFrame *frame;
  pes pes;
  int video_pid, continuity;
  uint64_t index, broken;
} receiver;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void report(receiver *r, const AVFrame *frame) {
  cp_stamp stamp;
  int64_t arrived = now_ns();
  if (cp_stamp_read_luma(frame->data[0], (uint32_t)frame->linesize[0], (uint32_t)frame->width,
                         (uint32_t)frame->height, &stamp))
    printf("{\"index\":%llu,\"frame\":%u,\"captureNs\":%lld,\"latencyMs\":%.3f}\n", (unsigned long long)r->index,
           stamp.frame_number, (long long)stamp.capture_time_ns, (double)(arrived - stamp.capture_time_ns) / 1e6);
  else
    printf("{\"index\":%llu,\"frame\":null}\n", (unsigned long long)r->index);
  fflush(stdout);
  r->index++;
}

static void decode(receiver *r, uint8_t *data, size_t length) {
  r->packet->data = data;
  r->packet->size = (int)length;
  if (avcodec_send_packet(r->decoder, r->packet) < 0) return;
  while (avcodec_receive_frame(r->decoder, r->frame) == 0) report(r, r->frame);
}

static void finish_pes(receiver *r) {
  pes *p = &r->pes;
  if (p->active && !p->corrupt && p->length) decode(r, p->data, p->length);
  if (p->active && p->corrupt) r->broken++;
  p->active = 0;
  p->length = 0;
}

static void append(pes *p, const uint8_t *bytes, size_t length) {
  if (p->length + length > p->capacity) {
    size_t capacity = (p->length + length) * 2;
    uint8_t *grown = realloc(p->data, capacity + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!grown) {
      p->corrupt = 1;
      return;
    }
    p->data = grown;
    p->capacity = capacity;
  }
  memcpy(p->data + p->length, bytes, length);
  p->length += length;
  memset(p->data + p->length, 0, AV_INPUT_BUFFER_PADDING_SIZE);
}

static void ts_packet(receiver *r, const uint8_t *ts) {
  if (ts[0] != 0x47) return;
  int start = ts[1] & 0x40, pid = ((ts[1] & 0x1f) << 8) | ts[2], control = (ts[3] >> 4) & 3, counter = ts[3] & 15;
  size_t offset = 4;
  if (control == 2 || control == 0) return; /* no payload */
  if (control == 3) offset += 1 + (size_t)ts[4];
  if (offset >= 188) return;
  const uint8_t *payload = ts + offset;
  size_t length = 188 - offset;
  if (start && length >= 9 && payload[0] == 0 && payload[1] == 0 && payload[2] == 1 && (payload[3] & 0xf0) == 0xe0) {
    if (r->video_pid < 0) r->video_pid = pid;
  }
  if (pid != r->video_pid) return;
  if (r->pes.active && counter != ((r->continuity + 1) & 15)) r->pes.corrupt = 1;
  r->continuity = counter;
  if (start) {
    finish_pes(r); /* an unbounded PES ends where the next begins */
    size_t header = 9 + (size_t)payload[8];
    unsigned pes_length = ((unsigned)payload[4] << 8) | payload[5];
    if (header > length) return;
    r->pes.active = 1;
    r->pes.corrupt = 0;
    r->pes.expected = pes_length ? pes_length - (header - 6) : 0;
    payload += header;
    length -= header;
  }
  if (!r->pes.active) return;
  append(&r->pes, payload, length);
  if (r->pes.expected && r->pes.length >= r->pes.expected) {
    r->pes.length = r->pes.expected;
    finish_pes(r); /* the PES said how long it is: decode now, not at the next one */
  }
}

static int open_decoder(receiver *r) {
  const AVCodec *codec = avcodec_find_decoder(AV_CODEC_ID_H264);
  r->decoder = codec ? avcodec_alloc_context3(codec) : NULL;
  if (!r->decoder) return -1;
  r->decoder->flags |= AV_CODEC_FLAG_LOW_DELAY;
  r->decoder->thread_type = FF_THREAD_SLICE;
  r->packet = av_packet_alloc();
  r->frame = av_frame_alloc();
  return avcodec_open2(r->decoder, codec, NULL) < 0 || !r->packet || !r->frame ? -1 : 0;
}

int main(int argc, char **argv) {
  int port = 0, latency = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--latency")) latency = atoi(argv[i + 1]);
  }
  if (port <= 0 || port > 65535 || latency < 0) {
    fprintf(stderr, "usage: cloudphone-srt-receiver --port P [--latency MS]\n");
    return 2;
  }
  /* LOG_CRIT: on loopback libsrt logs "invalid RTT estimate 0" as an error several times a second. */
  srt_setloglevel(2 /* LOG_CRIT */);
  srt_startup();
  SRTSOCKET listener = srt_create_socket();
  srt_setsockflag(listener, SRTO_LATENCY, &latency, sizeof latency);
  struct sockaddr_in address = {0};
  address.sin_family = AF_INET;
  address.sin_port = htons((uint16_t)port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (srt_bind(listener, (struct sockaddr *)&address, sizeof address) == SRT_ERROR || srt_listen(listener, 1) == SRT_ERROR) {
    fprintf(stderr, "cloudphone-srt-receiver: %s\n", srt_getlasterror_str());
    return 1;
  }
  receiver r = {0};
  r.video_pid = -1;
  if (open_decoder(&r) != 0) {
    fprintf(stderr, "cloudphone-srt-receiver: cannot open the H.264 decoder\n");
    return 1;
  }
  char message[1500];
  for (;;) {
    SRTSOCKET s = srt_accept(listener, NULL, NULL);
    if (s == SRT_INVALID_SOCK) break;
    for (;;) {
      int n = srt_recvmsg(s, message, sizeof message);
      if (n <= 0) break;
      for (int at = 0; at + 188 <= n; at += 188) ts_packet(&r, (const uint8_t *)message + at);
    }
    srt_close(s);
    finish_pes(&r);
    r.video_pid = -1;
    avcodec_flush_buffers(r.decoder);
  }
  srt_close(listener);
  srt_cleanup();
  return 0;
}
