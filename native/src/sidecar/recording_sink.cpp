#include "recording_sink.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "avcc.h"
#include "muxer_packet.h"
#include "wall_clock.h"

extern "C" {
#include <libavformat/avformat.h>
}

namespace cloudphone {
namespace {

// What a fragment adds besides its pictures (moof, mdat header, sample table), generously.
constexpr uint64_t kFragmentOverhead = 16 * 1024;
// The muxer's write buffer, flushed to the file at the end of every fragment.
constexpr int kWriteBuffer = 64 * 1024;
constexpr std::chrono::milliseconds kFirstRetry{5000}, kLongestRetry{60000};
constexpr int64_t kTicksPerSecond = 90000;

// Why a write failed, in words: the same for the same failure, so that it is reported once.
std::string failure_reason(int code) {
  if (code == ENOSPC || code == EDQUOT) return std::string("the recording volume is full: ") + std::strerror(code);
  return code ? std::string("cannot write a segment: ") + std::strerror(code) : "the MP4 muxer failed";
}

}  // namespace

RecordingSink::~RecordingSink() { stop(); }

NativeError RecordingSink::start(const RecordingSettings& settings, EventFn on_event,
                                 std::function<void()> request_keyframe) {
  if (settings.directory.empty()) return error("ConfigError", "recording needs a directory");
  if (settings.segment_seconds < 1 || settings.segment_seconds > 3600)
    return error("ConfigError", "recording segments must last 1 to 3600 seconds");
  if (settings.max_bytes < 1024 * 1024) return error("ConfigError", "recording needs at least 1 MiB to keep");
  settings_ = settings;
  on_event_ = std::move(on_event);
  request_keyframe_ = request_keyframe;
  ring_ = std::make_unique<AccessUnitRing>(std::move(request_keyframe), avcc_max_size(256 * 1024));
  ring_->close();  // nothing queues until the directory is open
  writing_.data.reserve(avcc_max_size(256 * 1024));
  packet_ = av_packet_alloc();
  running_ = true;
  thread_ = std::thread([this] { run(); });
  return {};
}

void RecordingSink::stop() {
  if (!running_.exchange(false)) return;
  ring_->close();
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  av_packet_free(&packet_);
}

void RecordingSink::push(const EncodedUnit& unit) {
  if (!ring_) return;
  if (!recording_) {
    dropped_++;
    return;
  }
  push_as_avcc(ring_.get(), unit);
}

RecordingStats RecordingSink::stats() const {
  RecordingStats out;
  out.recording = recording_;
  out.segments = segments_;
  out.segments_removed = removed_;
  out.access_units_written = written_;
  out.access_units_dropped = dropped_ + (ring_ ? ring_->dropped() : 0);
  out.bytes_written = bytes_written_;
  out.bytes_stored = bytes_stored_;
  out.failures = failures_;
  return out;
}

void RecordingSink::sleep_interruptibly(std::chrono::milliseconds delay) {
  std::unique_lock<std::mutex> lock(sleep_mutex_);
  wake_.wait_for(lock, delay, [this] { return !running_.load(); });
}

void RecordingSink::publish_stored_bytes() { bytes_stored_ = store_.stored_bytes() + file_bytes_ + pending_bytes_; }

void RecordingSink::run() {
  pthread_setname_np(pthread_self(), "cp-record");
  std::chrono::milliseconds retry = kFirstRetry;
  std::string last_failure;  // reported, and not over until a fragment is written again
  // Said once per reason: the same failure again is not news.
  auto stopped_because = [&](const std::string& why) {
    if (why != last_failure && on_event_) on_event_("stopped", why);
    last_failure = why;
    sleep_interruptibly(retry);
    retry = std::min(retry * 2, kLongestRetry);
  };
  auto next_age_check = std::chrono::steady_clock::now();
  while (running_) {
    std::string why;
    if (stopped_) {
      if (!resume(&why)) {
        if (settings_.max_age_seconds > 0 && store_.is_open()) apply_age_limit();
        stopped_because(why);
        continue;
      }
      stopped_ = false;
      recording_ = true;
      ring_->open();
    }
    AccessUnitRing::Take taken = ring_->take(&writing_, std::chrono::milliseconds(200));
    if (taken == AccessUnitRing::Take::closed || !running_) break;
    if (settings_.max_age_seconds > 0 && std::chrono::steady_clock::now() >= next_age_check) {
      apply_age_limit();
      next_age_check = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    }
    if (taken == AccessUnitRing::Take::timeout) continue;
    if (!record(writing_, &why)) {
      fail();
      stopped_because(why);
    } else if (!last_failure.empty() && whole_bytes_ > header_bytes_) {
      // A fragment reached the disk: recording works again.
      last_failure.clear();
      retry = kFirstRetry;
      if (on_event_) on_event_("resumed", "");
    }
  }
  end_segment(true);
  recording_ = false;
  store_.close();
}

bool RecordingSink::resume(std::string* why) {
  if (!store_.is_open()) {
    AdoptedSegments adopted;
    if (!store_.open(settings_.directory, &adopted, why)) return false;
    publish_stored_bytes();
    if ((adopted.recovered > 0 || adopted.discarded > 0) && on_event_)
      on_event_("adopted", "kept " + std::to_string(adopted.recovered) +
                               " unfinished segment(s) up to their last whole fragment; removed " +
                               std::to_string(adopted.discarded) + " that had none");
  }
  // After a full volume: go on once there is room for a few fragments again (someone made room, or grew it).
  if (write_errno_ == ENOSPC || write_errno_ == EDQUOT) {
    uint64_t free = store_.free_bytes();
    if (free < 4 * (kFragmentOverhead + 1024 * 1024)) {
      *why = failure_reason(write_errno_);  // as when it stopped: not news
      return false;
    }
  }
  write_errno_ = 0;
  return true;
}

bool RecordingSink::record(const QueuedAccessUnit& unit, std::string* why) {
  if (muxer_) {
    int64_t age = unit.pts - first_pts_;
    bool due = age >= int64_t{settings_.segment_seconds} * kTicksPerSecond;
    bool new_surface = unit.keyframe && avc_decoder_configuration(unit.data.data(), unit.size, &candidate_) &&
                       candidate_ != configuration_;
    // A segment ends at a keyframe, so the next one starts with one; when it is due, ask for one now rather
    // than wait for the encoder's next. A new surface needs a new header, so a new segment too.
    if ((due && unit.keyframe) || new_surface) {
      end_segment(true);
    } else if (due && !keyframe_asked_) {
      keyframe_asked_ = true;
      if (request_keyframe_) request_keyframe_();
    }
  }
  if (!muxer_) {
    if (!unit.keyframe) {
      dropped_++;  // waiting for a keyframe to begin a segment with
      return true;
    }
    if (!begin_segment(unit, why)) return false;
  }
  make_room(file_bytes_ + pending_bytes_ + unit.size + kFragmentOverhead);
  if (!muxer_) {  // the segment alone outgrew what may be kept: it ended; begin anew at the next keyframe
    dropped_++;
    keyframe_asked_ = true;
    if (request_keyframe_) request_keyframe_();
    return true;
  }
  int64_t pts = std::max(last_pts_ + 1, unit.pts - first_pts_);
  // A picture lasts until the next, unknown yet: the last interval is the best guess (the muxer needs one for a
  // fragment's last picture).
  int64_t duration = last_pts_ >= 0 ? pts - last_pts_ : kTicksPerSecond / 30;
  last_pts_ = pts;
  point_packet_at(packet_, unit, pts);
  packet_->duration = duration;
  uint64_t before = file_bytes_;
  int rc = av_write_frame(muxer_, packet_);
  if (rc < 0 || write_errno_ != 0) {
    *why = failure_reason(write_errno_);
    return false;
  }
  // The muxer writes a fragment to the file when the next one begins, in whole boxes.
  if (file_bytes_ != before) {
    whole_bytes_ = file_bytes_;
    pending_bytes_ = 0;
  }
  pending_bytes_ += unit.size;
  written_++;
  publish_stored_bytes();
  return true;
}

void RecordingSink::make_room(uint64_t needed) {
  uint64_t keep = settings_.max_bytes > needed ? settings_.max_bytes - needed : 0;
  removed_ += store_.remove_oldest_beyond(keep);
  if (store_.stored_bytes() + needed > settings_.max_bytes && muxer_) {
    // Only the segment being written is left, and it alone would pass the limit: end it here (it is the first
    // to go when the next one needs room).
    end_segment(true);
  }
  publish_stored_bytes();
}

void RecordingSink::apply_age_limit() {
  removed_ += store_.remove_ended_before(unix_ms_now() - int64_t{settings_.max_age_seconds} * 1000);
  publish_stored_bytes();
}

int RecordingSink::write_to_file(void* opaque, uint8_t* data, int size) {
  auto* self = static_cast<RecordingSink*>(opaque);
  int left = size;
  while (left > 0) {
    ssize_t n = ::write(self->fd_, data + (size - left), static_cast<std::size_t>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      self->write_errno_ = n < 0 ? errno : ENOSPC;
      return AVERROR(self->write_errno_);
    }
    left -= static_cast<int>(n);
    self->file_bytes_ += static_cast<uint64_t>(n);
    self->bytes_written_ += static_cast<uint64_t>(n);
  }
  return size;
}

bool RecordingSink::begin_segment(const QueuedAccessUnit& keyframe, std::string* why) {
  if (!avc_decoder_configuration(keyframe.data.data(), keyframe.size, &configuration_)) {
    dropped_++;
    return true;  // a keyframe without parameter sets cannot begin a segment: wait for the next
  }
  int64_t started = unix_ms_now();
  fd_ = store_.create(started, why);
  if (fd_ < 0) {
    write_errno_ = errno;
    if (write_errno_ == ENOSPC || write_errno_ == EDQUOT) *why = failure_reason(write_errno_);
    return false;
  }
  file_bytes_ = whole_bytes_ = header_bytes_ = pending_bytes_ = 0;
  auto* buffer = static_cast<uint8_t*>(av_malloc(kWriteBuffer));
  io_ = buffer ? avio_alloc_context(buffer, kWriteBuffer, 1, this, nullptr, &RecordingSink::write_to_file, nullptr)
               : nullptr;
  if (!io_) av_free(buffer);
  if (!io_ || avformat_alloc_output_context2(&muxer_, nullptr, "mp4", nullptr) < 0 || !muxer_) {
    *why = "cannot start the MP4 muxer";
    end_segment(false);
    return false;
  }
  if (!add_avcc_stream(muxer_, configuration_, keyframe.width, keyframe.height, AVRational{1, kTicksPerSecond})) {
    *why = "cannot start the MP4 muxer";
    end_segment(false);
    return false;
  }
  muxer_->pb = io_;
  muxer_->flags |= AVFMT_FLAG_FLUSH_PACKETS;
  av_dict_set(&muxer_->metadata, "creation_time", utc_text(started, false).c_str(), 0);
  AVDictionary* options = nullptr;
  // The header (with no samples) first, then a fragment at each keyframe and at least every second: a file cut
  // short plays up to its last whole fragment, and each fragment's times are its own (default_base_moof).
  av_dict_set(&options, "movflags", "empty_moov+frag_keyframe+default_base_moof", 0);
  av_dict_set(&options, "frag_duration", "1000000", 0);
  av_dict_set(&options, "video_track_timescale", "90000", 0);
  int rc = avformat_write_header(muxer_, &options);
  av_dict_free(&options);
  if (rc < 0 || write_errno_ != 0) {
    *why = failure_reason(write_errno_);
    end_segment(false);
    return false;
  }
  whole_bytes_ = header_bytes_ = file_bytes_;
  first_pts_ = keyframe.pts;
  last_pts_ = -1;
  keyframe_asked_ = false;
  return true;
}

void RecordingSink::end_segment(bool clean) {
  if (fd_ < 0) return;
  if (muxer_) {
    if (clean && write_errno_ == 0 && last_pts_ >= 0) {
      av_write_trailer(muxer_);  // the last fragment
      if (write_errno_ == 0) whole_bytes_ = file_bytes_;
    }
    muxer_->pb = nullptr;
    avformat_free_context(muxer_);
    muxer_ = nullptr;
  }
  if (io_) {
    av_freep(&io_->buffer);
    avio_context_free(&io_);
  }
  // Whatever a failed write left after the last whole fragment is cut off; a segment with no picture goes.
  std::string why;
  std::string name = store_.finish(fd_, whole_bytes_ > header_bytes_ ? whole_bytes_ : 0, unix_ms_now(), &why);
  fd_ = -1;
  file_bytes_ = whole_bytes_ = header_bytes_ = pending_bytes_ = 0;
  last_pts_ = -1;
  if (!name.empty()) {
    segments_++;
    if (on_event_) on_event_("segment", name);
  } else if (!why.empty() && on_event_) {
    on_event_("lost", why);  // it could not be cut back or renamed: gone
  }
  publish_stored_bytes();
}

void RecordingSink::fail() {
  failures_++;
  end_segment(false);
  stopped_ = true;
  recording_ = false;
  ring_->close();
}

}  // namespace cloudphone
