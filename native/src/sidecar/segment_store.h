// The recording directory: the segments this sidecar wrote there, oldest first, and their sizes. A segment is
// written as <start>.mp4.part and renamed to <start>.mp4 when it ends, so a finished name is always a whole
// file; <start> is the wall-clock time of its first picture (20261207T212856.123Z), so names sort by time.
// Only files named so are ever counted or removed: anything else in the directory is left alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

namespace cloudphone {

struct StoredSegment {
  std::string name;  // the finished name, <start>.mp4
  uint64_t bytes = 0;
  int64_t ended_unix_ms = 0;
};

struct AdoptedSegments {
  std::size_t recovered = 0;  // segments a previous run left unfinished, kept up to their last whole fragment
  std::size_t discarded = 0;  // unfinished ones with no whole fragment, removed
};

class SegmentStore {
 public:
  ~SegmentStore();
  // Opens the directory and adopts what an earlier run left there. False, with why, if it cannot be read.
  bool open(const std::string& directory, AdoptedSegments* adopted, std::string* why);
  void close();
  bool is_open() const { return dir_fd_ >= 0; }

  // Creates the part file of a segment starting at unix_ms; returns its descriptor, or -1 with why.
  int create(int64_t unix_ms, std::string* why);
  // Ends the part file being written: cuts it to length, closes fd and gives it its finished name (a length of
  // 0 removes it instead). Returns the finished name, empty if removed or on failure (with why).
  std::string finish(int fd, uint64_t length, int64_t unix_ms, std::string* why);

  // Removes the oldest finished segments until those left hold at most max_bytes; returns how many it removed.
  std::size_t remove_oldest_beyond(uint64_t max_bytes);
  // Removes the finished segments that ended before unix_ms; returns how many.
  std::size_t remove_ended_before(int64_t unix_ms);

  uint64_t stored_bytes() const { return stored_bytes_; }
  std::size_t count() const { return segments_.size(); }
  // Bytes the file system can still give this process.
  uint64_t free_bytes() const;

 private:
  bool remove_oldest();

  int dir_fd_ = -1;
  std::deque<StoredSegment> segments_;
  uint64_t stored_bytes_ = 0;
  std::string part_name_;  // of the segment being written
};

}  // namespace cloudphone
