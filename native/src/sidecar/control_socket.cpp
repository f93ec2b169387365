#include "control_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace cloudphone {

ControlListener::~ControlListener() { close(); }

NativeError ControlListener::listen(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof address.sun_path) return error("ConfigError", "control socket path is too long: " + path);
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);

  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return error("ConfigError", path + " exists and is not a socket");
    ::unlink(path.c_str());
  }
  fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return error("SystemError", std::string("socket: ") + std::strerror(errno));
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    NativeError failure = error("SystemError", "cannot bind " + path + ": " + std::strerror(errno));
    close();
    return failure;
  }
  // Only the pod's own containers share the volume; group access lets a phone running as another uid in
  // the pod's fsGroup connect.
  ::chmod(path.c_str(), 0660);
  if (::listen(fd_, 4) != 0) {
    NativeError failure = error("SystemError", std::string("listen: ") + std::strerror(errno));
    close();
    return failure;
  }
  path_ = path;
  return {};
}

int ControlListener::accept_connection(uint32_t* uid, int32_t* pid) {
  if (fd_ < 0) return -1;
  int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return -1;
  ucred credentials{};
  socklen_t length = sizeof credentials;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) {
    ::close(fd);  // unknown peer: treated as refused, never as trusted
    return -1;
  }
  *uid = credentials.uid;
  *pid = credentials.pid;
  return fd;
}

void ControlListener::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!path_.empty()) ::unlink(path_.c_str());
  path_.clear();
}

int receive_message(int fd, uint8_t* buffer, std::size_t capacity, ReceivedMessage* message) {
  *message = ReceivedMessage{};
  iovec iov{buffer, capacity};
  union {
    cmsghdr align;
    char bytes[CMSG_SPACE(sizeof(int) * 4)];
  } control{};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.bytes;
  msg.msg_controllen = sizeof control.bytes;
  ssize_t n;
  do {
    n = ::recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
  if (n == 0) return -1;
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
    std::size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; i++) {
      int passed;
      std::memcpy(&passed, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
      if (message->fd < 0) message->fd = passed;
      else ::close(passed);
    }
  }
  message->length = static_cast<std::size_t>(n);
  message->truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
  return 1;
}

bool send_message(int fd, const uint8_t* data, std::size_t length) {
  return send_message_or_wait(fd, data, length) == SendResult::Sent;
}

SendResult send_message_or_wait(int fd, const uint8_t* data, std::size_t length) {
  ssize_t n;
  do {
    n = ::send(fd, data, length, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(length)) return SendResult::Sent;
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? SendResult::WouldBlock : SendResult::Failed;
}

}  // namespace cloudphone
