#!/usr/bin/env python3
"""pty_run.py — run a command on a fresh pseudo-terminal (its controlling
terminal, so /dev/tty is that pty), answer its prompts, and report what the
terminal showed.

usage: pty_run.py [--timeout SECS] [--secret] [--answer REGEX TEXT]... -- CMD [ARG...]

Each --answer waits (in order) until the terminal output so far matches
REGEX, then types TEXT followed by Enter. With --secret it first waits
until the command has switched the terminal's echo off (as a password
prompt must), so that a typed secret can only show if the command echoes
it itself; a prompt that never switches echo off is an error. When every answer has been typed,
the output is read to the end. The whole terminal transcript is written to
stdout; the exit status is the command's (128+N when a signal N ended it).
Exits 124 with a message on stderr when a prompt did not appear within
SECS (default 20) or the command did not end within SECS after the last
answer; the transcript so far is still printed.
"""
import os
import pty
import re
import select
import signal
import sys
import termios
import time


def usage(msg):
    sys.stderr.write("pty_run.py: %s\n%s" % (msg, __doc__.split("\n\n")[1]))
    sys.exit(2)


def parse(argv):
    timeout, answers, secret, i = 20.0, [], False, 0
    while i < len(argv) and argv[i] != "--":
        if argv[i] == "--secret":
            secret = True
            i += 1
        elif argv[i] == "--timeout" and i + 1 < len(argv):
            timeout = float(argv[i + 1])
            i += 2
        elif argv[i] == "--answer" and i + 2 < len(argv):
            answers.append((re.compile(argv[i + 1].encode()), argv[i + 2].encode()))
            i += 3
        else:
            usage("unknown or incomplete option '%s'" % argv[i])
    if i + 1 >= len(argv):
        usage("no command after --")
    return timeout, answers, secret, argv[i + 1:]


def read_some(fd, deadline):
    """Bytes from the pty master; b"" at EOF; None when the deadline passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        return None
    ready, _, _ = select.select([fd], [], [], left)
    if not ready:
        return None
    try:
        return os.read(fd, 4096)
    except OSError:  # EIO: the slave side is closed, the command ended
        return b""


def echo_off(fd, deadline):
    """Waits until the terminal's ECHO flag is clear; False at the deadline.
    On Linux the master and the slave of a pty share one termios."""
    while termios.tcgetattr(fd)[3] & termios.ECHO:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def main():
    timeout, answers, secret, cmd = parse(sys.argv[1:])
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    out, pos, failed = b"", 0, None
    for rx, text in answers:
        deadline = time.monotonic() + timeout
        while not rx.search(out, pos):
            chunk = read_some(fd, deadline)
            if not chunk:
                failed = "no prompt matching '%s' within %gs" % (rx.pattern.decode(), timeout)
                break
            out += chunk
        if not failed and secret and not echo_off(fd, deadline):
            failed = "the terminal's echo was still on %gs after the prompt" % timeout
        if failed:
            break
        pos = len(out)
        os.write(fd, text + b"\n")
    deadline = time.monotonic() + timeout
    while not failed:
        chunk = read_some(fd, deadline)
        if chunk is None:
            failed = "the command did not end within %gs" % timeout
        elif chunk == b"":
            break
        else:
            out += chunk
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    if failed:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        sys.stderr.write("pty_run.py: %s: %s\n" % (failed, " ".join(cmd)))
        sys.exit(124)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sys.exit(128 + os.WTERMSIG(status))
    sys.exit(os.WEXITSTATUS(status))


if __name__ == "__main__":
    main()
