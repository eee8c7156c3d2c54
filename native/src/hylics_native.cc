// Hylics native addon: the two things Node.js cannot do safely or fast enough on its own.
//  - openBeneath(dirFd, relPath, wantDir): open a file inside a share with openat2(RESOLVE_BENEATH |
//    RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS); only a regular file (or a directory when asked) comes back.
//  - sendfile(outFd, inFd, offset, count, jobId, stallMs): zero-copy file -> socket, driven by ONE dedicated I/O
//    thread with its own epoll (non-blocking sendfile chunks, EAGAIN -> wait for EPOLLOUT). Neither the event loop
//    nor the libuv thread pool is ever blocked by a slow client. Completion comes back through one
//    thread-safe function. (TCP_REPAIR dump/restore will be added beside these, later.)
// Errors carry `code` = a Hylics registry code and `errno` = the errno name.
#include <napi.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

const char* RegistryCode(int err) {
  switch (err) {
    case EXDEV: return "HYLICS_ERR_PATH_ESCAPE";     // RESOLVE_BENEATH: .. or an absolute path left the dir
    case ELOOP: return "HYLICS_ERR_PATH_ESCAPE";     // RESOLVE_NO_SYMLINKS / NO_MAGICLINKS: a link on the way
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG: return "HYLICS_ERR_FILE_NOT_FOUND";
    case EACCES:
    case EPERM: return "HYLICS_ERR_FILE_ACCESS";
    case ENOSYS:
    case E2BIG: return "HYLICS_ERR_OPENAT2_UNAVAILABLE";
    case EPIPE:
    case ECONNRESET:
    case ECANCELED: return "HYLICS_ERR_PEER_CLOSED";
    case ETIMEDOUT: return "HYLICS_ERR_SEND_STALLED";
    default: return "HYLICS_ERR_NATIVE_IO";
  }
}

Napi::Error MakeError(Napi::Env env, int err, const char* what, const char* code = nullptr) {
  Napi::Error e = Napi::Error::New(env, std::string(what) + ": " + strerror(err));
  e.Set("code", Napi::String::New(env, code ? code : RegistryCode(err)));
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
              wantDir ? "HYLICS_ERR_FILE_NOT_FOUND" : "HYLICS_ERR_NOT_REGULAR_FILE").ThrowAsJavaScriptException();
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
  Napi::Promise::Deferred deferred;
  Job(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void Deliver(Napi::Env env, Napi::Function, void*, Job* job);
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
};
Engine* engine = nullptr;

void Finish(Job* job) {
  if (job->armed) epoll_ctl(engine->ep, EPOLL_CTL_DEL, job->out, nullptr);
  close(job->out);
  close(job->in);
  engine->active.erase(job->id);
  engine->tsfn.NonBlockingCall(job);
}

// One chunk per turn: a job that could take more goes to the back of the ready queue, so concurrent transfers
// advance side by side (as lighttpd's per-connection write limit does); a full socket parks on EPOLLOUT.
void Progress(Job* job) {
  while (job->remaining > 0) {
    size_t chunk = job->remaining > engine->chunk ? engine->chunk : static_cast<size_t>(job->remaining);
    ssize_t n = sendfile(job->out, job->in, &job->offset, chunk);
    if (n > 0) {
      job->sent += n; job->remaining -= n; job->lastProgress = NowMs();
      if (job->remaining > 0) { engine->ready.push_back(job->id); return; }
      continue;
    }
    if (n == 0) { job->err = ENODATA; break; }  // the file shrank under us: stop short, the caller closes
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      // edge-triggered and registered once per job: each "became writable" edge wakes us exactly once, and we
      // then write until EAGAIN again; no re-arming syscall per wake-up
      if (!job->armed) {
        struct epoll_event ev;
        ev.events = EPOLLOUT | EPOLLET;
        ev.data.u64 = job->id;  // an id, not a pointer: a stale event must never touch a freed job
        if (epoll_ctl(engine->ep, EPOLL_CTL_ADD, job->out, &ev) != 0) { job->err = errno; break; }
        job->armed = true;
      }
      return;
    }
    job->err = errno;
    break;
  }
  Finish(job);
}

void Loop() {
  struct epoll_event evs[64];
  int64_t lastCheck = NowMs();
  for (;;) {
    int n = epoll_wait(engine->ep, evs, 64, engine->ready.empty() ? 1000 : 0);
    for (int i = 0; i < n; i++) {
      if (evs[i].data.u64 == 0) {
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
    for (auto& kv : engine->active) if (kv.second->stallMs > 0 && now - kv.second->lastProgress > kv.second->stallMs) stalled.push_back(kv.second);
    for (Job* j : stalled) { j->err = ETIMEDOUT; Finish(j); }
  }
}

void Deliver(Napi::Env env, Napi::Function, void*, Job* job) {
  if (env != nullptr) {
    if (job->err == 0) {
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

Napi::Value Sendfile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
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
  // the socket must be non-blocking (libuv's already are); this only makes sure of it for other callers
  int fl = fcntl(out, F_GETFL);
  if (fl >= 0 && !(fl & O_NONBLOCK)) fcntl(out, F_SETFL, fl | O_NONBLOCK);
  Job* job = new Job(env);
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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("openBeneath", Napi::Function::New(env, OpenBeneath));
  exports.Set("sendfile", Napi::Function::New(env, Sendfile));
  exports.Set("sendfileNow", Napi::Function::New(env, SendfileNow));
  exports.Set("abortSendfile", Napi::Function::New(env, AbortSendfile));
  exports.Set("version", Napi::Number::New(env, 1));
  return exports;
}

}  // namespace

NODE_API_MODULE(hylics_native, Init)
