#!/usr/bin/env python3
"""Socket offload from a non-Node app (docs/offload-socket.md, "Other languages"): a small HTTP/1.1 keep-alive file
server, run inside a guest, whose response bodies the host sends. The app passes its response headers in the
request (`head`, base64: the host sends them with the body's first bytes; with --via cli on the command's stdin,
`--head-file -`) and
hands its connected socket to the guest agent over /run/hylics/offload.sock with SCM_RIGHTS (--via socket, the default), or
runs `hylics offload sendfile --fd N FILE` with the socket inherited (--via cli). Either way the agent does the
TCP_REPAIR handoff (the app needs no CAP_NET_ADMIN) and the connection comes back on the same socket, so
keep-alive goes on.

    python3 file_server.py --root /mnt/hylics --port 8090 [--via socket|cli]
"""
import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import threading

OFFLOAD_SOCKET = os.environ.get('HYLICS_OFFLOAD_SOCKET', '/run/hylics/offload.sock')


def hylics_sendfile(conn, path, offset=0, count=None, via='socket', head=None):
    """Send `head` (bytes, e.g. the response headers; at most 16 KiB) and then `count` bytes of `path` (in the share)
    from `offset` on `conn`, by the host when it can.
    Returns {"bytes", "by": "host"|"guest", "reason"?, "finished"?} (finished: the host ended the connection, close
    `conn`); raises RuntimeError("CODE: message") when the connection was
    lost in the handoff (then close `conn`: it is frozen and closes without a segment)."""
    if via == 'cli':
        argv = ['hylics', 'offload', 'sendfile', '--fd', str(conn.fileno()), '--offset', str(offset)]
        if count is not None:
            argv += ['--count', str(count)]
        if head:
            argv += ['--head-file', '-']  # the head on the command's stdin
        out = subprocess.run(argv + [path], pass_fds=[conn.fileno()], input=head or b'', capture_output=True)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.decode().strip())
        return json.loads(out.stdout)
    req = {'path': path, 'offset': offset}
    if count is not None:
        req['count'] = count
    if head:
        req['head'] = base64.b64encode(head).decode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as agent:
        agent.connect(OFFLOAD_SOCKET)
        socket.send_fds(agent, [json.dumps(req).encode()], [conn.fileno()])
        reply = b''
        while True:
            d = agent.recv(65536)
            if not d:
                break
            reply += d
    r = json.loads(reply)
    if not r.get('ok'):
        raise RuntimeError(f"{r['error']['code']}: {r['error']['message']}")
    return r


def serve(conn, root, via):
    buf = b''
    with conn:
        while True:
            while b'\r\n\r\n' not in buf:
                d = conn.recv(65536)
                if not d:
                    return
                buf += d
            head, buf = buf.split(b'\r\n\r\n', 1)
            method, target = head.split(b'\r\n', 1)[0].decode('latin1').split(' ')[:2]
            path = os.path.realpath(os.path.join(root, target.lstrip('/')))
            if method != 'GET' or not path.startswith(os.path.realpath(root) + '/') or not os.path.isfile(path):
                conn.sendall(b'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n')
                continue
            size = os.path.getsize(path)
            head = f'HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            try:
                r = hylics_sendfile(conn, path, 0, size, via, head)
            except RuntimeError as e:
                print(f'file_server: request failed: {e}', file=sys.stderr, flush=True)
                return
            print(f"file_server: {target} {r['bytes']} bytes by {r['by']}{' (' + r['reason'] + ')' if r.get('reason') else ''}", file=sys.stderr, flush=True)
            if r.get('finished'):
                return  # the host ended the connection (the client closed its side): ours is frozen, close it


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--root', default='/mnt/hylics')
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--via', choices=['socket', 'cli'], default='socket')
    a = ap.parse_args()
    srv = socket.create_server(('0.0.0.0', a.port), reuse_port=False)
    print(f'file_server: serving {a.root} on port {a.port} (via {a.via})', file=sys.stderr, flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, a.root, a.via), daemon=True).start()


if __name__ == '__main__':
    main()
