#!/usr/bin/env python3
"""A server in the style of the seed blog's, written from the blog's description of its protocol
(not from its code) so lockfair's tests can face lockfair with the blog's side of the exchange.

Binds a Unix datagram socket (default /tmp/test_socket), receives one datagram whose payload is
`CACHEDFILE HELLO` with one descriptor (SCM_RIGHTS), then loops ITERATIONS times: whole-file
F_OFD_SETLKW write lock through that descriptor; if the shared file offset is 0 it is the writer's
turn, so write the next line ("0\\n", "1\\n", ...), which moves the offset; otherwise count a whoop;
unlock. Prints `Ending connection, whoops = N`.

Usage: blog_server.py [SOCKET_PATH [ITERATIONS]]. Stdlib only. Bounded: the receive times out,
and an alarm ends the process whatever happens.
"""

import array
import fcntl
import os
import signal
import socket
import stat
import struct
import sys

HELLO = b"CACHEDFILE HELLO"
RECEIVE_TIMEOUT_S = 10
ALARM_S = 30

# Not every Python names the OFD commands; these are Linux's values.
F_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", 37)
F_OFD_SETLKW = getattr(fcntl, "F_OFD_SETLKW", 38)


def flock(kind):
    """struct flock for the whole file (x86_64 layout: short, short, pad, off_t, off_t, pid_t, pad).
    l_pid must be 0 for OFD locks."""
    return struct.pack("=hh4xqqi4x", kind, os.SEEK_SET, 0, 0, 0)


def receive(sock):
    """One datagram and the descriptors that came with it (all of them, to close extras)."""
    int_size = array.array("i").itemsize
    msg, ancdata, flags, _addr = sock.recvmsg(1024, socket.CMSG_SPACE(16 * int_size))
    fds = array.array("i")
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % int_size])
    return msg, list(fds), flags


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/test_socket"
    iterations = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    signal.alarm(ALARM_S)

    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(RECEIVE_TIMEOUT_S)
    print(f"Waiting for a file descriptor on {path}", flush=True)
    try:
        msg, fds, flags = receive(sock)
    except socket.timeout:
        print(f"no hello within {RECEIVE_TIMEOUT_S} s", file=sys.stderr)
        os.unlink(path)
        return 1
    if msg != HELLO or len(fds) != 1 or flags & socket.MSG_CTRUNC:
        print(f"expected {HELLO!r} with one descriptor, got {msg!r} with {len(fds)}",
              file=sys.stderr)
        for fd in fds:
            os.close(fd)
        os.unlink(path)
        return 1
    fd = fds[0]

    whoops = 0
    written = 0
    for _ in range(iterations):
        fcntl.fcntl(fd, F_OFD_SETLKW, flock(fcntl.F_WRLCK))
        if os.lseek(fd, 0, os.SEEK_CUR) == 0:
            os.write(fd, f"{written}\n".encode())
            written += 1
        else:
            whoops += 1
        fcntl.fcntl(fd, F_OFD_SETLK, flock(fcntl.F_UNLCK))

    print(f"Ending connection, whoops = {whoops}", flush=True)
    os.close(fd)
    sock.close()
    os.unlink(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
