#!/usr/bin/env python3
# bench/lib/splice-client.py: the benches' cheap HTTP/1.1 download client (driven by bench/lib/splice-client.ts).
# One URL per line on stdin (http://IPv4:port/path), one JSON line per download on stdout:
#   {"ok": true, "status": 200, "bytes": N, "seconds": S, "firstSeconds": F, "cpuSeconds": C}  or  {"ok": false, "error": "..."}
# Each download: connect, send `GET path HTTP/1.1` (Connection: close), read the status line and headers (peeked
# 4 KiB at a time, and only the head consumed: a peek's copy of up to 4 KiB is the only body data that ever reaches
# user space), require status 200, a Content-Length and no Transfer-Encoding, then move the body with splice(2)
# socket -> pipe -> /dev/null: the payload is never copied to user space. The download fails when the body is
# shorter or longer than Content-Length. seconds: connect to last body byte; firstSeconds: connect to the first
# body bytes moved (the server's time to start sending: its request handling, a handoff's set-up); cpuSeconds: this
# process's user + system CPU (getrusage) over the download, its startup excluded.
import fcntl
import json
import os
import resource
import socket
import struct
import sys
import time
from urllib.parse import urlsplit

PIPE_BYTES = 1 << 20  # pipe capacity asked for (F_SETPIPE_SZ): the most one splice moves
HEAD_MAX_BYTES = 64 * 1024  # status line + headers
PEEK_BYTES = 4096  # peeked per step: the only body bytes ever copied to user space (peeked, not consumed)
TIMEOUT_SECONDS = int(os.environ.get('SPLICE_CLIENT_TIMEOUT_S', '60'))  # connect, and each receive


class Fail(Exception):
    pass


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def read_head(sock):
    """The status line and headers through the blank line, consuming not one byte past it (MSG_PEEK first)."""
    head = b''
    while True:
        peek = sock.recv(PEEK_BYTES, socket.MSG_PEEK)
        if not peek:
            raise Fail('connection closed before the end of the headers')
        end = (head + peek).find(b'\r\n\r\n')
        take = len(peek) if end < 0 else end + 4 - len(head)
        got = sock.recv(take, socket.MSG_WAITALL)  # already queued: peeked above
        if len(got) != take:
            raise Fail('short read of peeked header bytes')
        head += got
        if end >= 0:
            return head[:-4]
        if len(head) > HEAD_MAX_BYTES:
            raise Fail(f'headers over {HEAD_MAX_BYTES} bytes')


def parse_head(head):
    """(status, {lower-case name: value}); rejects a malformed status line or header line."""
    lines = head.decode('latin-1').split('\r\n')
    parts = lines[0].split(' ', 2)
    if len(parts) < 2 or not parts[0].startswith('HTTP/1.') or not (len(parts[1]) == 3 and parts[1].isdigit()):
        raise Fail(f'bad status line {lines[0]!r}')
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(':')
        name = name.strip().lower()
        if not sep or not name:
            raise Fail(f'bad header line {line!r}')
        value = value.strip()
        if name == 'content-length' and headers.get(name, value) != value:
            raise Fail('conflicting Content-Length headers')
        headers[name] = value
    return int(parts[1]), headers


def body_length(status, headers):
    if status != 200:
        raise Fail(f'status {status}')
    if 'transfer-encoding' in headers:
        raise Fail(f"Transfer-Encoding {headers['transfer-encoding']} (only Content-Length bodies)")
    length = headers.get('content-length')
    if length is None or not length.isdigit():
        raise Fail(f'no valid Content-Length ({length!r})')
    return int(length)


def splice_body(sock_fd, length, pipe_r, pipe_w, null_fd):
    """(bytes moved socket -> pipe -> /dev/null, at most `length`: fewer when the server closed early; the monotonic
    time the first splice returned, or None)."""
    left = length
    first = None
    while left:
        n = os.splice(sock_fd, pipe_w, min(left, PIPE_BYTES), flags=os.SPLICE_F_MOVE | os.SPLICE_F_MORE)
        if first is None:
            first = time.monotonic()
        if n == 0:
            break
        left -= n
        while n:
            n -= os.splice(pipe_r, null_fd, n, flags=os.SPLICE_F_MOVE)
    return length - left, first


def download(url, pipe_r, pipe_w, null_fd):
    u = urlsplit(url)
    if u.scheme != 'http' or not u.hostname:
        raise Fail(f'not an http:// URL: {url}')
    path = (u.path or '/') + (f'?{u.query}' if u.query else '')
    c0 = cpu_seconds()
    t0 = time.monotonic()
    sock = socket.create_connection((u.hostname, u.port or 80), timeout=TIMEOUT_SECONDS)
    try:
        sock.settimeout(None)  # blocking fd for splice; the receive timeout below bounds a stalled server
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack('ll', TIMEOUT_SECONDS, 0))
        sock.sendall(f'GET {path} HTTP/1.1\r\nHost: {u.netloc}\r\nUser-Agent: hylics-bench-splice\r\n'
                     'Accept: */*\r\nConnection: close\r\n\r\n'.encode('latin-1'))
        status, headers = parse_head(read_head(sock))
        length = body_length(status, headers)
        got, first = splice_body(sock.fileno(), length, pipe_r, pipe_w, null_fd)
        seconds = time.monotonic() - t0
        first_seconds = (first if first is not None else time.monotonic()) - t0
        if got != length:
            raise Fail(f'body {got} bytes, Content-Length {length}')
        if sock.recv(1):  # Connection: close, so the server's FIN is next
            raise Fail(f'more body bytes than Content-Length {length}')
        return {'ok': True, 'status': status, 'bytes': got, 'seconds': seconds, 'firstSeconds': first_seconds,
                'cpuSeconds': cpu_seconds() - c0}
    finally:
        sock.close()


def main():
    pipe_r, pipe_w = os.pipe()
    try:
        fcntl.fcntl(pipe_w, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:
        pass  # over /proc/sys/fs/pipe-max-size: the default 64 KiB pipe works, in more splices
    null_fd = os.open(os.devnull, os.O_WRONLY)
    for line in sys.stdin:
        url = line.strip()
        if not url:
            continue
        try:
            out = download(url, pipe_r, pipe_w, null_fd)
        except (Fail, OSError, ValueError) as e:
            out = {'ok': False, 'error': f'{url}: {e}'}
        sys.stdout.write(json.dumps(out) + '\n')
        sys.stdout.flush()


if __name__ == '__main__':
    main()
