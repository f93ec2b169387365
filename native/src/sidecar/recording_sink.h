// Records the encoded stream into a directory as fragmented MP4 segments, from the same encode as the other
// outputs. Each segment starts at a keyframe with its own header, so it plays on its own, and the segments
// follow one another, so they concatenate into one file. It writes on its own thread (cp-record), fed by an
// AccessUnitRing in AVCC form like the RTMP push, so a slow disk drops pictures (and restarts at a keyframe)
// instead of holding up the encoder; the muxer neither converts nor copies a picture.
//
// Fragments of at most a second: a sidecar killed mid-segment loses at most its last second, as the next start
// keeps the unfinished segment up to its last whole fragment (segment_store.h). Retention removes the oldest
// segments before a write would take the directory past max_bytes, and those older than max_age. A write that
// fails (the volume full, or not writable) stops recording with a reason, keeps what was written, and tries
// again later; it never stops the stream.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "access_unit_ring.h"
#include "encoded_unit.h"
#include "native_error.h"
#include "segment_store.h"

struct AVFormatContext;
struct AVIOContext;
struct AVPacket;

namespace cloudphone {

struct RecordingSettings {
  std::string directory;
  uint32_t segment_seconds = 60;
  uint64_t max_bytes = 0;        // the segments in the directory hold at most this much
  uint32_t max_age_seconds = 0;  // segments that ended longer ago are removed; 0: kept until max_bytes
};

struct RecordingStats {
  bool recording = false;  // writing, or waiting for a keyframe to; false while stopped by a failure
  uint64_t segments = 0;   // segments finished
  uint64_t segments_removed = 0;  // by retention
  uint64_t access_units_written = 0;
  uint64_t access_units_dropped = 0;  // the disk fell behind, or recording stopped
  uint64_t bytes_written = 0;
  uint64_t bytes_stored = 0;  // the directory's segments, the one being written included
  uint64_t failures = 0;      // times recording stopped on a failed write
};

class RecordingSink {
 public:
  // kind "segment" (detail: the finished segment's name), "lost" (detail: why a segment could not be finished),
  // "stopped" (detail: why), "resumed", "adopted" (detail: what became of the unfinished segments an earlier run
  // left).
  using EventFn = std::function<void(const char* kind, const std::string& detail)>;

  ~RecordingSink();
  NativeError start(const RecordingSettings& settings, EventFn on_event, std::function<void()> request_keyframe);
  // Finishes the segment being written, so that it is whole.
  void stop();
  // Encoder thread: converts the Annex-B access unit into the ring; never blocks on the disk.
  void push(const EncodedUnit& unit);
  RecordingStats stats() const;

 private:
  void run();
  bool resume(std::string* why);
  // Writes one picture, beginning or ending segments as needed; false with why when a write failed.
  bool record(const QueuedAccessUnit& unit, std::string* why);
  bool begin_segment(const QueuedAccessUnit& keyframe, std::string* why);
  // clean: the muxer writes the last fragment; otherwise the file is cut to its last whole fragment.
  void end_segment(bool clean);
  // Removes the oldest segments so that needed more bytes stay within max_bytes; when only the segment being
  // written is left and it alone would pass, ends it.
  void make_room(uint64_t needed);
  void apply_age_limit();
  // A write failed: keeps what is whole of the segment and stops until resume() finds it may go on.
  void fail();
  void sleep_interruptibly(std::chrono::milliseconds delay);
  static int write_to_file(void* opaque, uint8_t* data, int size);
  void publish_stored_bytes();

  RecordingSettings settings_;
  EventFn on_event_;
  std::function<void()> request_keyframe_;
  std::unique_ptr<AccessUnitRing> ring_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::mutex sleep_mutex_;
  std::condition_variable wake_;

  // Touched only by the sink's thread.
  SegmentStore store_;
  QueuedAccessUnit writing_;
  std::vector<uint8_t> configuration_, candidate_;  // AVCDecoderConfigurationRecords: the segment's, a keyframe's
  int fd_ = -1;
  AVIOContext* io_ = nullptr;
  AVFormatContext* muxer_ = nullptr;
  AVPacket* packet_ = nullptr;
  uint64_t file_bytes_ = 0;   // on disk in the segment being written
  uint64_t header_bytes_ = 0;  // of those, the header's (a segment with no fragment after it is removed)
  uint64_t whole_bytes_ = 0;   // of those, the ones that end a whole fragment
  uint64_t pending_bytes_ = 0;  // pictures the muxer holds for its next fragment
  int write_errno_ = 0;
  int64_t first_pts_ = 0, last_pts_ = -1;
  bool keyframe_asked_ = false;
  bool stopped_ = true;  // until the directory is open, and after a failed write

  std::atomic<bool> recording_{false};
  std::atomic<uint64_t> segments_{0}, removed_{0}, written_{0}, dropped_{0}, bytes_written_{0}, bytes_stored_{0},
      failures_{0};
};

}  // namespace cloudphone
