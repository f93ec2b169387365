/* A measurement tool, not part of the product: an LD_PRELOAD library that counts heap allocations per
 * thread name (the kernel's comm, which a thread inherits from the one that created it), and writes the
 * counts to the file named by CLOUDPHONE_ALLOC_REPORT every 200 ms as "name count" lines. The steady-state
 * check runs the sidecar under it and compares two reports taken some hundreds of frames apart.
 *
 * Usage: LD_PRELOAD=native/build/libcloudphone-alloc-counter.so CLOUDPHONE_ALLOC_REPORT=/tmp/a node ...
 * To find an allocation, CLOUDPHONE_ALLOC_TRACE=<thread name> also prints a backtrace of each one made on
 * that thread to stderr. CLOUDPHONE_ALLOC_EXCUSE=<symbol part> counts allocations on cp-* threads whose
 * backtrace passes through a function whose name contains it under "<thread>!" instead: a library's
 * one-time growth to its high-water mark (libsrt's send buffer) is told apart from per-frame work.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

#define BUCKETS 256

struct bucket {
  _Atomic int used;
  char name[16];
  _Atomic unsigned long count;
};

static struct bucket buckets[BUCKETS];
static _Atomic unsigned long unnamed;
static char trace_thread[16];
static char excuse[64];
static __thread int tracing;

/* True when the caller's stack passes through a function named like the excuse. dladdr does not allocate. */
static int excused(void) {
  if (!excuse[0] || tracing) return 0;
  tracing = 1; /* backtrace() may allocate the first time (it loads libgcc) */
  void *frames[12];
  int n = backtrace(frames, 12), found = 0;
  for (int i = 0; i < n && !found; i++) {
    Dl_info info;
    if (dladdr(frames[i], &info) && info.dli_sname && strstr(info.dli_sname, excuse)) found = 1;
  }
  tracing = 0;
  return found;
}

static void trace(const char *name) {
  if (!trace_thread[0] || tracing || strncmp(name, trace_thread, 16) != 0) return;
  tracing = 1; /* backtrace() may allocate the first time (it loads libgcc) */
  void *frames[24];
  int n = backtrace(frames, 24);
  write(2, "allocation:\n", 12);
  backtrace_symbols_fd(frames, n, 2);
  tracing = 0;
}

static void count_one(void) {
  char name[16] = {0};
  /* prctl does not allocate, so this is safe inside malloc, from any thread, at any time. */
  if (prctl(PR_GET_NAME, name) != 0) {
    atomic_fetch_add(&unnamed, 1);
    return;
  }
  trace(name);
  if (strncmp(name, "cp-", 3) == 0 && excused()) {
    size_t length = strnlen(name, 14);
    name[length] = '!';
    name[length + 1] = 0;
  }
  for (int i = 0; i < BUCKETS; i++) {
    struct bucket *b = &buckets[i];
    int used = atomic_load(&b->used);
    if (used == 2 && strncmp(b->name, name, 16) == 0) {
      atomic_fetch_add(&b->count, 1);
      return;
    }
    if (used == 0) {
      int expected = 0;
      if (atomic_compare_exchange_strong(&b->used, &expected, 1)) {
        memcpy(b->name, name, 16);
        atomic_fetch_add(&b->count, 1);
        atomic_store(&b->used, 2);
        return;
      }
    }
    while (atomic_load(&b->used) == 1) {
    }
    if (strncmp(b->name, name, 16) == 0) {
      atomic_fetch_add(&b->count, 1);
      return;
    }
  }
  atomic_fetch_add(&unnamed, 1);
}

void *malloc(size_t size) {
  count_one();
  return __libc_malloc(size);
}

void *calloc(size_t n, size_t size) {
  count_one();
  return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size) {
  count_one();
  return __libc_realloc(p, size);
}

void *memalign(size_t align, size_t size) {
  count_one();
  return __libc_memalign(align, size);
}

void *aligned_alloc(size_t align, size_t size) {
  count_one();
  return __libc_memalign(align, size);
}

int posix_memalign(void **out, size_t align, size_t size) {
  count_one();
  void *p = __libc_memalign(align, size);
  if (!p) return 12; /* ENOMEM */
  *out = p;
  return 0;
}

static void *report_loop(void *path) {
  prctl(PR_SET_NAME, "alloc-report");
  char text[BUCKETS * 40 + 64], temp[4096];
  snprintf(temp, sizeof temp, "%s.tmp", (const char *)path);
  for (;;) {
    size_t n = 0;
    for (int i = 0; i < BUCKETS && atomic_load(&buckets[i].used) == 2; i++)
      n += (size_t)snprintf(text + n, sizeof text - n, "%.16s %lu\n", buckets[i].name, atomic_load(&buckets[i].count));
    n += (size_t)snprintf(text + n, sizeof text - n, "(unnamed) %lu\n", atomic_load(&unnamed));
    int fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ssize_t written = write(fd, text, n);
      close(fd);
      if (written == (ssize_t)n) rename(temp, (const char *)path);
    }
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  return NULL;
}

__attribute__((constructor)) static void start_reporting(void) {
  const char *traced = getenv("CLOUDPHONE_ALLOC_TRACE");
  if (traced) strncpy(trace_thread, traced, sizeof trace_thread - 1);
  const char *excuse_env = getenv("CLOUDPHONE_ALLOC_EXCUSE");
  if (excuse_env) strncpy(excuse, excuse_env, sizeof excuse - 1);
  const char *path = getenv("CLOUDPHONE_ALLOC_REPORT");
  if (!path || !*path) return;
  pthread_t thread;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_create(&thread, &attr, report_loop, strdup(path));
}
