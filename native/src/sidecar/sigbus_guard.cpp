#include "sigbus_guard.h"

#include <signal.h>
#include <sys/mman.h>

#include <cstdint>
#include <mutex>

namespace cloudphone {
namespace {

struct GuardedRange {
  const void* base = nullptr;
  std::size_t length = 0;
  volatile sig_atomic_t faulted = 0;
};

// Touched by the guard's constructor before any guarded read, so the handler never allocates TLS.
thread_local GuardedRange current_range;
struct sigaction previous_action;

void on_sigbus(int signal, siginfo_t* info, void* context) {
  GuardedRange& range = current_range;
  auto address = reinterpret_cast<std::uintptr_t>(info->si_addr);
  auto base = reinterpret_cast<std::uintptr_t>(range.base);
  if (range.base && address >= base && address < base + range.length) {
    // MAP_FIXED over the faulting range: mmap is async-signal-safe in practice (a system call).
    if (mmap(const_cast<void*>(range.base), range.length, PROT_READ, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) !=
        MAP_FAILED) {
      range.faulted = 1;
      return;
    }
  }
  // Not ours: behave as if we had never been installed.
  sigaction(SIGBUS, &previous_action, nullptr);
  if (previous_action.sa_flags & SA_SIGINFO) {
    if (previous_action.sa_sigaction) previous_action.sa_sigaction(signal, info, context);
  } else if (previous_action.sa_handler != SIG_DFL && previous_action.sa_handler != SIG_IGN) {
    previous_action.sa_handler(signal);
  }
  // Returning re-executes the faulting access, now under the previous (usually default) disposition.
}

}  // namespace

void SigbusGuard::install() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    sigaction(SIGBUS, &action, &previous_action);
  });
}

SigbusGuard::SigbusGuard(const void* base, std::size_t length) {
  install();
  current_range.faulted = 0;
  current_range.length = length;
  current_range.base = base;
}

SigbusGuard::~SigbusGuard() {
  current_range.base = nullptr;
  current_range.length = 0;
}

bool SigbusGuard::faulted() const { return current_range.faulted != 0; }

}  // namespace cloudphone
