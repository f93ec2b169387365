// Input from every control viewer to the one phone. It keeps what each viewer holds down (fingers and keys),
// so that a viewer that leaves, drops or is revoked lets go of all of it on the phone; gives each viewer's
// fingers their own phone pointer ids, so two viewers never move one finger; and queues what the phone's
// socket does not take at once, in order, to be sent again later. The queue is bounded without ever losing a
// press or a release: Moves (and scrolls) waiting are merged when the queue is long, new presses are refused
// when it is full, and room is kept for every release that can still come.
//
// Not thread-safe: the pipeline guards it with its input mutex. Allocates nothing after construction.
#pragma once

#include <cstddef>
#include <cstdint>

#include "control_message.h"
#include "flatbuffers/flatbuffers.h"

namespace cloudphone {

struct InputCounters {
  uint64_t sent = 0;
  uint64_t merged = 0;    // Moves and scrolls folded into one still waiting
  uint64_t deferred = 0;  // sends the phone's socket refused (full), tried again later
  uint64_t released = 0;  // Ups, Cancels and key-ups the sidecar made for a viewer that let go of nothing
};

class InputRouter {
 public:
  static constexpr std::size_t kPhonePointers = 10;  // pointer ids 0..9, as input.fbs says
  static constexpr std::size_t kHeldKeysMax = 32;
  // Presses, moves, text and scrolls that may wait at once; past this they are refused.
  static constexpr std::size_t kStartsMax = 64;
  // Every release waiting matches a press waiting or a hold made before: this many can never overflow.
  static constexpr std::size_t kQueueMax = 2 * kStartsMax + kPhonePointers + kHeldKeysMax;
  // With this many waiting, a new Move replaces the last one of its finger instead of queueing behind it.
  static constexpr std::size_t kMergeAfter = 4;

  InputRouter();

  // Takes one event from viewer (non-zero); nullptr when accepted, else why it was refused.
  const char* route(uint32_t viewer, const InputEvent& event);
  // Everything the viewer holds goes up: a Cancel for each finger, a key-up for each key.
  void release(uint32_t viewer);
  // A new phone: it holds nothing and has been sent nothing.
  void reset();
  // Sends what waits, in order, until the socket refuses one; returns how many still wait.
  std::size_t flush(int fd);
  std::size_t waiting() const { return count_; }
  const InputCounters& counters() const { return counters_; }

 private:
  struct Finger {
    uint32_t viewer = 0;  // 0: free
    uint8_t viewer_pointer = 0;
    float x = 0, y = 0;
  };
  struct Key {
    uint32_t viewer = 0;
    uint32_t keycode = 0;
  };
  struct Waiting {
    InputEvent event;  // text points into bytes
    bool release = false;
    char bytes[kInputTextMax];
  };

  int finger_of(uint32_t viewer, uint8_t viewer_pointer) const;
  int key_of(uint32_t viewer, uint32_t keycode) const;
  const char* touch(uint32_t viewer, InputEvent event);
  const char* key(uint32_t viewer, const InputEvent& event);
  // Queues an event; starts (not releases) are refused past kStartsMax.
  const char* enqueue(const InputEvent& event, bool release);
  // A Move of this phone finger (or a scroll) that waits last for it, merged into; true when it was.
  bool merge(const InputEvent& event);
  std::size_t encode(const InputEvent& event);

  Finger fingers_[kPhonePointers];
  Key keys_[kHeldKeysMax];
  Waiting queue_[kQueueMax];
  std::size_t head_ = 0, count_ = 0, starts_ = 0;
  InputCounters counters_;
  flatbuffers::FlatBufferBuilder builder_;
};

}  // namespace cloudphone
