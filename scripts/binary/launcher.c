/*
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
