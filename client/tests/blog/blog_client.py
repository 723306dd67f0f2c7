#!/usr/bin/env python3
"""A client that runs the seed blog's client protocol to the letter, in lockfair's own code (not
the blog's), so lockfair's tests can face lockfair with the blog's side of the exchange.

Creates a memfd with MFD_ALLOW_SEALING only (no MFD_CLOEXEC), ftruncates it to 64 bytes, seeks
to 0, seals it with F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL, connects an unbound Unix datagram
socket to the server's path and sends the 16 bytes `CACHEDFILE HELLO` with the memfd as
SCM_RIGHTS (no reply comes). Then it keeps n, from 0, and loops while n < TURNS (the blog's 100):

    F_OFD_SETLKW write lock on the whole file through its descriptor
    pos = lseek(fd, 0, SEEK_CUR)
    pos != 0: lseek(fd, 0, SEEK_SET); pread pos bytes at offset 0; compare with n; n += 1
    otherwise: whoops += 1
    F_OFD_SETLKW unlock, same range

Only a turn moves n, so it ends after exactly TURNS turns, however many whoops that took; then
it prints `total whoops W`. It counts no wrong reads; a text that is not n is shown on stderr.
Like the blog's client it never gives up on a server that died: that is lockfair's side's job.
Its only bound is the stand-in's own alarm (ALARM_S).

Usage: blog_client.py [SOCKET_PATH [TURNS]]. Stdlib only, Python 3.8+, Linux x86_64/aarch64.
"""

import array
import fcntl
import os
import signal
import socket
import struct
import sys

HELLO = b"CACHEDFILE HELLO"
SIZE = 64
ALARM_S = 300

F_OFD_SETLKW = getattr(fcntl, "F_OFD_SETLKW", 38)
F_ADD_SEALS = getattr(fcntl, "F_ADD_SEALS", 1033)
F_SEAL_SEAL = getattr(fcntl, "F_SEAL_SEAL", 0x1)
F_SEAL_SHRINK = getattr(fcntl, "F_SEAL_SHRINK", 0x2)
F_SEAL_GROW = getattr(fcntl, "F_SEAL_GROW", 0x4)


def flock(kind):
    """struct flock for the whole file: l_type, l_whence = SEEK_SET, l_start = 0, l_len = 0,
    l_pid = 0 (64-bit layout: short, short, pad, off_t, off_t, pid_t, pad)."""
    return struct.pack("=hh4xqqi4x", kind, os.SEEK_SET, 0, 0, 0)


LOCK = flock(fcntl.F_WRLCK)
UNLOCK = flock(fcntl.F_UNLCK)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/test_socket"
    turns = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    signal.alarm(ALARM_S)

    fd = os.memfd_create("cachedfile", os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, SIZE)
    os.lseek(fd, 0, os.SEEK_SET)
    fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL)

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError):
        print(f"nobody is listening at {path}", file=sys.stderr)
        return 1
    sock.sendmsg([HELLO], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])

    n = 0
    whoops = 0
    while n < turns:
        fcntl.fcntl(fd, F_OFD_SETLKW, LOCK)
        pos = os.lseek(fd, 0, os.SEEK_CUR)
        if pos != 0:
            os.lseek(fd, 0, os.SEEK_SET)
            text = os.pread(fd, pos, 0)
            if text != str(n).encode():
                print(f"turn {n}: read {text!r}", file=sys.stderr, flush=True)
            n += 1
        else:
            whoops += 1
        fcntl.fcntl(fd, F_OFD_SETLKW, UNLOCK)

    print(f"total whoops {whoops}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
