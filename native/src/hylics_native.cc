// Hylics native addon: the two things Node.js cannot do safely or fast enough on its own.
//  - openBeneath(dirFd, relPath, wantDir): open a file inside a share with openat2(RESOLVE_BENEATH |
//    RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS); only a regular file (or a directory when asked) comes back.
//  - sendfile(outFd, inFd, offset, count, jobId, stallMs): zero-copy file -> socket, driven by ONE dedicated I/O
//    thread with its own epoll (non-blocking sendfile chunks, EAGAIN -> wait for EPOLLOUT). Neither the event loop
//    nor the libuv thread pool is ever blocked by a slow client. Completion comes back through one
//    thread-safe function.
//  - TCP_REPAIR (socket offload, paper §4.2): tcpRepairDump freezes a connected TCP socket and reads its whole
//    state (sequence numbers, both queues' bytes, window, MSS, window scale, SACK, timestamps), tcpRepairRestore
//    builds a socket that carries on the same connection (optionally IP_TRANSPARENT, optionally in place of an
//    existing fd with dup3 so the owner's fd number stays valid, or on the same socket). The recipe is CRIU's libsoccr's.
//  - offloadTransfer: the host's part of a socket-offload handoff as one job on the sendfile thread (send the app's
//    head, if any, corked with the range; send the range, wait for the client's ACKs, attach the drop filter,
//    freeze and dump), one JS crossing per handoff.
//  - peerPidfd / takePeerSocket: the descriptor copy of sandbox guests (SO_PEERPIDFD, pidfd_getfd, the checks).
//  - recvWithFd / sendWithFd: one message with a file descriptor (SCM_RIGHTS), for apps handing a socket to the agent.
//  - nftSetElems(table, ops): add/delete elements of nftables sets of an `ip` table in ONE netlink batch (one
//    transaction), synchronously: the per-handoff steering changes of socket offload without an nft process
//    (the nft CLI spends 1-3 ms of CPU per command building its cache), on one netlink socket kept open (closing
//    one after a commit waits for an RCU grace period).
// Errors carry `code` = a Hylics registry code and `errno` = the errno name.
#include <napi.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/openat2.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

// An error naming its errno (`errno`: "ENOENT", ...); the registry code for it is chosen in JS from the one errno
// table (src/core/errors/errno.ts) by the kind of call. `code` is set only for a condition that is no errno.
Napi::Error MakeError(Napi::Env env, int err, const char* what, const char* code = nullptr) {
  Napi::Error e = Napi::Error::New(env, std::string(what) + ": " + strerror(err));
  if (code) e.Set("code", Napi::String::New(env, code));
  const char* name = strerrorname_np(err);
  e.Set("errno", Napi::String::New(env, name ? name : "EUNKNOWN"));
  return e;
}

long Openat2(int dirfd, const char* path, uint64_t flags) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd;
  do fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how); while (fd < 0 && errno == EINTR);
  return fd;
}

Napi::Object StatObject(Napi::Env env, int fd, const struct stat& st) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("fd", fd);
  o.Set("size", Napi::Number::New(env, static_cast<double>(st.st_size)));
  o.Set("mtimeMs", Napi::Number::New(env, st.st_mtim.tv_sec * 1e3 + st.st_mtim.tv_nsec / 1e6));
  o.Set("ino", Napi::Number::New(env, static_cast<double>(st.st_ino)));
  o.Set("dev", Napi::Number::New(env, static_cast<double>(st.st_dev)));
  o.Set("mode", Napi::Number::New(env, st.st_mode));
  return o;
}

// Two opens: first O_PATH (opens nothing: no FIFO wait, no device side effect) to check the type, then the real
// open, checked to be the same inode. A file swapped between the two is refused, never followed.
Napi::Value OpenBeneath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsString()) {
    Napi::TypeError::New(env, "openBeneath(dirFd: number, relPath: string, wantDir?: boolean)").ThrowAsJavaScriptException();
    return env.Null();
  }
  int dirfd = info[0].As<Napi::Number>().Int32Value();
  std::string rel = info[1].As<Napi::String>().Utf8Value();
  bool wantDir = info.Length() > 2 && info[2].ToBoolean().Value();
  if (rel.empty() || rel.find('\0') != std::string::npos) {
    MakeError(env, ENOENT, "openBeneath").ThrowAsJavaScriptException();
    return env.Null();
  }
  long pfd = Openat2(dirfd, rel.c_str(), O_PATH);
  if (pfd < 0) { MakeError(env, errno, "openat2").ThrowAsJavaScriptException(); return env.Null(); }
  struct stat st1;
  if (fstat(static_cast<int>(pfd), &st1) != 0) {
    int err = errno; close(static_cast<int>(pfd));
    MakeError(env, err, "fstat").ThrowAsJavaScriptException(); return env.Null();
  }
  close(static_cast<int>(pfd));
  bool typeOk = wantDir ? S_ISDIR(st1.st_mode) : S_ISREG(st1.st_mode);
  if (!typeOk) {
    MakeError(env, wantDir ? ENOTDIR : EINVAL, wantDir ? "not a directory" : "not a regular file",
              wantDir ? nullptr : "HYLICS_ERR_NOT_REGULAR_FILE").ThrowAsJavaScriptException();
    return env.Null();
  }
  long fd = Openat2(dirfd, rel.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | (wantDir ? O_DIRECTORY : 0));
  if (fd < 0) { MakeError(env, errno, "openat2").ThrowAsJavaScriptException(); return env.Null(); }
  struct stat st2;
  if (fstat(static_cast<int>(fd), &st2) != 0) {
    int err = errno; close(static_cast<int>(fd));
    MakeError(env, err, "fstat").ThrowAsJavaScriptException(); return env.Null();
  }
  if (st2.st_ino != st1.st_ino || st2.st_dev != st1.st_dev || (st2.st_mode & S_IFMT) != (st1.st_mode & S_IFMT)) {
    close(static_cast<int>(fd));
    MakeError(env, ESTALE, "file changed while opening", "HYLICS_ERR_NOT_REGULAR_FILE").ThrowAsJavaScriptException();
    return env.Null();
  }
  return StatObject(env, static_cast<int>(fd), st2);
}

// ---- sendfile engine -------------------------------------------------------------------------------------
struct CState;
// An offload transfer's drain and freeze (offloadTransfer, below): its fields are used on the I/O thread only.
struct Xfer {
  int64_t drainMax = -1;   // wait until nothing is unsent and at most this many bytes unacknowledged (-1: no wait)
  bool freeze = false;     // then attach the drop filter, freeze and dump
  int hushTos = 0;         // > 0: frozen, the socket's IP_TOS becomes this (its packets are dropped: HushOn)
  int64_t pollUs = 1000;   // drain condition checked this often
  std::string head;        // bytes sent before the range (the app's response headers), corked with its first bytes
  size_t headOff = 0;      // head bytes the socket took
  bool draining = false;
  int64_t drainStart = 0, drainEnd = 0, lastChange = 0;
  int lastOutq = -1;
  const char* outcome = nullptr;  // "ok", "closing", "gone", "aborted"
  bool filtered = false;
  CState* state = nullptr;        // the dump, when frozen
  int freezeErr = 0;
  const char* freezeWhat = nullptr;
  const char* freezeCode = nullptr;
  // The socket's open file description is another process's (the descriptor copy: pidfd_getfd): that process can clear
  // O_NONBLOCK at any moment, and sendfile(2) has no per-call flag, so a sendfile would block this one I/O thread
  // (every transfer of every guest) for as long as its client reads nothing. Such a range is sent with pread +
  // send(MSG_DONTWAIT) instead, which never blocks whatever the flags say (one copy more per byte).
  bool sharedOut = false;
  std::vector<char> buf;
  ~Xfer();
};

struct Job {
  uint64_t id;       // >= 1 (0 marks the wake-up eventfd in epoll)
  int out;          // dup of the caller's socket fd: the caller may close its own at any time
  int in;           // dup of the caller's file fd
  off_t offset;
  uint64_t remaining;
  uint64_t sent = 0;
  int err = 0;
  bool armed = false;
  int64_t stallMs;
  int64_t lastProgress;
  Xfer* xfer = nullptr;  // an offload transfer (offloadTransfer): drain and freeze after the send
  Napi::Promise::Deferred deferred;
  Job(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
  ~Job() { delete xfer; }
};

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void Deliver(Napi::Env env, Napi::Function, void*, Job* job);
// offload transfer jobs (defined with offloadTransfer below): after the send, on the I/O thread
bool XferAfterSend(Job* job);            // true: the job goes on (draining), false: finish it now
bool XferDraining(const Job* job);
void XferTick();                          // the drain poll timer fired
void XferDeliver(Napi::Env env, Job* job);
struct CState;
struct SavedTos;
Napi::Buffer<uint8_t> PackedState(Napi::Env env, const CState& st, const SavedTos* saved);  // tcpHandoffFreeze's form
constexpr uint64_t kDrainTimerId = UINT64_MAX;  // epoll data of the drain poll timer (job ids are JS numbers)
using Tsfn = Napi::TypedThreadSafeFunction<void, Job, Deliver>;

struct Engine {
  int ep = -1, wake = -1;
  std::mutex mu;
  std::deque<Job*> incoming;
  std::deque<uint64_t> aborts;
  std::unordered_map<uint64_t, Job*> active;  // I/O thread only
  std::deque<uint64_t> ready;                 // I/O thread only: jobs that may write more right now
  Tsfn tsfn;
  size_t pending = 0;                        // main thread only
  // bytes per sendfile call (HYLICS_SENDFILE_CHUNK): lighttpd's per-write limit; a job still loops until EAGAIN
  size_t chunk = 256u << 10;
  std::thread thread;
  int drainTimer = -1;                        // timerfd of the offload transfers' drain poll (I/O thread)
  std::deque<uint64_t> draining;              // I/O thread only: transfer jobs waiting for their drain condition
};
Engine* engine = nullptr;

// Close a duplicate of another process's socket off this thread: if that process closed its own fd meanwhile, ours is
// the last reference, and with SO_LINGER set (its choice) close(2) waits up to the linger time for the client.
void CloseShared(int fd) { std::thread([fd] { close(fd); }).detach(); }

void Finish(Job* job) {
  if (job->armed) epoll_ctl(engine->ep, EPOLL_CTL_DEL, job->out, nullptr);
  if (job->xfer && job->xfer->sharedOut) CloseShared(job->out); else close(job->out);
  close(job->in);
  engine->active.erase(job->id);
  engine->tsfn.NonBlockingCall(job);
}

// Wait for the socket to become writable: edge-triggered and registered once per job, so each "became writable" edge
// wakes us exactly once, and we then write until EAGAIN again; no re-arming syscall per wake-up. False: failed (err).
bool ArmOut(Job* job) {
  if (job->armed) return true;
  struct epoll_event ev;
  ev.events = EPOLLOUT | EPOLLET;
  ev.data.u64 = job->id;  // an id, not a pointer: a stale event must never touch a freed job
  if (epoll_ctl(engine->ep, EPOLL_CTL_ADD, job->out, &ev) != 0) { job->err = errno; return false; }
  job->armed = true;
  return true;
}

// An offload transfer's head (the app's response headers) before the range: with MSG_MORE while range bytes follow,
// so the kernel holds the partial segment and the first sendfile chunk fills it (head and body share packets).
// True: all of it is in the socket; false: wait for EPOLLOUT (armed) or failed (err set).
bool SendHead(Job* job) {
  Xfer* x = job->xfer;
  while (x->headOff < x->head.size()) {
    int flags = MSG_NOSIGNAL | MSG_DONTWAIT | (job->remaining > 0 ? MSG_MORE : 0);
    ssize_t n = send(job->out, x->head.data() + x->headOff, x->head.size() - x->headOff, flags);
    if (n > 0) { x->headOff += static_cast<size_t>(n); job->lastProgress = NowMs(); continue; }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) { ArmOut(job); return false; }
    job->err = n < 0 ? errno : EPIPE;
    return false;
  }
  return true;
}

// Xfer::sharedOut: up to `chunk` bytes of the range read at the job's offset and sent with MSG_DONTWAIT (never blocks,
// whatever the socket's flags); advances the offset by what the socket took. Returns as sendfile(2) does.
ssize_t SendCopied(Job* job, size_t chunk) {
  Xfer* x = job->xfer;
  if (x->buf.size() < chunk) x->buf.resize(chunk);
  ssize_t r;
  do r = pread(job->in, x->buf.data(), chunk, job->offset); while (r < 0 && errno == EINTR);
  if (r <= 0) return r;
  int flags = MSG_DONTWAIT | MSG_NOSIGNAL | (job->remaining > static_cast<uint64_t>(r) ? MSG_MORE : 0);
  ssize_t n = send(job->out, x->buf.data(), static_cast<size_t>(r), flags);
  if (n > 0) job->offset += n;
  return n;
}

// One chunk per turn: a job that could take more goes to the back of the ready queue, so concurrent transfers
// advance side by side (as lighttpd's per-connection write limit does); a full socket parks on EPOLLOUT.
void Progress(Job* job) {
  if (XferDraining(job)) return;  // an EPOLLOUT edge after its send: the drain poll decides
  if (job->xfer && !SendHead(job)) {
    if (job->err == 0) return;  // waits for EPOLLOUT
    Finish(job);
    return;
  }
  while (job->remaining > 0) {
    size_t chunk = job->remaining > engine->chunk ? engine->chunk : static_cast<size_t>(job->remaining);
    ssize_t n = job->xfer && job->xfer->sharedOut ? SendCopied(job, chunk) : sendfile(job->out, job->in, &job->offset, chunk);
    if (n > 0) {
      job->sent += n; job->remaining -= n; job->lastProgress = NowMs();
      if (job->remaining > 0) { engine->ready.push_back(job->id); return; }
      continue;
    }
    if (n == 0) { job->err = ENODATA; break; }  // the file shrank under us: stop short, the caller closes
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      if (!ArmOut(job)) break;
      return;
    }
    job->err = errno;
    break;
  }
  if (job->xfer && job->err == 0 && XferAfterSend(job)) return;
  Finish(job);
}

void Loop() {
  struct epoll_event evs[64];
  int64_t lastCheck = NowMs();
  for (;;) {
    int n = epoll_wait(engine->ep, evs, 64, engine->ready.empty() ? 1000 : 0);
    for (int i = 0; i < n; i++) {
      if (evs[i].data.u64 == kDrainTimerId) {
        XferTick();
      } else if (evs[i].data.u64 == 0) {
        uint64_t v;
        ssize_t r = read(engine->wake, &v, sizeof v);
        (void)r;
        std::deque<Job*> jobs;
        std::deque<uint64_t> aborts;
        {
          std::lock_guard<std::mutex> lock(engine->mu);
          jobs.swap(engine->incoming);
          aborts.swap(engine->aborts);
        }
        for (Job* j : jobs) { engine->active[j->id] = j; Progress(j); }
        for (uint64_t id : aborts) {
          auto it = engine->active.find(id);
          if (it != engine->active.end()) { it->second->err = ECANCELED; Finish(it->second); }
        }
      } else {
        auto it = engine->active.find(evs[i].data.u64);
        if (it != engine->active.end()) Progress(it->second);
      }
    }
    // one turn for each job that still had room (ids of finished jobs are skipped)
    for (size_t k = engine->ready.size(); k > 0; k--) {
      uint64_t id = engine->ready.front();
      engine->ready.pop_front();
      auto it = engine->active.find(id);
      if (it != engine->active.end()) Progress(it->second);
    }
    // a reader that stops reading must not pin a connection and a file forever
    int64_t now = NowMs();
    if (now - lastCheck < 1000) continue;
    lastCheck = now;
    std::deque<Job*> stalled;
    for (auto& kv : engine->active) if (!XferDraining(kv.second) && kv.second->stallMs > 0 && now - kv.second->lastProgress > kv.second->stallMs) stalled.push_back(kv.second);
    for (Job* j : stalled) { j->err = ETIMEDOUT; Finish(j); }
  }
}

void Deliver(Napi::Env env, Napi::Function, void*, Job* job) {
  if (env != nullptr) {
    if (job->xfer) {
      XferDeliver(env, job);
    } else if (job->err == 0) {
      job->deferred.Resolve(Napi::Number::New(env, static_cast<double>(job->sent)));
    } else {
      Napi::Error e = MakeError(env, job->err, "sendfile");
      e.Set("bytesSent", Napi::Number::New(env, static_cast<double>(job->sent)));
      job->deferred.Reject(e.Value());
    }
    if (--engine->pending == 0) engine->tsfn.Unref(env);
  }
  delete job;
}

bool EnsureEngine(Napi::Env env) {
  if (engine) return true;
  Engine* e = new Engine();
  e->ep = epoll_create1(EPOLL_CLOEXEC);
  e->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (e->ep < 0 || e->wake < 0) { MakeError(env, errno, "epoll").ThrowAsJavaScriptException(); return false; }
  struct epoll_event ev;
  ev.events = EPOLLIN;
  ev.data.u64 = 0;
  epoll_ctl(e->ep, EPOLL_CTL_ADD, e->wake, &ev);
  const char* ch = getenv("HYLICS_SENDFILE_CHUNK");
  if (ch && atol(ch) > 0) e->chunk = static_cast<size_t>(atol(ch));
  e->tsfn = Tsfn::New(env, "hylics-sendfile", 0, 1);
  e->tsfn.Unref(env);
  engine = e;
  e->thread = std::thread(Loop);
  e->thread.detach();  // lives as long as the process
  return true;
}

void Wake() {
  uint64_t one = 1;
  ssize_t r = write(engine->wake, &one, sizeof one);
  (void)r;
}

// A sendfile job from (outFd, inFd, offset, count, jobId, stallMs?): queued to the I/O thread; `xfer` (owned by the
// job from here) makes it an offload transfer.
Napi::Value StartJob(const Napi::CallbackInfo& info, Xfer* xfer);
Napi::Value Sendfile(const Napi::CallbackInfo& info) { return StartJob(info, nullptr); }
Napi::Value StartJob(const Napi::CallbackInfo& info, Xfer* xfer) {
  Napi::Env env = info.Env();
  std::unique_ptr<Xfer> owned(xfer);
  for (size_t i = 0; i < 5; i++) {
    if (!info[i].IsNumber()) {
      Napi::TypeError::New(env, "sendfile(outFd, inFd, offset, count, jobId, stallMs?)").ThrowAsJavaScriptException();
      return env.Null();
    }
  }
  if (!EnsureEngine(env)) return env.Null();
  double offset = info[2].As<Napi::Number>().DoubleValue();
  double count = info[3].As<Napi::Number>().DoubleValue();
  if (offset < 0 || count < 0) { MakeError(env, EINVAL, "sendfile").ThrowAsJavaScriptException(); return env.Null(); }
  int out = fcntl(info[0].As<Napi::Number>().Int32Value(), F_DUPFD_CLOEXEC, 3);
  if (out < 0) { MakeError(env, errno, "dup socket").ThrowAsJavaScriptException(); return env.Null(); }
  int in = fcntl(info[1].As<Napi::Number>().Int32Value(), F_DUPFD_CLOEXEC, 3);
  if (in < 0) { int err = errno; close(out); MakeError(env, err, "dup file").ThrowAsJavaScriptException(); return env.Null(); }
  // the socket must be non-blocking (libuv's already are); this only makes sure of it for other callers (not for
  // another process's socket: its flags are that process's, and its sends never rely on them: Xfer::sharedOut)
  int fl = fcntl(out, F_GETFL);
  if (fl >= 0 && !(fl & O_NONBLOCK) && !(owned && owned->sharedOut)) fcntl(out, F_SETFL, fl | O_NONBLOCK);
  Job* job = new Job(env);
  job->xfer = owned.release();
  double id = info[4].As<Napi::Number>().DoubleValue();
  job->id = id >= 1 ? static_cast<uint64_t>(id) : 1;
  job->out = out;
  job->in = in;
  job->offset = static_cast<off_t>(offset);
  job->remaining = static_cast<uint64_t>(count);
  job->stallMs = info.Length() > 5 && info[5].IsNumber() ? info[5].As<Napi::Number>().Int64Value() : 120000;
  job->lastProgress = NowMs();
  Napi::Promise promise = job->deferred.Promise();
  if (engine->pending++ == 0) engine->tsfn.Ref(env);
  {
    std::lock_guard<std::mutex> lock(engine->mu);
    engine->incoming.push_back(job);
  }
  Wake();
  return promise;
}

// One non-blocking sendfile on the calling (main) thread, at most maxBytes: returns what the socket took right
// now (0 when it is full). Bounded by maxBytes and the free socket buffer, so it never waits; the rest goes to
// the I/O thread. Saves two thread hops for bodies that fit the socket buffer.
Napi::Value SendfileNow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  for (size_t i = 0; i < 4; i++) {
    if (!info[i].IsNumber()) { Napi::TypeError::New(env, "sendfileNow(outFd, inFd, offset, maxBytes)").ThrowAsJavaScriptException(); return env.Null(); }
  }
  int out = info[0].As<Napi::Number>().Int32Value();
  int in = info[1].As<Napi::Number>().Int32Value();
  off_t offset = static_cast<off_t>(info[2].As<Napi::Number>().DoubleValue());
  size_t max = static_cast<size_t>(info[3].As<Napi::Number>().DoubleValue());
  int fl = fcntl(out, F_GETFL);
  if (fl < 0 || !(fl & O_NONBLOCK)) { MakeError(env, EINVAL, "sendfileNow needs a non-blocking socket").ThrowAsJavaScriptException(); return env.Null(); }
  ssize_t n;
  do n = sendfile(out, in, &offset, max); while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN) return Napi::Number::New(env, 0);
    MakeError(env, errno, "sendfile").ThrowAsJavaScriptException();
    return env.Null();
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

Napi::Value AbortSendfile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!engine || !info[0].IsNumber()) return env.Undefined();
  {
    std::lock_guard<std::mutex> lock(engine->mu);
    engine->aborts.push_back(static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue()));
  }
  Wake();
  return env.Undefined();
}

// ---- TCP_REPAIR ------------------------------------------------------------------------------------------
// Errors here name their errno; src/os/tcp-repair.ts maps them (EPERM: no CAP_NET_ADMIN in the owner user
// namespace of this network namespace -> HYLICS_ERR_TCP_REPAIR_DENIED).

constexpr int kRepairOn = 1;
constexpr size_t kMaxQueueBytes = 64u << 20;  // a queue above this is refused (socket buffers are far smaller)

std::string AddrString(const sockaddr_in& a) {
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
  return buf;
}

// Read one queue (TCP_REPAIR_QUEUE then TCP_QUEUE_SEQ, bytes by MSG_PEEK): the socket must be in repair mode.
bool DumpQueue(int fd, int q, uint32_t* seq, size_t len, std::string* bytes, int* err, const char** what) {
  if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof q) != 0) { *err = errno; *what = "TCP_REPAIR_QUEUE"; return false; }
  socklen_t sl = sizeof *seq;
  if (getsockopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, seq, &sl) != 0) { *err = errno; *what = "TCP_QUEUE_SEQ"; return false; }
  bytes->clear();
  if (len == 0) return true;
  if (len > kMaxQueueBytes) { *err = E2BIG; *what = "queue too large"; return false; }
  bytes->resize(len);
  ssize_t n = recv(fd, &(*bytes)[0], len, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) { *err = errno; *what = "recv(MSG_PEEK)"; return false; }
  if (static_cast<size_t>(n) != len) { *err = EIO; *what = "short MSG_PEEK"; return false; }
  return true;
}

// A dumped state in C form: what tcpRepairDump returns to JS (StateObject) and the offload transfer job dumps on the
// addon's thread.
struct CState {
  sockaddr_in local{}, peer{};
  uint32_t sndSeq = 0, rcvSeq = 0, ts = 0;
  int unsent = 0, mss = 0;
  std::string sendBytes, recvBytes;
  uint8_t options = 0, sndWscale = 0, rcvWscale = 0;
  struct tcp_repair_window win{};
};

// Put the socket into repair mode (it stays there: the caller closes it silently or turns repair off again) and read
// its state. Only an established IPv4 connection is accepted; on failure the socket is left as it was.
bool DumpState(int fd, CState* s, int* err, const char** what, const char** code) {
  *err = 0;
  socklen_t ll = sizeof s->local, pl = sizeof s->peer;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&s->local), &ll) != 0 || getpeername(fd, reinterpret_cast<sockaddr*>(&s->peer), &pl) != 0) {
    *err = errno; *what = "getsockname/getpeername"; return false;
  }
  if (s->local.sin_family != AF_INET) { *err = EAFNOSUPPORT; *what = "only IPv4 connections"; *code = "HYLICS_ERR_TCP_REPAIR_FAILED"; return false; }
  int on = kRepairOn;
  if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &on, sizeof on) != 0) { *err = errno; *what = "TCP_REPAIR"; return false; }
  struct tcp_info ti{};
  socklen_t tl = sizeof ti;
  int outq = 0, inq = 0;
  socklen_t il = sizeof(int);
  socklen_t wl = sizeof s->win;
  socklen_t tsl = sizeof s->ts;
  do {
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) != 0) { *err = errno; *what = "TCP_INFO"; break; }
    if (ti.tcpi_state != TCP_ESTABLISHED) { *err = ENOTCONN; *what = "connection not established"; break; }
    if (ioctl(fd, SIOCOUTQ, &outq) != 0) { *err = errno; *what = "SIOCOUTQ"; break; }
    if (ioctl(fd, SIOCOUTQNSD, &s->unsent) != 0) { *err = errno; *what = "SIOCOUTQNSD"; break; }
    if (ioctl(fd, SIOCINQ, &inq) != 0) { *err = errno; *what = "SIOCINQ"; break; }
    if (getsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &s->mss, &il) != 0) { *err = errno; *what = "TCP_MAXSEG"; break; }
    if (getsockopt(fd, IPPROTO_TCP, TCP_TIMESTAMP, &s->ts, &tsl) != 0) { *err = errno; *what = "TCP_TIMESTAMP"; break; }
    if (getsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &s->win, &wl) != 0) { *err = errno; *what = "TCP_REPAIR_WINDOW"; break; }
    if (!DumpQueue(fd, TCP_SEND_QUEUE, &s->sndSeq, static_cast<size_t>(outq), &s->sendBytes, err, what)) break;
    if (!DumpQueue(fd, TCP_RECV_QUEUE, &s->rcvSeq, static_cast<size_t>(inq), &s->recvBytes, err, what)) break;
  } while (false);
  if (*err != 0) {
    int off = 0, one = 1;  // leave the socket as it was (sk_reuse too): the caller falls back to a normal send
    setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &off, sizeof off);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    return false;
  }
  s->options = ti.tcpi_options;
  s->sndWscale = ti.tcpi_snd_wscale;
  s->rcvWscale = ti.tcpi_rcv_wscale;
  return true;
}

Napi::Object StateObject(Napi::Env env, const CState& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("localAddr", AddrString(s.local));
  o.Set("localPort", ntohs(s.local.sin_port));
  o.Set("remoteAddr", AddrString(s.peer));
  o.Set("remotePort", ntohs(s.peer.sin_port));
  o.Set("sendSeq", Napi::Number::New(env, s.sndSeq));  // seq after the last byte in the send queue
  o.Set("recvSeq", Napi::Number::New(env, s.rcvSeq));  // seq after the last byte in the receive queue
  o.Set("sendQueue", Napi::Buffer<char>::Copy(env, s.sendBytes.data(), s.sendBytes.size()));
  o.Set("unsentBytes", Napi::Number::New(env, s.unsent));  // tail of sendQueue never transmitted
  o.Set("recvQueue", Napi::Buffer<char>::Copy(env, s.recvBytes.data(), s.recvBytes.size()));
  o.Set("mss", Napi::Number::New(env, s.mss));
  o.Set("timestamp", Napi::Number::New(env, s.ts));
  o.Set("options", Napi::Number::New(env, s.options));
  o.Set("sndWscale", Napi::Number::New(env, s.sndWscale));
  o.Set("rcvWscale", Napi::Number::New(env, s.rcvWscale));
  Napi::Object w = Napi::Object::New(env);
  w.Set("sndWl1", Napi::Number::New(env, s.win.snd_wl1));
  w.Set("sndWnd", Napi::Number::New(env, s.win.snd_wnd));
  w.Set("maxWindow", Napi::Number::New(env, s.win.max_window));
  w.Set("rcvWnd", Napi::Number::New(env, s.win.rcv_wnd));
  w.Set("rcvWup", Napi::Number::New(env, s.win.rcv_wup));
  o.Set("window", w);
  return o;
}

// tcpRepairDump(fd): freeze the socket (it stays frozen) and return its state (DumpState).
Napi::Value TcpRepairDump(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) { Napi::TypeError::New(env, "tcpRepairDump(fd)").ThrowAsJavaScriptException(); return env.Null(); }
  CState s;
  int err = 0;
  const char* what = nullptr;
  const char* code = nullptr;
  if (!DumpState(info[0].As<Napi::Number>().Int32Value(), &s, &err, &what, &code)) {
    MakeError(env, err, what, code).ThrowAsJavaScriptException();
    return env.Null();
  }
  return StateObject(env, s);
}

uint32_t U32(const Napi::Object& o, const char* k) { return static_cast<uint32_t>(o.Get(k).As<Napi::Number>().Int64Value()); }

/** Smallest MSS TCP_MAXSEG accepts (TCP_MIN_MSS in the kernel); a state's MSS below it is left to TCP_REPAIR_OPTIONS. */
constexpr uint32_t kMinUserMss = 88;
/** Largest MSS TCP_MAXSEG accepts (MAX_TCP_WINDOW). */
constexpr uint32_t kMaxUserMss = 32767;

/** Largest send buffer SendAll raises a socket's to (SO_SNDBUFFORCE value; the kernel doubles it). */
constexpr int kMaxRaisedSndbuf = static_cast<int>(2 * kMaxQueueBytes);

// Write all `len` bytes with send(2) and never wait: a full send buffer is raised instead. Bytes written into the
// send queue in repair mode count against the socket's send buffer and stay there until the peer acknowledges them
// after the thaw, so a restore that writes more than a fresh socket's buffer holds (~100-150 KiB, measured with MSS
// 1460) blocked forever on a blocking socket (the daemon's event loop, or the app's thread, with it) and failed with
// EAGAIN on a non-blocking one. CRIU restores a dumped socket's buffer sizes with SO_SNDBUFFORCE first; here the
// buffer is raised only when a send finds it full (SO_SNDBUFFORCE, as root / CAP_NET_ADMIN like TCP_REPAIR itself;
// else SO_SNDBUF up to net.core.wmem_max), by twice the bytes left (their skb overhead included). A raised buffer
// stays fixed (no send-buffer autotuning on that socket). A chunk the kernel cannot allocate (ENOMEM: the receive
// queue is restored as one linear skb per send) is halved and tried again, as CRIU's soccr does.
bool SendAll(int fd, const char* data, size_t len, int* err, const char** what, const char* label) {
  size_t off = 0, maxChunk = len;
  while (off < len) {
    size_t chunk = std::min(len - off, maxChunk);
    ssize_t n = send(fd, data + off, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) { off += static_cast<size_t>(n); continue; }
    int e = n < 0 ? errno : EIO;
    if (e == EINTR) continue;
    if (e == ENOMEM && maxChunk > 1024) { maxChunk /= 2; continue; }
    if (e == EAGAIN || e == EWOULDBLOCK) {
      int cur = 0;
      socklen_t cl = sizeof cur;
      if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &cl) != 0) { *err = errno; *what = label; return false; }
      size_t left = len - off;
      int want = static_cast<int>(std::min<size_t>(static_cast<size_t>(cur) / 2 + 2 * left, kMaxRaisedSndbuf));
      if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want) != 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
      int now = 0;
      cl = sizeof now;
      getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &now, &cl);
      if (now > cur) continue;
      // the buffer cannot grow: give up rather than wait (a thawed socket would wait for the peer's ACKs)
    }
    *err = e; *what = label; return false;
  }
  return true;
}

// Write bytes into one queue of a socket in repair mode (they are queued, not transmitted).
bool RestoreQueue(int fd, int q, const char* data, size_t len, int* err, const char** what) {
  if (len == 0) return true;
  if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof q) != 0) { *err = errno; *what = "TCP_REPAIR_QUEUE"; return false; }
  return SendAll(fd, data, len, err, what, "send(queue)");
}

// A socket filter that drops every packet: tcp_v4_rcv runs it after the socket lookup and before any TCP
// processing, so a connection being moved receives nothing (and answers nothing: no ACK, no RST) while the
// client's segments are dropped and retransmitted later; the guest-side "hold" of socket offload.
//
// The filter is an eBPF program loaded once per process and attached by fd (SO_ATTACH_BPF): a classic filter is
// translated and JIT-compiled at every attach (vmalloc, text poke: ~2 % of hylicsd's CPU at one attach per handoff).
// Where the load is refused (no CAP_BPF, as in a sandbox guest's user namespace), the classic one as before.
int LoadDropProgram() {
  struct bpf_insn insns[2];
  memset(insns, 0, sizeof insns);
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r0 = 0: keep nothing of the packet
  insns[0].dst_reg = BPF_REG_0;
  insns[1].code = BPF_JMP | BPF_EXIT;
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  attr.insns = reinterpret_cast<uint64_t>(insns);
  attr.insn_cnt = 2;
  attr.license = reinterpret_cast<uint64_t>("GPL");
  long fd = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);  // close-on-exec: bpf(2) fds always are
  return fd < 0 ? -1 : static_cast<int>(fd);
}

bool DropFilter(int fd, bool on) {
  int unused = 0;  // SO_DETACH_FILTER takes no value, but the generic option check wants an int
  if (!on) return setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &unused, sizeof unused) == 0 || errno == ENOENT;
  static const int ebpf = LoadDropProgram();  // thread-safe once (the main and the I/O thread attach)
  if (ebpf >= 0 && setsockopt(fd, SOL_SOCKET, SO_ATTACH_BPF, &ebpf, sizeof ebpf) == 0) return true;
  static struct sock_filter drop[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
  struct sock_fprog prog = { 1, drop };
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) == 0;
}

// dropFilter(fd, on): attach (true) or detach (false) the drop-everything filter.
Napi::Value DropFilterJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsBoolean()) { Napi::TypeError::New(env, "dropFilter(fd, on)").ThrowAsJavaScriptException(); return env.Null(); }
  if (!DropFilter(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Boolean>().Value())) MakeError(env, errno, "socket filter", "HYLICS_ERR_TCP_REPAIR_FAILED").ThrowAsJavaScriptException();
  return env.Undefined();
}

// A frozen socket sends nothing (docs/offload-socket.md, "Frozen sockets send nothing"): TCP_REPAIR does not stop a
// socket's timers, so a socket frozen with bytes unacknowledged retransmits them (a tail loss probe ~200 ms later,
// then its RTO) and one with an ACK pending sends it (the delayed-ACK timer), each with a newer TCP timestamp than
// the state the other end restores: the client keeps that timestamp and PAWS then drops the restored socket's
// segments. So the freeze marks the socket's packets with a DSCP of its own (IP_TOS: read at every transmit,
// retransmissions and ACKs included) and hylicsd's steering table drops packets of the guest's address with that
// DSCP (prerouting for the guest's frozen socket: the mark crosses the guest's link, unlike SO_MARK; output for the
// host's own frozen copy). A restore in place, or a thaw, sets the saved IP_TOS and SO_PRIORITY again (IP_TOS sets
// the priority too).
struct SavedTos { int tos = -1, prio = 0; };

bool HushOn(int fd, int hushTos, SavedTos* saved) {
  socklen_t l = sizeof saved->tos;
  if (getsockopt(fd, IPPROTO_IP, IP_TOS, &saved->tos, &l) != 0) { saved->tos = -1; return false; }
  l = sizeof saved->prio;
  if (getsockopt(fd, SOL_SOCKET, SO_PRIORITY, &saved->prio, &l) != 0) { saved->tos = -1; return false; }
  if (setsockopt(fd, IPPROTO_IP, IP_TOS, &hushTos, sizeof hushTos) != 0) { saved->tos = -1; return false; }
  return true;
}

bool HushOff(int fd, const SavedTos& saved) {
  if (saved.tos < 0) return true;
  return setsockopt(fd, IPPROTO_IP, IP_TOS, &saved.tos, sizeof saved.tos) == 0 &&
         setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &saved.prio, sizeof saved.prio) == 0;
}

// tcpRepairRestore(state, { transparent?, replaceFd?, inPlace?, repairOff?, dropFilter? }) -> fd. dropFilter: the new socket
// gets the drop filter before it is bound, so it receives nothing while its state is set; thawed (repairOff != 0) it
// is detached right before the thaw, left frozen it stays until the caller detaches it. A new socket carrying the connection in
// `state`. transparent: IP_TRANSPARENT, so a foreign local address (the guest's, on the host) can be bound.
// replaceFd: the new socket takes that fd number (dup3) right after bind, closing what was there (a frozen socket
// of the same connection: in repair mode it goes silently); the owner's fd number stays valid. repairOff: 0 leaves
// the socket in repair mode, 1 turns it off (the kernel then sends a window probe), -1 off without the probe.
// inPlace (with replaceFd): restore on that very socket instead (see below), keeping its blocking mode.
// A state to restore in plain C++ (the queues point into the caller's buffers): what tcpRepairRestore reads from
// its object and tcpHandoffRestore from its packed Buffer.
struct RestoreState {
  sockaddr_in local{}, peer{};
  uint32_t sendSeq = 0, recvSeq = 0, unsent = 0, mss = 0, ts = 0, options = 0, sndWscale = 0, rcvWscale = 0;
  struct tcp_repair_window win{};
  const char* sendQ = nullptr;
  size_t sendLen = 0;
  const char* recvQ = nullptr;
  size_t recvLen = 0;
};

struct RestoreOpts {
  bool transparent = false, dropFilter = false, inPlace = false, noDelay = false;
  int replaceFd = -1, repairOff = 1;
  SavedTos unhush;  // tos >= 0: the IP_TOS and SO_PRIORITY to set again before the thaw (a frozen socket's own)
};

// The restore itself (see tcpRepairRestore): returns the fd, or -1 with *err / *what set (the socket then cleaned up
// as described there). noDelay: TCP_NODELAY on the restored socket.
int RestoreCore(const RestoreState& st, const RestoreOpts& o, int* errOut, const char** whatOut) {
  sockaddr_in local = st.local;
  sockaddr_in peer = st.peer;
  const bool transparent = o.transparent, dropFilter = o.dropFilter, inPlace = o.inPlace;
  const int replaceFd = o.replaceFd, repairOff = o.repairOff;
  size_t unsent = st.unsent;
  if (unsent > st.sendLen) unsent = st.sendLen;
  int fd = inPlace ? replaceFd : socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) { *errOut = errno; *whatOut = "socket"; return -1; }
  int err = 0;
  const char* what = nullptr;
  int one = 1;
  int savedFlags = inPlace ? fcntl(fd, F_GETFL) : -1;
  do {
    if (inPlace) {
      // The same socket (open file description): every process holding it (an app that passed it with SCM_RIGHTS)
      // sees the connection carried on. A frozen socket disconnects without a segment (tcp_disconnect in repair
      // mode), then takes the new state like a fresh one; its port may stay bound (then bind says EINVAL).
      if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &one, sizeof one) != 0) { err = errno; what = "TCP_REPAIR"; break; }
      sockaddr unspec{};
      unspec.sa_family = AF_UNSPEC;
      if (connect(fd, &unspec, sizeof unspec) != 0) { err = errno; what = "disconnect (repair)"; break; }
      int soerr = 0;
      socklen_t sl = sizeof soerr;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);  // clears the ECONNABORTED the disconnect left
      if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 && errno != EINVAL) { err = errno; what = "bind"; break; }
    } else {
    // TCP_REPAIR after SO_REUSEADDR: repair mode sets SK_FORCE_REUSE (bind beside the listener and the frozen
    // socket of the same port), which SO_REUSEADDR would overwrite
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) { err = errno; what = "SO_REUSEADDR"; break; }
    if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &one, sizeof one) != 0) { err = errno; what = "TCP_REPAIR"; break; }
    if (transparent && setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one) != 0) { err = errno; what = "IP_TRANSPARENT"; break; }
    if (dropFilter && !DropFilter(fd, true)) { err = errno; what = "SO_ATTACH_FILTER"; break; }
    if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) { err = errno; what = "bind"; break; }
    if (replaceFd >= 0) {
      if (dup3(fd, replaceFd, O_CLOEXEC) < 0) { err = errno; what = "dup3"; break; }
      close(fd);
      fd = replaceFd;
    }
    }
    int q = TCP_RECV_QUEUE;
    uint32_t seq = st.recvSeq - static_cast<uint32_t>(st.recvLen);
    if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof q) != 0 || setsockopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, &seq, sizeof seq) != 0) { err = errno; what = "recv TCP_QUEUE_SEQ"; break; }
    q = TCP_SEND_QUEUE;
    seq = st.sendSeq - static_cast<uint32_t>(st.sendLen);
    if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof q) != 0 || setsockopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, &seq, sizeof seq) != 0) { err = errno; what = "send TCP_QUEUE_SEQ"; break; }
    // The MSS the connection had, as the user MSS before the connect: a repair-mode connect computes the send MSS
    // (mss_cache) right away from the clamp it has then, the kernel's default 536, and TCP_REPAIR_OPTIONS below only
    // sets the clamp, so a restored socket sent 524-byte segments (ss: mss:524) until something made it sync its MSS
    // again. With the user MSS the connect clamps to the state's MSS instead: full-sized segments from the first send.
    // TCP_MAXSEG takes at most 32767 (MAX_TCP_WINDOW; loopback's MSS is ~65483): then the connect starts from that,
    // and the clamp TCP_REPAIR_OPTIONS sets is the state's, which a later resync uses (the user MSS is not).
    uint32_t mssWanted = std::min<uint32_t>(st.mss, kMaxUserMss);
    if (mssWanted >= kMinUserMss) {
      int v = static_cast<int>(mssWanted);
      if (setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &v, sizeof v) != 0) { err = errno; what = "TCP_MAXSEG"; break; }
    }
    if (connect(fd, reinterpret_cast<sockaddr*>(&peer), sizeof peer) != 0) { err = errno; what = "connect (repair)"; break; }
    uint32_t options = st.options;
    struct tcp_repair_opt ro[4];
    int n = 0;
    if (options & TCPI_OPT_SACK) { ro[n].opt_code = TCPOPT_SACK_PERMITTED; ro[n].opt_val = 0; n++; }
    if (options & TCPI_OPT_WSCALE) { ro[n].opt_code = TCPOPT_WINDOW; ro[n].opt_val = st.sndWscale + (st.rcvWscale << 16); n++; }
    if (options & TCPI_OPT_TIMESTAMPS) { ro[n].opt_code = TCPOPT_TIMESTAMP; ro[n].opt_val = 0; n++; }
    ro[n].opt_code = TCPOPT_MAXSEG; ro[n].opt_val = st.mss; n++;
    if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_OPTIONS, ro, n * sizeof ro[0]) != 0) { err = errno; what = "TCP_REPAIR_OPTIONS"; break; }
    uint32_t ts = st.ts;
    if ((options & TCPI_OPT_TIMESTAMPS) && setsockopt(fd, IPPROTO_TCP, TCP_TIMESTAMP, &ts, sizeof ts) != 0) { err = errno; what = "TCP_TIMESTAMP"; break; }
    if (!RestoreQueue(fd, TCP_RECV_QUEUE, st.recvQ, st.recvLen, &err, &what)) break;
    if (!RestoreQueue(fd, TCP_SEND_QUEUE, st.sendQ, st.sendLen - unsent, &err, &what)) break;
    struct tcp_repair_window win = st.win;
    if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &win, sizeof win) != 0) { err = errno; what = "TCP_REPAIR_WINDOW"; break; }
    // the socket's own IP_TOS again before its first packet (the thaw's window probe): frozen, it had the DSCP the
    // host drops (HushOn)
    if (!HushOff(fd, o.unhush)) { err = errno; what = "IP_TOS"; break; }
    if (repairOff != 0 || unsent > 0) {
      // the state is complete: a thawed socket lets packets in before the window probe goes out, so the peer's
      // answer to it (an ACK of everything it has) is not dropped; else the restored send queue stays in flight
      // with cwnd 10 until the retransmission timeout (200 ms+) and the peer never has the response's last byte
      if (dropFilter && repairOff != 0 && !DropFilter(fd, false)) { err = errno; what = "SO_DETACH_FILTER"; break; }
      int v = repairOff < 0 ? -1 : 0;  // TCP_REPAIR_OFF_NO_WP = -1
      if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &v, sizeof v) != 0) { err = errno; what = "TCP_REPAIR off"; break; }
      // bytes never transmitted go out the normal way
      // (without waiting for the peer's ACKs: SendAll raises the send buffer to take them all)
      size_t off = st.sendLen - unsent;
      if (!SendAll(fd, st.sendQ + off, unsent, &err, &what, "send(unsent)")) break;
      // leaving repair mode resets sk_reuse to "no": a listener restarted on this port would then get EADDRINUSE
      // for as long as this connection (or its TIME_WAIT) lives, as it would not beside an accepted socket
      if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) { err = errno; what = "SO_REUSEADDR"; break; }
      if (repairOff == 0 && setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &one, sizeof one) != 0) { err = errno; what = "TCP_REPAIR on"; break; }
    }
    if (o.noDelay && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) { err = errno; what = "TCP_NODELAY"; break; }
    int fl = fcntl(fd, F_GETFL);
    if (inPlace && savedFlags >= 0) fcntl(fd, F_SETFL, savedFlags);  // the owner's blocking mode, as it was
    else if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  } while (false);
  if (err != 0) {
    // still in repair mode (or never connected): closing sends nothing to the peer
    int on = kRepairOn;
    setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &on, sizeof on);
    if (inPlace) {
      // the owner's socket stays open (frozen, disconnected or half restored): its caller decides
    } else if (replaceFd >= 0 && fd == replaceFd) {
      // keep the owner's fd number valid: park an unconnected socket there
      int spare = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (spare >= 0) { dup3(spare, replaceFd, O_CLOEXEC); close(spare); }
    } else {
      close(fd);
    }
    *errOut = err; *whatOut = what;
    return -1;
  }
  return fd;
}

Napi::Value TcpRepairRestore(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) { Napi::TypeError::New(env, "tcpRepairRestore(state, opts?)").ThrowAsJavaScriptException(); return env.Null(); }
  Napi::Object st = info[0].As<Napi::Object>();
  Napi::Object opts = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  RestoreOpts o;
  o.transparent = opts.Has("transparent") && opts.Get("transparent").ToBoolean().Value();
  o.dropFilter = opts.Has("dropFilter") && opts.Get("dropFilter").ToBoolean().Value();
  o.replaceFd = opts.Has("replaceFd") && opts.Get("replaceFd").IsNumber() ? opts.Get("replaceFd").As<Napi::Number>().Int32Value() : -1;
  o.repairOff = opts.Has("repairOff") && opts.Get("repairOff").IsNumber() ? opts.Get("repairOff").As<Napi::Number>().Int32Value() : 1;
  o.inPlace = o.replaceFd >= 0 && opts.Has("inPlace") && opts.Get("inPlace").ToBoolean().Value();
  RestoreState c;
  c.local.sin_family = c.peer.sin_family = AF_INET;
  std::string la = st.Get("localAddr").ToString().Utf8Value(), pa = st.Get("remoteAddr").ToString().Utf8Value();
  if (inet_pton(AF_INET, la.c_str(), &c.local.sin_addr) != 1 || inet_pton(AF_INET, pa.c_str(), &c.peer.sin_addr) != 1) {
    MakeError(env, EINVAL, "bad address in state", "HYLICS_ERR_INVALID_ARGUMENT").ThrowAsJavaScriptException(); return env.Null();
  }
  c.local.sin_port = htons(static_cast<uint16_t>(U32(st, "localPort")));
  c.peer.sin_port = htons(static_cast<uint16_t>(U32(st, "remotePort")));
  Napi::Buffer<char> sendQ = st.Get("sendQueue").As<Napi::Buffer<char>>();
  Napi::Buffer<char> recvQ = st.Get("recvQueue").As<Napi::Buffer<char>>();
  c.sendQ = sendQ.Data(); c.sendLen = sendQ.Length();
  c.recvQ = recvQ.Data(); c.recvLen = recvQ.Length();
  c.unsent = U32(st, "unsentBytes");
  c.sendSeq = U32(st, "sendSeq"); c.recvSeq = U32(st, "recvSeq");
  c.mss = U32(st, "mss"); c.ts = U32(st, "timestamp"); c.options = U32(st, "options");
  c.sndWscale = U32(st, "sndWscale"); c.rcvWscale = U32(st, "rcvWscale");
  Napi::Object w = st.Get("window").As<Napi::Object>();
  c.win.snd_wl1 = U32(w, "sndWl1"); c.win.snd_wnd = U32(w, "sndWnd"); c.win.max_window = U32(w, "maxWindow");
  c.win.rcv_wnd = U32(w, "rcvWnd"); c.win.rcv_wup = U32(w, "rcvWup");
  int err = 0;
  const char* what = nullptr;
  int fd = RestoreCore(c, o, &err, &what);
  if (fd < 0) { MakeError(env, err, what).ThrowAsJavaScriptException(); return env.Null(); }
  return Napi::Number::New(env, fd);
}

// tcpRepair(fd, value): TCP_REPAIR = 1 (freeze), 0 (thaw, with window probe) or -1 (thaw without).
Napi::Value TcpRepair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber()) { Napi::TypeError::New(env, "tcpRepair(fd, value)").ThrowAsJavaScriptException(); return env.Null(); }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int v = info[1].As<Napi::Number>().Int32Value();
  if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &v, sizeof v) != 0) { MakeError(env, errno, "TCP_REPAIR").ThrowAsJavaScriptException(); return env.Undefined(); }
  int one = 1;  // as in tcpRepairRestore: thawing resets sk_reuse
  if (v <= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  return env.Undefined();
}

// tcpQueues(fd) -> { outq, unsent, inq, state }: bytes not yet acknowledged, not yet sent, not yet read; TCP state.
Napi::Value TcpQueues(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) { Napi::TypeError::New(env, "tcpQueues(fd)").ThrowAsJavaScriptException(); return env.Null(); }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int outq = 0, unsent = 0, inq = 0;
  struct tcp_info ti{};
  socklen_t tl = sizeof ti;
  if (ioctl(fd, SIOCOUTQ, &outq) != 0 || ioctl(fd, SIOCOUTQNSD, &unsent) != 0 || ioctl(fd, SIOCINQ, &inq) != 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) != 0) {
    MakeError(env, errno, "tcpQueues").ThrowAsJavaScriptException(); return env.Null();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("outq", outq);
  o.Set("unsent", unsent);
  o.Set("inq", inq);
  o.Set("state", static_cast<int>(ti.tcpi_state));
  return o;
}

// closeFd(fd): close a descriptor the addon handed out (restored sockets).
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) { Napi::TypeError::New(env, "closeFd(fd)").ThrowAsJavaScriptException(); return env.Null(); }
  if (close(info[0].As<Napi::Number>().Int32Value()) != 0 && errno != EINTR) MakeError(env, errno, "close").ThrowAsJavaScriptException();
  return env.Undefined();
}

// abortClose(fd): SO_LINGER { on, 0 } then close: the kernel drops the socket at once (an RST to the peer) instead
// of leaving an orphan retransmitting to a peer that is gone (the last resort after a bounded wait).
Napi::Value AbortClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) { Napi::TypeError::New(env, "abortClose(fd)").ThrowAsJavaScriptException(); return env.Null(); }
  int fd = info[0].As<Napi::Number>().Int32Value();
  linger l{};
  l.l_onoff = 1;
  l.l_linger = 0;
  int lerr = setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0 ? errno : 0;
  if (close(fd) != 0 && errno != EINTR) { MakeError(env, errno, "close").ThrowAsJavaScriptException(); return env.Null(); }
  if (lerr != 0) { MakeError(env, lerr, "setsockopt(SO_LINGER)").ThrowAsJavaScriptException(); return env.Null(); }
  return env.Undefined();
}

// shutdownWrite(fd): FIN after the queued bytes (terminal mode).
Napi::Value ShutdownWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) { Napi::TypeError::New(env, "shutdownWrite(fd)").ThrowAsJavaScriptException(); return env.Null(); }
  if (shutdown(info[0].As<Napi::Number>().Int32Value(), SHUT_WR) != 0) MakeError(env, errno, "shutdown").ThrowAsJavaScriptException();
  return env.Undefined();
}

// setRecvBuffer(fd, bytes) -> the socket's SO_RCVBUF after setting it to `bytes` (the kernel doubles it for its
// overhead and stops autotuning it): caps what a socket nobody reads takes in (the rest waits at the peer).
Napi::Value SetRecvBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber()) { Napi::TypeError::New(env, "setRecvBuffer(fd, bytes)").ThrowAsJavaScriptException(); return env.Null(); }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int want = info[1].As<Napi::Number>().Int32Value();
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want) != 0) { MakeError(env, errno, "setsockopt SO_RCVBUF").ThrowAsJavaScriptException(); return env.Null(); }
  int now = 0;
  socklen_t l = sizeof now;
  if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &now, &l) != 0) { MakeError(env, errno, "getsockopt SO_RCVBUF").ThrowAsJavaScriptException(); return env.Null(); }
  return Napi::Number::New(env, now);
}

// tcpNames(fd) -> { localAddr, localPort, remoteAddr, remotePort } of a connected IPv4 TCP socket.
Napi::Value TcpNames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) { Napi::TypeError::New(env, "tcpNames(fd)").ThrowAsJavaScriptException(); return env.Null(); }
  int fd = info[0].As<Napi::Number>().Int32Value();
  sockaddr_in local{}, peer{};
  socklen_t ll = sizeof local, pl = sizeof peer;
  int type = 0;
  socklen_t tl = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM) { MakeError(env, errno ? errno : ENOTSOCK, "not a stream socket").ThrowAsJavaScriptException(); return env.Null(); }
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0 || getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0) {
    MakeError(env, errno, "getsockname/getpeername").ThrowAsJavaScriptException(); return env.Null();
  }
  if (local.sin_family != AF_INET) { MakeError(env, EAFNOSUPPORT, "only IPv4 connections").ThrowAsJavaScriptException(); return env.Null(); }
  Napi::Object o = Napi::Object::New(env);
  o.Set("localAddr", AddrString(local));
  o.Set("localPort", ntohs(local.sin_port));
  o.Set("remoteAddr", AddrString(peer));
  o.Set("remotePort", ntohs(peer.sin_port));
  return o;
}

// ---- SCM_RIGHTS (an app hands its socket to the guest agent over a Unix socket) ---------------------------

// recvWithFd(unixFd, maxBytes) -> { data, fd } (fd -1 when none came), or null when nothing is there yet.
// Non-blocking; received fds are close-on-exec; more than one fd in a message: the others are closed.
Napi::Value RecvWithFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber()) { Napi::TypeError::New(env, "recvWithFd(fd, maxBytes)").ThrowAsJavaScriptException(); return env.Null(); }
  int fd = info[0].As<Napi::Number>().Int32Value();
  size_t max = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  if (max == 0 || max > (1u << 20)) { MakeError(env, EINVAL, "maxBytes").ThrowAsJavaScriptException(); return env.Null(); }
  std::string buf(max, '\0');
  iovec iov{&buf[0], max};
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * 8)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl;
  msg.msg_controllen = sizeof ctl;
  ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return env.Null();
    MakeError(env, errno, "recvmsg").ThrowAsJavaScriptException(); return env.Null();
  }
  int got = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; i++) {
      int f;
      memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
      if (got < 0) got = f; else close(f);
    }
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("data", Napi::Buffer<char>::Copy(env, buf.data(), static_cast<size_t>(n)));
  o.Set("fd", Napi::Number::New(env, got));
  o.Set("truncated", Napi::Boolean::New(env, (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0));
  return o;
}

// sendWithFd(unixFd, data, fd) -> bytes sent: one message with `fd` attached (SCM_RIGHTS). Non-blocking.
Napi::Value SendWithFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsNumber()) { Napi::TypeError::New(env, "sendWithFd(fd, data, fdToSend)").ThrowAsJavaScriptException(); return env.Null(); }
  int fd = info[0].As<Napi::Number>().Int32Value();
  Napi::Buffer<char> data = info[1].As<Napi::Buffer<char>>();
  int pass = info[2].As<Napi::Number>().Int32Value();
  iovec iov{data.Data(), data.Length()};
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl;
  msg.msg_controllen = sizeof ctl;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &pass, sizeof pass);
  ssize_t n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n < 0) { MakeError(env, errno, "sendmsg").ThrowAsJavaScriptException(); return env.Null(); }
  return Napi::Number::New(env, static_cast<double>(n));
}

// ---- nftables set elements over netlink ----------------------------------------------------------------------
// nftSetElems(table, [{ set, add, key, destroy? }]): in one batch (NFNL_MSG_BATCH_BEGIN .. END, all or nothing), add
// (NEWSETELEM, no NLM_F_EXCL: adding a present element is no error), delete (DELSETELEM) or, with destroy, destroy
// (DESTROYSETELEM, Linux >= 6.3: deleting an element that is not there is no error) the element with key `key` (the
// raw key bytes: concatenated fields, each padded to 4 bytes) in set `set` of table `ip <table>`. No message asks
// for an ACK: the batch runs inside sendmsg (nfnetlink processes it in the sender's context), so by the time it
// returns the kernel has queued an error answer for every message that failed (and for a failed commit), and
// nothing for success; one non-blocking read then tells which (a per-message ACK cost the kernel an answer each
// and us a blocking read: ~3 % of hylicsd's event loop at 10 messages per handoff). Throws with the errno of the
// first failing message (ENOENT: deleting an element that is not there; EINVAL: a kernel without DESTROYSETELEM;
// the whole batch is then undone).
void NlPut(std::string* b, uint16_t type, const void* data, size_t len) {
  struct nlattr a{};
  a.nla_len = static_cast<uint16_t>(NLA_HDRLEN + len);
  a.nla_type = type;
  b->append(reinterpret_cast<const char*>(&a), sizeof a);
  b->append(static_cast<const char*>(data), len);
  b->append(NLA_ALIGN(len) - len, '\0');
}
size_t NlNestStart(std::string* b, uint16_t type) {
  size_t at = b->size();
  struct nlattr a{};
  a.nla_type = type | NLA_F_NESTED;
  b->append(reinterpret_cast<const char*>(&a), sizeof a);
  return at;
}
void NlNestEnd(std::string* b, size_t at) {
  uint16_t len = static_cast<uint16_t>(b->size() - at);
  std::memcpy(&(*b)[at], &len, sizeof len);
}
void NlMsg(std::string* out, uint16_t type, uint16_t flags, uint32_t seq, uint8_t family, uint16_t resId, const std::string& attrs) {
  struct nlmsghdr h{};
  h.nlmsg_len = static_cast<uint32_t>(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg)) + attrs.size());
  h.nlmsg_type = type;
  h.nlmsg_flags = flags;
  h.nlmsg_seq = seq;
  struct nfgenmsg g{};
  g.nfgen_family = family;
  g.version = NFNETLINK_V0;
  g.res_id = htons(resId);
  out->append(reinterpret_cast<const char*>(&h), sizeof h);
  out->append(reinterpret_cast<const char*>(&g), sizeof g);
  out->append(NLMSG_ALIGN(sizeof g) - sizeof g, '\0');
  out->append(attrs);
}

std::mutex nlMutex;
int nlFd = -1;
// NFT_MSG_DESTROYSETELEM (Linux 6.3; older uapi headers lack it): delete, and no error when the element is not there
constexpr uint16_t kNftMsgDestroySetElem = 30;

Napi::Value NftSetElems(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsArray()) { Napi::TypeError::New(env, "nftSetElems(table, ops)").ThrowAsJavaScriptException(); return env.Null(); }
  std::string table = info[0].As<Napi::String>().Utf8Value();
  Napi::Array ops = info[1].As<Napi::Array>();
  std::lock_guard<std::mutex> lock(nlMutex);
  static uint32_t seq = static_cast<uint32_t>(time(nullptr));
  std::string batch;
  uint32_t first = ++seq;
  NlMsg(&batch, NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, first, AF_UNSPEC, NFNL_SUBSYS_NFTABLES, "");
  uint32_t n = ops.Length();
  for (uint32_t i = 0; i < n; i++) {
    Napi::Object op = ops.Get(i).As<Napi::Object>();
    std::string set = op.Get("set").As<Napi::String>().Utf8Value();
    bool add = op.Get("add").ToBoolean().Value();
    bool destroy = !add && op.Get("destroy").ToBoolean().Value();
    Napi::Buffer<char> key = op.Get("key").As<Napi::Buffer<char>>();
    std::string a;
    NlPut(&a, NFTA_SET_ELEM_LIST_TABLE, table.c_str(), table.size() + 1);
    NlPut(&a, NFTA_SET_ELEM_LIST_SET, set.c_str(), set.size() + 1);
    size_t list = NlNestStart(&a, NFTA_SET_ELEM_LIST_ELEMENTS);
    size_t el = NlNestStart(&a, NFTA_LIST_ELEM);
    size_t k = NlNestStart(&a, NFTA_SET_ELEM_KEY);
    NlPut(&a, NFTA_DATA_VALUE, key.Data(), key.Length());
    NlNestEnd(&a, k);
    NlNestEnd(&a, el);
    NlNestEnd(&a, list);
    uint16_t msg = add ? uint16_t{NFT_MSG_NEWSETELEM} : destroy ? kNftMsgDestroySetElem : uint16_t{NFT_MSG_DELSETELEM};
    uint16_t type = static_cast<uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | msg);
    NlMsg(&batch, type, NLM_F_REQUEST | (add ? NLM_F_CREATE : 0), ++seq, NFPROTO_IPV4, 0, a);
  }
  NlMsg(&batch, NFNL_MSG_BATCH_END, NLM_F_REQUEST, ++seq, AF_UNSPEC, NFNL_SUBSYS_NFTABLES, "");
  // One netlink socket for the process, kept open: closing a NETLINK_NETFILTER socket right after a commit waits
  // for nf_tables' commit-release work (an RCU grace period: 7-28 ms measured on a loaded 2-core host, on the event
  // loop, twice per handoff). Answers are matched by sequence number; a stale one from an earlier batch is skipped.
  if (nlFd < 0) {
    nlFd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (nlFd < 0) { MakeError(env, errno, "netlink socket", "HYLICS_ERR_NFT_FAILED").ThrowAsJavaScriptException(); return env.Null(); }
  }
  int fd = nlFd;
  char buf[8192];
  while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {}  // anything left from an earlier batch (never expected)
  struct sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  int err = 0;
  bool broken = false;
  if (sendto(fd, batch.data(), batch.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) { err = errno; broken = true; }
  // the answers are queued now: errors only (sequence numbers first .. first+n+1: a failed commit is answered with
  // the batch's first header); nothing queued means every message went through. ENOBUFS: an answer was lost (the
  // socket's buffer was full), so success is not known: an error too (and a fresh socket next time)
  while (err == 0) {
    ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) { err = errno; broken = true; }
      break;
    }
    for (nlmsghdr* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, static_cast<unsigned>(r)); h = NLMSG_NEXT(h, r)) {
      if (h->nlmsg_type != NLMSG_ERROR || static_cast<uint32_t>(h->nlmsg_seq - first) > n + 1) continue;
      int e = reinterpret_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
      if (e != 0 && err == 0) err = -e;  // the batch was undone: the first error
    }
  }
  if (broken) { close(fd); nlFd = -1; }  // a fresh socket next time
  if (err != 0) { MakeError(env, err, "nftables set elements", "HYLICS_ERR_NFT_FAILED").ThrowAsJavaScriptException(); return env.Null(); }
  return env.Undefined();
}

// ---- offload transfer: the host's part of a socket-offload handoff as one job ------------------------------------
// offloadTransfer(sockFd, fileFd, offset, count, jobId, stallMs, drainMaxUnacked, freeze, pollUs, head?, hushTos?)
//   -> Promise<{ bytes, headBytes, drained?, filtered, state?, freezeError? }>
// On the sendfile engine's thread: send `head` (a Buffer: the app's response headers, copied here; MSG_MORE while
// range bytes follow, so it shares its packets with the range's first bytes), then the range (as sendfile: a send
// error rejects with bytesSent and headBytes); then, with
// drainMaxUnacked >= 0, wait until every byte was transmitted and at most that many are unacknowledged, checked every
// pollUs on one timer for all transfers (drained "ok"; the client's FIN: "closing"; reset, no ACK progress for
// stallMs, or 2 x stallMs in all: "gone"; abortSendfile(jobId) meanwhile: "aborted"); then, with freeze and "ok",
// attach the drop filter, freeze (TCP_REPAIR) and dump the state. A failed filter or dump resolves with freezeError
// (the socket thawed; `filtered` says whether the filter is on). hushTos > 0: a frozen socket's IP_TOS becomes that
// (HushOn; the host's copy had the default, 0). One crossing per handoff, no JS timer per poll.
enum XferOutcome { kXferNone, kXferOk, kXferClosing, kXferGone, kXferAborted };
const char* const kXferOutcomes[] = { nullptr, "ok", "closing", "gone", "aborted" };

Xfer::~Xfer() { delete state; }

bool XferDraining(const Job* job) { return job->xfer != nullptr && job->xfer->draining; }

void ArmDrainTimer(int64_t us) {
  struct itimerspec its{};
  its.it_value.tv_sec = its.it_interval.tv_sec = us / 1000000;
  its.it_value.tv_nsec = its.it_interval.tv_nsec = (us % 1000000) * 1000;
  timerfd_settime(engine->drainTimer, 0, &its, nullptr);
}

// The drain condition of a draining transfer; true when it is over (the job finished, frozen if asked).
bool XferCheck(Job* job) {
  Xfer* x = job->xfer;
  int outq = 0, unsent = 0, outcome = kXferNone;
  struct tcp_info ti{};
  socklen_t tl = sizeof ti;
  int64_t now = NowMs();
  if (ioctl(job->out, SIOCOUTQ, &outq) != 0 || ioctl(job->out, SIOCOUTQNSD, &unsent) != 0 || getsockopt(job->out, IPPROTO_TCP, TCP_INFO, &ti, &tl) != 0) {
    outcome = kXferGone;
  } else if (ti.tcpi_state != TCP_ESTABLISHED) {
    outcome = ti.tcpi_state == TCP_CLOSE_WAIT ? kXferClosing : kXferGone;
  } else if (unsent == 0 && outq <= x->drainMax) {
    outcome = kXferOk;
  } else {
    if (outq != x->lastOutq) { x->lastOutq = outq; x->lastChange = now; }
    if (now - x->lastChange > job->stallMs || now > x->drainStart + 2 * job->stallMs) outcome = kXferGone;
  }
  if (outcome == kXferNone) return false;
  x->outcome = kXferOutcomes[outcome];
  x->drainEnd = now;
  if (outcome == kXferOk && x->freeze) {
    // nothing of the client reaches the socket from the filter on; then frozen and dumped as tcpRepairDump does
    if (!DropFilter(job->out, true)) {
      x->freezeErr = errno; x->freezeWhat = "socket filter"; x->freezeCode = "HYLICS_ERR_TCP_REPAIR_FAILED";
    } else {
      x->filtered = true;
      x->state = new CState();
      if (!DumpState(job->out, x->state, &x->freezeErr, &x->freezeWhat, &x->freezeCode)) { delete x->state; x->state = nullptr; }
      // frozen: its timers still run (a loss probe of the bytes left unacknowledged, ~10 ms on a fast link), so
      // its packets get the DSCP hylicsd drops until it closes this copy (best effort: the dump stands)
      else if (x->hushTos > 0) { SavedTos unused; HushOn(job->out, x->hushTos, &unused); }
    }
  }
  Finish(job);
  return true;
}

bool XferAfterSend(Job* job) {
  Xfer* x = job->xfer;
  if (x->drainMax < 0) return false;
  if (job->armed) { epoll_ctl(engine->ep, EPOLL_CTL_DEL, job->out, nullptr); job->armed = false; }
  x->draining = true;
  x->drainStart = x->lastChange = NowMs();
  if (XferCheck(job)) return true;
  if (engine->drainTimer < 0) {
    engine->drainTimer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event ev;
    ev.events = EPOLLIN;
    ev.data.u64 = kDrainTimerId;
    if (engine->drainTimer < 0 || epoll_ctl(engine->ep, EPOLL_CTL_ADD, engine->drainTimer, &ev) != 0) {
      // no timer: the drain cannot be waited for here; the caller sees "gone" and finishes the connection
      x->outcome = kXferOutcomes[kXferGone];
      Finish(job);
      return true;
    }
  }
  if (engine->draining.empty()) ArmDrainTimer(x->pollUs);
  engine->draining.push_back(job->id);
  return true;
}

void XferTick() {
  uint64_t v;
  ssize_t r = read(engine->drainTimer, &v, sizeof v);
  (void)r;
  for (size_t k = engine->draining.size(); k > 0; k--) {
    uint64_t id = engine->draining.front();
    engine->draining.pop_front();
    auto it = engine->active.find(id);
    if (it == engine->active.end() || !XferDraining(it->second)) continue;  // aborted meanwhile
    if (!XferCheck(it->second)) engine->draining.push_back(id);
  }
  if (engine->draining.empty()) ArmDrainTimer(0);
}

void XferDeliver(Napi::Env env, Job* job) {
  Xfer* x = job->xfer;
  if (!x->draining && job->err != 0) {
    Napi::Error e = MakeError(env, job->err, "sendfile");
    e.Set("bytesSent", Napi::Number::New(env, static_cast<double>(job->sent)));
    e.Set("headBytes", Napi::Number::New(env, static_cast<double>(x->headOff)));
    job->deferred.Reject(e.Value());
    return;
  }
  if (x->draining && x->outcome == nullptr) { x->outcome = kXferOutcomes[kXferAborted]; x->drainEnd = NowMs(); }
  Napi::Object o = Napi::Object::New(env);
  o.Set("bytes", Napi::Number::New(env, static_cast<double>(job->sent)));
  o.Set("headBytes", Napi::Number::New(env, static_cast<double>(x->headOff)));
  if (x->outcome) o.Set("drained", Napi::String::New(env, x->outcome));
  if (x->draining) o.Set("drainMs", Napi::Number::New(env, static_cast<double>(x->drainEnd - x->drainStart)));
  o.Set("filtered", Napi::Boolean::New(env, x->filtered));
  if (x->state) o.Set("state", PackedState(env, *x->state, nullptr));  // packed: one Buffer, not a 15-property object
  if (x->freezeErr != 0) o.Set("freezeError", MakeError(env, x->freezeErr, x->freezeWhat ? x->freezeWhat : "freeze", x->freezeCode).Value());
  job->deferred.Resolve(o);
}

Napi::Value OffloadTransfer(const Napi::CallbackInfo& info) {
  Xfer* x = new Xfer();
  if (info.Length() > 6 && info[6].IsNumber()) x->drainMax = info[6].As<Napi::Number>().Int64Value();
  x->freeze = info.Length() > 7 && info[7].ToBoolean().Value();
  if (info.Length() > 8 && info[8].IsNumber() && info[8].As<Napi::Number>().Int64Value() > 0) x->pollUs = info[8].As<Napi::Number>().Int64Value();
  if (info.Length() > 9 && info[9].IsBuffer()) {
    Napi::Buffer<char> h = info[9].As<Napi::Buffer<char>>();
    x->head.assign(h.Data(), h.Length());
  }
  if (info.Length() > 10 && info[10].IsNumber()) x->hushTos = info[10].As<Napi::Number>().Int32Value();
  x->sharedOut = info.Length() > 11 && info[11].ToBoolean().Value();
  return StartJob(info, x);
}

// ---- socket offload's guest side in one call each way (tcpHandoffFreeze / tcpHandoffRestore) ----------------
// The state as ONE Buffer instead of an object: building and reading a 15-property object through N-API (a string
// lookup per property) cost the guest more CPU per handoff than the system calls themselves. Layout (src/os/
// tcp-repair.ts PACKED_*): local IPv4 (4 bytes, network order), remote IPv4 (4), then 17 u32 little-endian:
// localPort remotePort sendSeq recvSeq unsentBytes mss timestamp options sndWscale rcvWscale sndWl1 sndWnd
// maxWindow rcvWnd rcvWup sendQueueLength recvQueueLength; then the send queue's bytes, then the receive queue's.
constexpr size_t kPackedWords = 17;
constexpr size_t kPackedHeader = 8 + 4 * kPackedWords;

void Put32(uint8_t* p, uint32_t v) { p[0] = v & 0xff; p[1] = (v >> 8) & 0xff; p[2] = (v >> 16) & 0xff; p[3] = v >> 24; }
uint32_t Get32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24); }

// tcpHandoffFreeze(fd, hushTos?) -> Buffer (packed state): the drop filter on, TCP_REPAIR on, the state dumped
// (DumpState); with hushTos > 0 the socket's IP_TOS then becomes hushTos (HushOn) and the packed state is followed by
// 8 bytes, the IP_TOS and SO_PRIORITY it had (i32 little-endian each; -1, 0 when they could not be changed) for
// tcpHandoffRestore / tcpHandoffThaw. On failure the socket is left as it was (filter detached, repair off) and the
// error names the step.
Napi::Value TcpHandoffFreeze(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) { Napi::TypeError::New(env, "tcpHandoffFreeze(fd)").ThrowAsJavaScriptException(); return env.Null(); }
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (!DropFilter(fd, true)) { MakeError(env, errno, "socket filter", "HYLICS_ERR_TCP_REPAIR_FAILED").ThrowAsJavaScriptException(); return env.Null(); }
  CState st;
  int err = 0;
  const char* what = nullptr;
  const char* code = nullptr;
  if (!DumpState(fd, &st, &err, &what, &code)) {
    DropFilter(fd, false);
    MakeError(env, err, what, code).ThrowAsJavaScriptException();
    return env.Null();
  }
  int hushTos = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
  SavedTos saved;
  if (hushTos > 0) HushOn(fd, hushTos, &saved);  // best effort: a failure leaves the socket's own (saved.tos -1)
  return PackedState(env, st, hushTos > 0 ? &saved : nullptr);
}

// A dumped state packed (the layout above); with `saved`, followed by its IP_TOS and SO_PRIORITY (i32 LE each).
Napi::Buffer<uint8_t> PackedState(Napi::Env env, const CState& st, const SavedTos* saved) {
  size_t sl = st.sendBytes.size(), rl = st.recvBytes.size();
  size_t trailer = saved ? 8 : 0;
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, kPackedHeader + sl + rl + trailer);
  uint8_t* p = out.Data();
  memcpy(p, &st.local.sin_addr, 4);
  memcpy(p + 4, &st.peer.sin_addr, 4);
  const uint32_t words[kPackedWords] = {
    ntohs(st.local.sin_port), ntohs(st.peer.sin_port), st.sndSeq, st.rcvSeq, static_cast<uint32_t>(st.unsent),
    static_cast<uint32_t>(st.mss), st.ts, st.options, st.sndWscale, st.rcvWscale, st.win.snd_wl1, st.win.snd_wnd,
    st.win.max_window, st.win.rcv_wnd, st.win.rcv_wup, static_cast<uint32_t>(sl), static_cast<uint32_t>(rl),
  };
  for (size_t i = 0; i < kPackedWords; i++) Put32(p + 8 + 4 * i, words[i]);
  if (sl) memcpy(p + kPackedHeader, st.sendBytes.data(), sl);
  if (rl) memcpy(p + kPackedHeader + sl, st.recvBytes.data(), rl);
  if (saved) { Put32(p + kPackedHeader + sl + rl, static_cast<uint32_t>(saved->tos)); Put32(p + kPackedHeader + sl + rl + 4, static_cast<uint32_t>(saved->prio)); }
  return out;
}

// tcpHandoffRestore(packed, replaceFd, flags, tos?, prio?) -> fd: tcpRepairRestore of a packed state, thawed
// (repairOff 1). flags: 1 transparent, 2 inPlace, 4 dropFilter, 8 TCP_NODELAY on the restored socket. tos >= 0: the
// IP_TOS and SO_PRIORITY set before the thaw (what tcpHandoffFreeze saved: the socket's own again).
Napi::Value TcpHandoffRestore(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBuffer() || !info[1].IsNumber() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "tcpHandoffRestore(packed, replaceFd, flags)").ThrowAsJavaScriptException(); return env.Null();
  }
  Napi::Buffer<uint8_t> b = info[0].As<Napi::Buffer<uint8_t>>();
  const uint8_t* p = b.Data();
  size_t len = b.Length();
  uint32_t w[kPackedWords] = {};
  if (len >= kPackedHeader) for (size_t i = 0; i < kPackedWords; i++) w[i] = Get32(p + 8 + 4 * i);
  if (len < kPackedHeader || static_cast<size_t>(w[15]) + w[16] != len - kPackedHeader || w[0] > 65535 || w[1] > 65535) {
    MakeError(env, EINVAL, "bad packed state", "HYLICS_ERR_INVALID_ARGUMENT").ThrowAsJavaScriptException(); return env.Null();
  }
  RestoreState st;
  st.local.sin_family = st.peer.sin_family = AF_INET;
  memcpy(&st.local.sin_addr, p, 4);
  memcpy(&st.peer.sin_addr, p + 4, 4);
  st.local.sin_port = htons(static_cast<uint16_t>(w[0]));
  st.peer.sin_port = htons(static_cast<uint16_t>(w[1]));
  st.sendSeq = w[2]; st.recvSeq = w[3]; st.unsent = w[4]; st.mss = w[5]; st.ts = w[6]; st.options = w[7];
  st.sndWscale = w[8]; st.rcvWscale = w[9];
  st.win.snd_wl1 = w[10]; st.win.snd_wnd = w[11]; st.win.max_window = w[12]; st.win.rcv_wnd = w[13]; st.win.rcv_wup = w[14];
  st.sendQ = reinterpret_cast<const char*>(p + kPackedHeader); st.sendLen = w[15];
  st.recvQ = reinterpret_cast<const char*>(p + kPackedHeader + w[15]); st.recvLen = w[16];
  RestoreOpts o;
  o.replaceFd = info[1].As<Napi::Number>().Int32Value();
  uint32_t flags = info[2].As<Napi::Number>().Uint32Value();
  o.transparent = flags & 1;
  o.inPlace = o.replaceFd >= 0 && (flags & 2);
  o.dropFilter = flags & 4;
  o.noDelay = flags & 8;
  if (info.Length() > 4 && info[3].IsNumber() && info[4].IsNumber()) {
    o.unhush.tos = info[3].As<Napi::Number>().Int32Value();
    o.unhush.prio = info[4].As<Napi::Number>().Int32Value();
  }
  int err = 0;
  const char* what = nullptr;
  int fd = RestoreCore(st, o, &err, &what);
  if (fd < 0) { MakeError(env, err, what).ThrowAsJavaScriptException(); return env.Null(); }
  return Napi::Number::New(env, fd);
}

// tcpHandoffThaw(fd, tos, prio): a frozen socket whose connection stays here (the host took nothing) live again:
// IP_TOS and SO_PRIORITY as saved (tos >= 0; what tcpHandoffFreeze returned), TCP_REPAIR off (a window probe: its
// first packet, with its own DSCP), then the drop filter detached.
Napi::Value TcpHandoffThaw(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "tcpHandoffThaw(fd, tos, prio)").ThrowAsJavaScriptException(); return env.Null();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  SavedTos saved;
  saved.tos = info[1].As<Napi::Number>().Int32Value();
  saved.prio = info[2].As<Napi::Number>().Int32Value();
  int off = 0;
  if (!HushOff(fd, saved)) { MakeError(env, errno, "IP_TOS").ThrowAsJavaScriptException(); return env.Null(); }
  if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &off, sizeof off) != 0) { MakeError(env, errno, "TCP_REPAIR off").ThrowAsJavaScriptException(); return env.Null(); }
  if (!DropFilter(fd, false)) { MakeError(env, errno, "SO_DETACH_FILTER").ThrowAsJavaScriptException(); return env.Null(); }
  return env.Undefined();
}
// ---- end of the socket offload guest-side block ---------------------------------------------------------------

// ---- the descriptor copy (sandbox guests share the host's kernel) -------------------------------------------
// hylicsd sends on a duplicate of the guest app's own socket, taken with pidfd_getfd(2) from the process at the
// other end of the app's direct offload connection (SO_PEERPIDFD: the process that connected, race-free, no pid
// reuse). Checks and refusals here; the send is offloadTransfer's job on the duplicate.
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

// peerPidfd(unixFd) -> a pidfd (close-on-exec) of the process that connected to this Unix socket.
Napi::Value PeerPidfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) { Napi::TypeError::New(env, "peerPidfd(unixFd)").ThrowAsJavaScriptException(); return env.Null(); }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int pidfd = -1;
  socklen_t l = sizeof pidfd;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &l) != 0) { MakeError(env, errno, "SO_PEERPIDFD").ThrowAsJavaScriptException(); return env.Null(); }
  return Napi::Number::New(env, pidfd);
}

// A refusal of takePeerSocket: `code` HYLICS_ERR_OFFLOAD_FD_REFUSED and `why` (a stable word) for a descriptor that
// is not acceptable; errno-named errors (the JS side maps them) for pidfd_getfd's own failures.
Napi::Error Refused(Napi::Env env, const char* why, const char* msg) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, "HYLICS_ERR_OFFLOAD_FD_REFUSED"));
  e.Set("why", Napi::String::New(env, why));
  return e;
}

// takePeerSocket(pidfd, targetFd, nsDev, nsIno) -> { fd, localAddr, localPort, remoteAddr, remotePort, state }:
// a duplicate (close-on-exec) of fd `targetFd` of the process `pidfd`, only if it is a non-blocking, connected
// (ESTABLISHED or CLOSE_WAIT) IPv4 TCP socket whose network namespace is the one with st_dev nsDev and st_ino nsIno.
// The duplicate is closed on every refusal. Nothing about the socket is changed (its open file description is the
// app's: no flag, no option is set).
Napi::Value TakePeerSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  for (size_t i = 0; i < 4; i++) {
    if (!info[i].IsNumber()) { Napi::TypeError::New(env, "takePeerSocket(pidfd, fd, nsDev, nsIno)").ThrowAsJavaScriptException(); return env.Null(); }
  }
  int pidfd = info[0].As<Napi::Number>().Int32Value();
  double target = info[1].As<Napi::Number>().DoubleValue();
  uint64_t nsDev = static_cast<uint64_t>(info[2].As<Napi::Number>().DoubleValue());
  uint64_t nsIno = static_cast<uint64_t>(info[3].As<Napi::Number>().DoubleValue());
  if (target < 0 || target > 0x7fffffff) { Refused(env, "no-such-fd", "not a descriptor number").ThrowAsJavaScriptException(); return env.Null(); }
  long fd = syscall(SYS_pidfd_getfd, pidfd, static_cast<int>(target), 0);
  if (fd < 0) {
    if (errno == EBADF) { Refused(env, "no-such-fd", "the app has no such descriptor").ThrowAsJavaScriptException(); return env.Null(); }
    MakeError(env, errno, "pidfd_getfd").ThrowAsJavaScriptException();
    return env.Null();
  }
  int s = static_cast<int>(fd);
  auto refuse = [&](const char* why, const char* msg) -> Napi::Value {
    close(s);
    Refused(env, why, msg).ThrowAsJavaScriptException();
    return env.Null();
  };
  struct stat st;
  if (fstat(s, &st) != 0 || !S_ISSOCK(st.st_mode)) return refuse("not-socket", "the descriptor is not a socket");
  int v = 0;
  socklen_t l = sizeof v;
  if (getsockopt(s, SOL_SOCKET, SO_DOMAIN, &v, &l) != 0 || v != AF_INET) return refuse("not-ipv4", "the socket is not an IPv4 socket");
  l = sizeof v;
  if (getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &l) != 0 || v != SOCK_STREAM) return refuse("not-tcp", "the socket is not a stream socket");
  l = sizeof v;
  if (getsockopt(s, SOL_SOCKET, SO_PROTOCOL, &v, &l) != 0 || v != IPPROTO_TCP) return refuse("not-tcp", "the socket is not a TCP socket");
  struct tcp_info ti{};
  l = sizeof ti;
  if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &l) != 0) return refuse("not-tcp", "TCP_INFO failed");
  if (ti.tcpi_state != TCP_ESTABLISHED && ti.tcpi_state != TCP_CLOSE_WAIT) return refuse("not-connected", "the TCP socket is not connected (listening, closing or closed)");
  int ns = ioctl(s, SIOCGSKNS);
  if (ns < 0) return refuse("netns-unknown", "SIOCGSKNS failed");
  struct stat nst;
  int r = fstat(ns, &nst);
  close(ns);
  if (r != 0 || static_cast<uint64_t>(nst.st_dev) != nsDev || static_cast<uint64_t>(nst.st_ino) != nsIno)
    return refuse("other-netns", "the socket is not in the guest's network namespace");
  int fl = fcntl(s, F_GETFL);
  if (fl < 0 || !(fl & O_NONBLOCK)) return refuse("blocking", "the socket is blocking (the host would have to change the app's file flags)");
  sockaddr_in local{}, peer{};
  socklen_t ll = sizeof local, pl = sizeof peer;
  if (getsockname(s, reinterpret_cast<sockaddr*>(&local), &ll) != 0 || getpeername(s, reinterpret_cast<sockaddr*>(&peer), &pl) != 0 || local.sin_family != AF_INET)
    return refuse("not-connected", "getsockname/getpeername failed");
  Napi::Object o = Napi::Object::New(env);
  o.Set("fd", Napi::Number::New(env, s));
  o.Set("localAddr", AddrString(local));
  o.Set("localPort", ntohs(local.sin_port));
  o.Set("remoteAddr", AddrString(peer));
  o.Set("remotePort", ntohs(peer.sin_port));
  o.Set("state", Napi::Number::New(env, ti.tcpi_state));
  return o;
}

// closeShared(fd): close a duplicate of another process's socket on a thread of its own (CloseShared): never blocks.
Napi::Value CloseSharedJs(const Napi::CallbackInfo& info) {
  if (info[0].IsNumber()) CloseShared(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("tcpNames", Napi::Function::New(env, TcpNames));
  exports.Set("recvWithFd", Napi::Function::New(env, RecvWithFd));
  exports.Set("sendWithFd", Napi::Function::New(env, SendWithFd));
  exports.Set("openBeneath", Napi::Function::New(env, OpenBeneath));
  exports.Set("sendfile", Napi::Function::New(env, Sendfile));
  exports.Set("sendfileNow", Napi::Function::New(env, SendfileNow));
  exports.Set("abortSendfile", Napi::Function::New(env, AbortSendfile));
  exports.Set("tcpRepairDump", Napi::Function::New(env, TcpRepairDump));
  exports.Set("tcpRepairRestore", Napi::Function::New(env, TcpRepairRestore));
  exports.Set("tcpRepair", Napi::Function::New(env, TcpRepair));
  exports.Set("tcpQueues", Napi::Function::New(env, TcpQueues));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("shutdownWrite", Napi::Function::New(env, ShutdownWrite));
  exports.Set("setRecvBuffer", Napi::Function::New(env, SetRecvBuffer));
  exports.Set("abortClose", Napi::Function::New(env, AbortClose));
  exports.Set("dropFilter", Napi::Function::New(env, DropFilterJs));
  exports.Set("nftSetElems", Napi::Function::New(env, NftSetElems));
  exports.Set("tcpHandoffFreeze", Napi::Function::New(env, TcpHandoffFreeze));
  exports.Set("tcpHandoffRestore", Napi::Function::New(env, TcpHandoffRestore));
  exports.Set("tcpHandoffThaw", Napi::Function::New(env, TcpHandoffThaw));
  exports.Set("offloadTransfer", Napi::Function::New(env, OffloadTransfer));
  exports.Set("peerPidfd", Napi::Function::New(env, PeerPidfd));
  exports.Set("takePeerSocket", Napi::Function::New(env, TakePeerSocket));
  exports.Set("closeShared", Napi::Function::New(env, CloseSharedJs));
  // ADDON_VERSION in src/os/native.ts: raised when a call takes a new argument (4: offloadTransfer's head; 5: the
  // frozen socket's DSCP: tcpHandoffFreeze's, tcpHandoffRestore's and offloadTransfer's hushTos, tcpHandoffThaw; 6:
  // nftSetElems' destroy; 7: offloadTransfer's state packed as tcpHandoffFreeze's; 8: peerPidfd, takePeerSocket, closeShared,
  // offloadTransfer's sharedOut)
  exports.Set("version", Napi::Number::New(env, 8));
  return exports;
}

}  // namespace

NODE_API_MODULE(hylics_native, Init)
