#!/usr/bin/env python3
"""A client in the style of the seed blog's, written from the blog's description of its protocol
(not from its code) so lockfair's tests can face lockfair with the blog's side of the exchange.

Creates a 64-byte memfd (MFD_CLOEXEC | MFD_ALLOW_SEALING) sealed with F_SEAL_GROW |
F_SEAL_SHRINK | F_SEAL_SEAL, sends it from an unbound Unix datagram socket to the server's path
as SCM_RIGHTS with the bare payload `CACHEDFILE HELLO` (no reply comes), then loops ITERATIONS
times: whole-file F_OFD_SETLKW write lock through its descriptor; if the shared file offset is
not 0 it is the reader's turn, so pread that many bytes from offset 0, check they are the next
line ("0\\n", "1\\n", ...), and lseek back to 0; otherwise count a whoop; unlock. Prints its whoops
and wrong reads.

Usage: blog_client.py [SOCKET_PATH [ITERATIONS]]. Stdlib only; an alarm bounds its runtime.
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
ALARM_S = 30

F_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", 37)
F_OFD_SETLKW = getattr(fcntl, "F_OFD_SETLKW", 38)
F_ADD_SEALS = getattr(fcntl, "F_ADD_SEALS", 1033)
F_SEAL_SEAL = getattr(fcntl, "F_SEAL_SEAL", 0x1)
F_SEAL_SHRINK = getattr(fcntl, "F_SEAL_SHRINK", 0x2)
F_SEAL_GROW = getattr(fcntl, "F_SEAL_GROW", 0x4)


def flock(kind):
    """struct flock for the whole file (x86_64 layout: short, short, pad, off_t, off_t, pid_t, pad).
    l_pid must be 0 for OFD locks."""
    return struct.pack("=hh4xqqi4x", kind, os.SEEK_SET, 0, 0, 0)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/test_socket"
    iterations = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    signal.alarm(ALARM_S)

    fd = os.memfd_create("cachedfile", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, SIZE)
    fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL)

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.sendmsg([HELLO],
                     [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))],
                     0, path)
    except (FileNotFoundError, ConnectionRefusedError):
        print(f"nobody is listening at {path}", file=sys.stderr)
        return 1

    whoops = 0
    wrong_reads = 0
    read = 0
    for _ in range(iterations):
        fcntl.fcntl(fd, F_OFD_SETLKW, flock(fcntl.F_WRLCK))
        pos = os.lseek(fd, 0, os.SEEK_CUR)
        if pos != 0:
            if os.pread(fd, pos, 0) != f"{read}\n".encode():
                wrong_reads += 1
            read += 1
            os.lseek(fd, 0, os.SEEK_SET)
        else:
            whoops += 1
        fcntl.fcntl(fd, F_OFD_SETLK, flock(fcntl.F_UNLCK))

    print(f"Ending connection, whoops = {whoops}, wrong reads = {wrong_reads}", flush=True)
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
