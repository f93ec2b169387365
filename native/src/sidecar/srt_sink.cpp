#include "srt_sink.h"
#include "srt_log.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <srt/access_control.h>
#include <srt/srt.h>

#include <algorithm>
#include <chrono>

namespace cloudphone {
namespace {

constexpr int kSendTimeoutMs = 200;

bool set_option(int socket, SRT_SOCKOPT option, const void* value, int size) {
  return srt_setsockflag(socket, option, value, size) != SRT_ERROR;
}

std::string address_text(const sockaddr_storage& address) {
  char host[INET6_ADDRSTRLEN] = "";
  char port[8] = "";
  getnameinfo(reinterpret_cast<const sockaddr*>(&address), sizeof address, host, sizeof host, port, sizeof port,
              NI_NUMERICHOST | NI_NUMERICSERV);
  return std::string(host) + ":" + port;
}

}  // namespace

SrtSink::~SrtSink() { stop(); }

NativeError SrtSink::start(const SrtSettings& settings, EventFn on_event, std::function<void()> request_keyframe) {
  if (!settings.listener && settings.host.empty()) return error("ConfigError", "SRT caller mode needs a host");
  if (settings.port == 0) return error("ConfigError", "SRT needs a port");
  // A listener is reachable by whoever can reach the pod; without a passphrase anyone could take the stream.
  if (settings.listener && settings.passphrase.empty())
    return error("ConfigError", "SRT listener mode needs a passphrase");
  if (!settings.passphrase.empty() && (settings.passphrase.size() < 10 || settings.passphrase.size() > 79))
    return error("ConfigError", "SRT passphrase must be 10 to 79 characters");
  if (settings.key_length != 16 && settings.key_length != 24 && settings.key_length != 32)
    return error("ConfigError", "SRT key length must be 16, 24 or 32");
  if (settings.listener && (settings.max_receivers < 1 || settings.max_receivers > 16))
    return error("ConfigError", "SRT maxReceivers must be 1 to 16");
  static std::once_flag started;
  std::call_once(started, [] {
    install_srt_log_handler();
    srt_startup();
  });
  settings_ = settings;
  on_event_ = std::move(on_event);
  request_keyframe_ = std::move(request_keyframe);
  running_ = true;
  thread_ = std::thread([this] { settings_.listener ? run_listener() : run_caller(); });
  return {};
}

void SrtSink::stop() {
  if (!running_.exchange(false)) return;
  {
    std::lock_guard<std::mutex> lock(receivers_mutex_);
    for (auto& served : receivers_) served.connection->stop();
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SrtSink::push(const uint8_t* data, std::size_t size, int64_t pts_90khz, bool keyframe) {
  std::lock_guard<std::mutex> lock(receivers_mutex_);
  for (auto& served : receivers_) served.connection->push(data, size, pts_90khz, keyframe);
}

void SrtSink::sleep_interruptibly(int milliseconds) {
  std::unique_lock<std::mutex> lock(sleep_mutex_);
  wake_.wait_for(lock, std::chrono::milliseconds(milliseconds), [this] { return !running_.load(); });
}

// A socket with the stream's options; the listener's accepted sockets inherit them.
int SrtSink::configured_socket(std::string* why) {
  int s = srt_create_socket();
  if (s == SRT_INVALID_SOCK) {
    *why = srt_getlasterror_str();
    return -1;
  }
  sockets_created_++;
  SRT_TRANSTYPE live = SRTT_LIVE;
  int latency = static_cast<int>(settings_.latency_ms);
  int connect_timeout = 1000;
  int payload = kSrtPayloadSize;
  int key_length = static_cast<int>(settings_.key_length);
  int send_timeout = kSendTimeoutMs;
  bool ok = set_option(s, SRTO_TRANSTYPE, &live, sizeof live) && set_option(s, SRTO_LATENCY, &latency, sizeof latency) &&
            set_option(s, SRTO_CONNTIMEO, &connect_timeout, sizeof connect_timeout) &&
            set_option(s, SRTO_PAYLOADSIZE, &payload, sizeof payload) &&
            set_option(s, SRTO_SNDTIMEO, &send_timeout, sizeof send_timeout);
  if (ok && !settings_.passphrase.empty()) {
    ok = set_option(s, SRTO_PBKEYLEN, &key_length, sizeof key_length) &&
         set_option(s, SRTO_PASSPHRASE, settings_.passphrase.data(), static_cast<int>(settings_.passphrase.size()));
  }
  if (ok && !settings_.stream_id.empty() && !settings_.listener)
    ok = set_option(s, SRTO_STREAMID, settings_.stream_id.data(), static_cast<int>(settings_.stream_id.size()));
  if (!ok) {
    *why = srt_getlasterror_str();
    srt_close(s);
    return -1;
  }
  return s;
}

bool SrtSink::connect_out(int* out, std::string* why) {
  int s = configured_socket(why);
  if (s < 0) return false;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* resolved = nullptr;
  std::string port = std::to_string(settings_.port);
  int rc = getaddrinfo(settings_.host.c_str(), port.c_str(), &hints, &resolved);
  if (rc != 0 || !resolved) {
    *why = "cannot resolve " + settings_.host + ": " + gai_strerror(rc);
    srt_close(s);
    return false;
  }
  rc = srt_connect(s, resolved->ai_addr, static_cast<int>(resolved->ai_addrlen));
  freeaddrinfo(resolved);
  if (rc == SRT_ERROR) {
    int reason = srt_getrejectreason(s);
    *why = srt_getlasterror_str();
    if (reason != SRT_REJ_UNKNOWN) *why += std::string(" (") + srt_rejectreason_str(reason) + ")";
    srt_close(s);
    return false;
  }
  *out = s;
  return true;
}

void SrtSink::run_caller() {
  pthread_setname_np(pthread_self(), "cp-srt");
  int backoff_ms = 250;
  std::string last_failure;
  while (running_) {
    int s = -1;
    std::string why;
    if (!connect_out(&s, &why)) {
      if (why != last_failure && on_event_) on_event_("error", "SrtError", why);
      last_failure = why;
      sleep_interruptibly(backoff_ms);
      backoff_ms = std::min(backoff_ms * 2, 5000);
      continue;
    }
    backoff_ms = 250;
    last_failure.clear();
    serve_here(std::make_unique<SrtConnection>(s, settings_.host, request_keyframe_));
  }
}

// Caller mode: the one connection is served on the sink's thread, and leaves the list when it ends.
void SrtSink::serve_here(std::unique_ptr<SrtConnection> connection) {
  SrtConnection* current = connection.get();
  {
    std::lock_guard<std::mutex> lock(receivers_mutex_);
    receivers_.push_back(Served{std::move(connection), std::thread()});
  }
  connects_++;
  live_++;
  if (on_event_) on_event_("connected", "", "");
  std::string lost = current->serve(running_);
  live_--;
  if (running_ && on_event_) on_event_("disconnected", "SrtError", lost);
  std::lock_guard<std::mutex> lock(receivers_mutex_);
  totals_.add_counters(current->stats());
  receivers_.clear();
}

// Called by libsrt in the handshake of each new receiver: refusing here tells the receiver why (overload),
// instead of accepting and hanging up.
int SrtSink::on_handshake(void* opaque, int socket, int, const sockaddr*, const char*) {
  auto* self = static_cast<SrtSink*>(opaque);
  if (self->live_.load() < self->settings_.max_receivers) return 0;
  self->refused_++;
  srt_setrejectreason(socket, SRT_REJX_OVERLOAD);
  return -1;
}

bool SrtSink::open_listener(std::string* why) {
  int s = configured_socket(why);
  if (s < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(settings_.port);
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  if (srt_listen_callback(s, &SrtSink::on_handshake, this) == SRT_ERROR ||
      srt_bind(s, reinterpret_cast<sockaddr*>(&address), sizeof address) == SRT_ERROR ||
      srt_listen(s, static_cast<int>(settings_.max_receivers)) == SRT_ERROR) {
    *why = srt_getlasterror_str();
    srt_close(s);
    return false;
  }
  int poller = srt_epoll_create();
  int events = SRT_EPOLL_IN;
  if (poller < 0 || srt_epoll_add_usock(poller, s, &events) == SRT_ERROR) {
    *why = srt_getlasterror_str();
    if (poller >= 0) srt_epoll_release(poller);
    srt_close(s);
    return false;
  }
  listen_socket_ = s;
  poller_ = poller;
  return true;
}

void SrtSink::accept_receiver() {
  sockaddr_storage peer{};
  int peer_length = sizeof peer;
  int accepted = srt_accept(listen_socket_, reinterpret_cast<sockaddr*>(&peer), &peer_length);
  if (accepted == SRT_INVALID_SOCK) {
    if (on_event_) on_event_("error", "SrtError", srt_getlasterror_str());
    return;
  }
  std::string name = address_text(peer);
  std::lock_guard<std::mutex> lock(receivers_mutex_);
  if (live_.load() >= settings_.max_receivers) {
    // Two handshakes raced past the check in on_handshake: the later one goes.
    refused_++;
    srt_close(accepted);
    return;
  }
  auto connection = std::make_unique<SrtConnection>(accepted, name, request_keyframe_);
  SrtConnection* raw = connection.get();
  live_++;
  connects_++;
  if (on_event_) on_event_("connected", "", name);  // before the thread can say it left
  receivers_.push_back(Served{std::move(connection), std::thread([this, raw] {
                                pthread_setname_np(pthread_self(), "cp-srt-rx");
                                std::string lost = raw->serve(running_);
                                live_--;
                                if (running_ && on_event_) on_event_("disconnected", "SrtError", raw->peer() + ": " + lost);
                              })});
}

// Joins the threads of receivers that have left (or, at the end, of all of them). A receiver that has left has
// its final counters, and they move to the totals in the same locked step that takes it off the list, so the
// sums stats() reports never go backwards.
void SrtSink::reap(bool all) {
  std::vector<Served> gone;
  {
    std::lock_guard<std::mutex> lock(receivers_mutex_);
    for (auto it = receivers_.begin(); it != receivers_.end();) {
      if (all) it->connection->stop();
      if (all || it->connection->finished()) {
        if (!all) totals_.add_counters(it->connection->stats());
        gone.push_back(std::move(*it));
        it = receivers_.erase(it);
      } else {
        ++it;
      }
    }
  }
  // At the end nobody reads the totals any more: the receivers just stopped are joined, not counted.
  for (auto& served : gone) {
    if (served.thread.joinable()) served.thread.join();
  }
}

void SrtSink::run_listener() {
  pthread_setname_np(pthread_self(), "cp-srt");
  int backoff_ms = 250;
  std::string last_failure;
  while (running_ && listen_socket_ < 0) {
    std::string why;
    if (open_listener(&why)) break;
    if (why != last_failure && on_event_) on_event_("error", "SrtError", why);
    last_failure = why;
    sleep_interruptibly(backoff_ms);
    backoff_ms = std::min(backoff_ms * 2, 5000);
  }
  while (running_) {
    SRTSOCKET ready[1];
    int ready_count = 1;
    int n = srt_epoll_wait(poller_, ready, &ready_count, nullptr, nullptr, 200, nullptr, nullptr, nullptr, nullptr);
    if (n > 0 && running_) accept_receiver();
    reap(false);
  }
  reap(true);
  if (poller_ >= 0) srt_epoll_release(poller_);
  if (listen_socket_ >= 0) srt_close(listen_socket_);
  poller_ = listen_socket_ = -1;
}

SrtStats SrtSink::stats() const {
  SrtStats out;
  out.connects = connects_;
  out.refused = refused_;
  out.sockets_created = sockets_created_;
  std::lock_guard<std::mutex> lock(receivers_mutex_);
  SrtConnectionStats& link = out.link;
  link = totals_;
  bool first = true;
  for (const auto& served : receivers_) {
    const SrtConnectionStats s = served.connection->stats();
    link.add_counters(s);
    if (served.connection->finished()) continue;
    out.receivers++;
    link.rtt_ms = std::max(link.rtt_ms, s.rtt_ms);
    link.send_buffer_ms = std::max(link.send_buffer_ms, s.send_buffer_ms);
    link.bandwidth_mbps = first ? s.bandwidth_mbps : std::min(link.bandwidth_mbps, s.bandwidth_mbps);
    link.send_rate_mbps = first ? s.send_rate_mbps : std::min(link.send_rate_mbps, s.send_rate_mbps);
    first = false;
  }
  return out;
}

}  // namespace cloudphone
