#!/usr/bin/env python3
"""A server that runs the seed blog's server protocol to the letter, in lockfair's own code (not
the blog's), so lockfair's tests can face lockfair with the blog's side of the exchange.

Binds a Unix datagram socket (default /tmp/test_socket) and serves datagrams one after another,
forever. Each receive takes at most 20 bytes and at most one descriptor (SCM_RIGHTS). A datagram
that is not `CACHEDFILE HELLO` with one descriptor is complained about on stderr and skipped.
For a hello it keeps n, from 0, and loops while n < TURNS (the blog's 100):

    F_OFD_SETLKW write lock on the whole file through the received descriptor
    pos = lseek(fd, 0, SEEK_CUR)
    pos == 0: write the decimal digits of n (no newline) at the current offset; n += 1
    otherwise: whoops += 1
    F_OFD_SETLKW unlock, same range

Only a turn moves n, so it ends after exactly TURNS turns, however many whoops that took. Then
it prints `Ending connection, whoops = W`, keeps the descriptor open (as the blog's server does),
and waits for the next datagram. Like the blog's server it never gives up on a client that died:
that is lockfair's side's job. Its only bound is the stand-in's own alarm (ALARM_S), so a test
that dies without killing it leaves nothing running for long.

Usage: blog_server.py [SOCKET_PATH [TURNS]]. Stdlib only, Python 3.8+, Linux x86_64/aarch64.
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
RECEIVE_BYTES = 20
ALARM_S = 300

# Not every Python names the OFD commands; these are Linux's values.
F_OFD_SETLKW = getattr(fcntl, "F_OFD_SETLKW", 38)


def flock(kind):
    """struct flock for the whole file: l_type, l_whence = SEEK_SET, l_start = 0, l_len = 0,
    l_pid = 0 (64-bit layout: short, short, pad, off_t, off_t, pid_t, pad)."""
    return struct.pack("=hh4xqqi4x", kind, os.SEEK_SET, 0, 0, 0)


LOCK = flock(fcntl.F_WRLCK)
UNLOCK = flock(fcntl.F_UNLCK)


def receive(sock):
    """One datagram: at most RECEIVE_BYTES bytes and at most one descriptor (the kernel closes
    any that do not fit). Returns the text and the descriptor, or None."""
    int_size = array.array("i").itemsize
    msg, ancdata, _flags, _addr = sock.recvmsg(RECEIVE_BYTES, socket.CMSG_SPACE(int_size))
    fd = None
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS and len(data) >= int_size:
            fd = array.array("i", data[:int_size])[0]
    return msg, fd


def serve(fd, turns):
    """The blog's writer loop on one descriptor."""
    n = 0
    whoops = 0
    while n < turns:
        fcntl.fcntl(fd, F_OFD_SETLKW, LOCK)
        pos = os.lseek(fd, 0, os.SEEK_CUR)
        if pos == 0:
            os.write(fd, str(n).encode())
            n += 1
        else:
            whoops += 1
        fcntl.fcntl(fd, F_OFD_SETLKW, UNLOCK)
    print(f"Ending connection, whoops = {whoops}", flush=True)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/test_socket"
    turns = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    signal.alarm(ALARM_S)

    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    while True:
        msg, fd = receive(sock)
        if msg != HELLO or fd is None:
            print(f"expected {HELLO!r} with a descriptor, got {msg!r}", file=sys.stderr, flush=True)
            if fd is not None:
                os.close(fd)
            continue
        serve(fd, turns)


if __name__ == "__main__":
    sys.exit(main())
