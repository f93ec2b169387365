#include "segment_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "mp4_fragments.h"
#include "wall_clock.h"

namespace cloudphone {
namespace {

constexpr const char* kFinished = ".mp4";
constexpr const char* kPart = ".mp4.part";

bool digits(const std::string& text, std::size_t at, std::size_t count) {
  if (at + count > text.size()) return false;
  for (std::size_t i = at; i < at + count; i++)
    if (text[i] < '0' || text[i] > '9') return false;
  return true;
}

// The length of the <start> part of a segment's name (20261207T212856.123Z, then -N when two segments started
// in the same millisecond), or 0 when the name is not a segment's.
std::size_t start_length(const std::string& name) {
  if (!digits(name, 0, 8) || name.size() < 20 || name[8] != 'T' || !digits(name, 9, 6) || name[15] != '.' ||
      !digits(name, 16, 3) || name[19] != 'Z')
    return 0;
  std::size_t end = 20;
  if (end < name.size() && name[end] == '-') {
    std::size_t first = ++end;
    while (end < name.size() && end - first < 6 && name[end] >= '0' && name[end] <= '9') end++;
    if (end == first) return 0;
  }
  return end;
}

bool ends_with(const std::string& name, std::size_t at, const char* suffix) {
  return name.compare(at, std::string::npos, suffix) == 0;
}

int64_t modified_ms(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
}

}  // namespace

SegmentStore::~SegmentStore() { close(); }

void SegmentStore::close() {
  if (dir_fd_ >= 0) ::close(dir_fd_);
  dir_fd_ = -1;
  segments_.clear();
  stored_bytes_ = 0;
}

bool SegmentStore::open(const std::string& directory, AdoptedSegments* adopted, std::string* why) {
  close();
  dir_fd_ = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) {
    *why = "cannot open the recording directory " + directory + ": " + std::strerror(errno);
    return false;
  }
  int listing = ::dup(dir_fd_);
  DIR* dir = listing >= 0 ? ::fdopendir(listing) : nullptr;
  if (!dir) {
    if (listing >= 0) ::close(listing);
    *why = "cannot list the recording directory " + directory + ": " + std::strerror(errno);
    return false;
  }
  std::vector<std::string> finished, parts;
  while (struct dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    std::size_t start = start_length(name);
    if (start == 0) continue;
    if (ends_with(name, start, kFinished)) finished.push_back(name);
    if (ends_with(name, start, kPart)) parts.push_back(name);
  }
  ::closedir(dir);

  // A part file is a segment an earlier run was writing when it died: keep what of it plays.
  for (const std::string& part : parts) {
    int fd = ::openat(dir_fd_, part.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      if (fd >= 0) ::close(fd);
      continue;
    }
    uint64_t whole = complete_fragments_length(static_cast<uint64_t>(st.st_size), [fd](uint64_t at, uint8_t* out, uint64_t n) {
      return ::pread(fd, out, n, static_cast<off_t>(at)) == static_cast<ssize_t>(n);
    });
    std::string name = part.substr(0, part.size() - std::strlen(kPart)) + kFinished;
    if (whole > 0 && ::ftruncate(fd, static_cast<off_t>(whole)) == 0 &&
        ::renameat(dir_fd_, part.c_str(), dir_fd_, name.c_str()) == 0) {
      finished.push_back(name);
      adopted->recovered++;
    } else if (::unlinkat(dir_fd_, part.c_str(), 0) == 0) {
      adopted->discarded++;
    }
    ::close(fd);
  }

  std::sort(finished.begin(), finished.end());
  for (const std::string& name : finished) {
    struct stat st;
    if (::fstatat(dir_fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
    segments_.push_back({name, static_cast<uint64_t>(st.st_size), modified_ms(st)});
    stored_bytes_ += static_cast<uint64_t>(st.st_size);
  }
  return true;
}

int SegmentStore::create(int64_t unix_ms, std::string* why) {
  std::string start = utc_text(unix_ms, true);
  for (int attempt = 0; attempt < 100; attempt++) {
    std::string stem = attempt == 0 ? start : start + "-" + std::to_string(attempt);
    // A finished segment of that name (the clock went back) must not be overwritten either.
    if (::faccessat(dir_fd_, (stem + kFinished).c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0) continue;
    std::string part = stem + kPart;
    int fd = ::openat(dir_fd_, part.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd >= 0) {
      part_name_ = part;
      return fd;
    }
    if (errno != EEXIST) {
      int failed = errno;
      *why = "cannot create a segment: " + std::string(std::strerror(failed));
      errno = failed;  // the caller tells a full volume by it
      return -1;
    }
  }
  *why = "cannot create a segment: 100 names for " + start + " taken";
  return -1;
}

std::string SegmentStore::finish(int fd, uint64_t length, int64_t unix_ms, std::string* why) {
  std::string part = part_name_;
  part_name_.clear();
  bool cut = ::ftruncate(fd, static_cast<off_t>(length)) == 0;
  if (!cut) *why = "cannot end a segment: " + std::string(std::strerror(errno));
  ::close(fd);
  if (!cut || length == 0) {
    ::unlinkat(dir_fd_, part.c_str(), 0);
    return {};
  }
  std::string name = part.substr(0, part.size() - std::strlen(kPart)) + kFinished;
  if (::renameat(dir_fd_, part.c_str(), dir_fd_, name.c_str()) != 0) {
    *why = "cannot end a segment: " + std::string(std::strerror(errno));
    ::unlinkat(dir_fd_, part.c_str(), 0);
    return {};
  }
  segments_.push_back({name, length, unix_ms});
  stored_bytes_ += length;
  return name;
}

bool SegmentStore::remove_oldest() {
  if (segments_.empty()) return false;
  const StoredSegment& oldest = segments_.front();
  // Gone already (someone cleaned up by hand) counts as removed.
  if (::unlinkat(dir_fd_, oldest.name.c_str(), 0) != 0 && errno != ENOENT) return false;
  stored_bytes_ -= std::min(stored_bytes_, oldest.bytes);
  segments_.pop_front();
  return true;
}

std::size_t SegmentStore::remove_oldest_beyond(uint64_t max_bytes) {
  std::size_t removed = 0;
  while (stored_bytes_ > max_bytes && remove_oldest()) removed++;
  return removed;
}

std::size_t SegmentStore::remove_ended_before(int64_t unix_ms) {
  std::size_t removed = 0;
  while (!segments_.empty() && segments_.front().ended_unix_ms < unix_ms && remove_oldest()) removed++;
  return removed;
}

uint64_t SegmentStore::free_bytes() const {
  struct statvfs fs;
  if (dir_fd_ < 0 || ::fstatvfs(dir_fd_, &fs) != 0) return 0;
  return static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
}

}  // namespace cloudphone
