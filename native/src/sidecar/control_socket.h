// The sidecar's end of the control socket: a SOCK_SEQPACKET listener in the shared volume and the one
// producer connection it serves. A new connection replaces the old one (the phone's compositor restarted).
// Every received message is checked by the FlatBuffers Verifier before anything reads it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "native_error.h"

namespace cloudphone {

constexpr std::size_t kControlMessageMax = 65536;

class ControlListener {
 public:
  ~ControlListener();
  // Binds path, replacing a stale socket left by an earlier sidecar (never any other kind of file).
  NativeError listen(const std::string& path);
  int fd() const { return fd_; }
  // Accepts one pending connection, non-blocking; -1 when none. *uid and *pid are the connecting process's
  // (SO_PEERCRED, as the kernel recorded them at connect: the peer cannot choose them).
  int accept_connection(uint32_t* uid, int32_t* pid);
  void close();

 private:
  int fd_ = -1;
  std::string path_;
};

struct ReceivedMessage {
  std::size_t length = 0;
  // A descriptor passed with the message (SCM_RIGHTS), or -1. The receiver owns it.
  int fd = -1;
  bool truncated = false;
};

// Reads one message without blocking. Returns 1 with a message, 0 when none is waiting, -1 when the peer
// closed or the connection failed. Extra descriptors beyond the first are closed at once.
int receive_message(int fd, uint8_t* buffer, std::size_t capacity, ReceivedMessage* message);

// Sends one message without blocking; false when it could not be sent whole.
bool send_message(int fd, const uint8_t* data, std::size_t length);

enum class SendResult { Sent, WouldBlock, Failed };
// As send_message, telling a full socket (try again when it polls writable) from a failed connection.
SendResult send_message_or_wait(int fd, const uint8_t* data, std::size_t length);

}  // namespace cloudphone
