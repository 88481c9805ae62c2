/*
 * spaceport-init: the first process of every app container (engine/app_init.py).
 *
 * It runs the app with its stdout and stderr on pipes of its own and passes at most RATE bytes
 * per second of each to the engine's log (a token bucket holding BURST bytes), in whole lines.
 * What is over is dropped, not queued, with one "[spaceport] ... dropped" line per second on that
 * stream saying how much; so an app printing megabytes per second neither fills the node's
 * log pipeline nor blocks on it. As PID 1 it forwards signals to the app, reaps the orphans
 * the app leaves, and exits with the app's status (128+N when signal N ended it).
 *
 * Usage: spaceport-init RATE BURST -- PROGRAM [ARGUMENT...]
 * Static: it runs in any image (scratch, distroless, musl) with no library of its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536
#define DRAIN_AFTER_EXIT_S 2.0 /* output still coming once the app exited (its orphans) */
#define WRITE_WAIT_MS 200      /* the engine reads its end slowly: wait this long, then drop */

struct stream {
    const char *name;
    int in;  /* read end of the app's pipe; -1 once closed */
    int out; /* the container's own stdout or stderr */
    double tokens;
    unsigned long long dropped; /* since the last note */
    double noted_at;
    char last;    /* last byte passed: a note starts on a line of its own */
    int skipping; /* dropping the rest of a line that did not fit */
};

static pid_t app = -1;
static double rate, burst;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void forward(int sig) {
    if (app > 0)
        kill(app, sig);
}

/* Writes what the engine takes within WRITE_WAIT_MS; the rest counts as dropped. */
static void emit(struct stream *s, const char *buf, size_t n) {
    size_t done = 0;
    double give_up = now() + WRITE_WAIT_MS / 1000.0;
    while (done < n) {
        ssize_t w = write(s->out, buf + done, n - done);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        double left = give_up - now();
        if (w == 0 || errno != EAGAIN || left <= 0)
            break;
        struct pollfd out = {s->out, POLLOUT, 0};
        poll(&out, 1, (int)(left * 1000) + 1);
    }
    if (done > 0)
        s->last = buf[done - 1];
    s->dropped += n - done;
}

static void note(struct stream *s, double t) {
    char line[256];
    int len = snprintf(line, sizeof line,
                       "%s[spaceport] %llu bytes of %s dropped: the app logs faster than %.0f "
                       "bytes/s\n",
                       s->last == '\n' || s->last == 0 ? "" : "\n", s->dropped, s->name, rate);
    s->dropped = 0;
    s->noted_at = t;
    if (len > 0) {
        s->last = 0;
        emit(s, line, (size_t)len);
        s->dropped = 0; /* a note that did not fit is not news */
    }
}

/* Passes whole lines while the bucket holds them; past it, drops up to the next line's start
 * (a line cut in two would join the next one in the log). */
static void pass(struct stream *s, const char *buf, size_t n) {
    size_t start = 0;
    if (s->skipping) {
        const char *nl = memchr(buf, '\n', n);
        start = nl ? (size_t)(nl - buf) + 1 : n;
        s->dropped += start;
        s->skipping = nl == NULL;
    }
    size_t rest = n - start, allowed = rest;
    if (s->tokens < (double)rest) {
        allowed = (size_t)s->tokens;
        while (allowed > 0 && buf[start + allowed - 1] != '\n')
            allowed--;
        s->dropped += rest - allowed;
        s->skipping = buf[n - 1] != '\n';
    }
    if (allowed > 0) {
        s->tokens -= (double)allowed;
        emit(s, buf + start, allowed);
    }
}

static void run_app(char **argv, int out_pipe[2], int err_pipe[2]) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    /* An image's own tini, now under this init, keeps reaping without a warning: told to
     * register as a subreaper only where the kernel has them (gVisor's may not; tini would
     * then refuse to start). */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) == 0)
        setenv("TINI_SUBREAPER", "1", 0);
    execvp(argv[0], argv);
    int code = errno == ENOENT ? 127 : 126;
    dprintf(STDERR_FILENO, "spaceport-init: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(code);
}

int main(int argc, char **argv) {
    if (argc < 5 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: spaceport-init RATE BURST -- PROGRAM [ARGUMENT...]\n");
        return 2;
    }
    rate = strtod(argv[1], NULL);
    burst = strtod(argv[2], NULL);
    if (burst < rate)
        burst = rate;

    int out_pipe[2], err_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
        perror("spaceport-init: pipe");
        return 1;
    }
    static const int forwarded[] = {SIGHUP,  SIGINT,  SIGQUIT, SIGTERM, SIGUSR1,
                                    SIGUSR2, SIGWINCH, SIGALRM, SIGCONT};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaction(forwarded[i], &sa, NULL);

    app = fork();
    if (app < 0) {
        perror("spaceport-init: fork");
        return 1;
    }
    if (app == 0)
        run_app(argv + 4, out_pipe, err_pipe);
    close(out_pipe[1]);
    close(err_pipe[1]);

    struct stream streams[2] = {
        {"stdout", out_pipe[0], STDOUT_FILENO, burst, 0, 0, 0, 0},
        {"stderr", err_pipe[0], STDERR_FILENO, burst, 0, 0, 0, 0},
    };
    for (int i = 0; i < 2; i++) {
        fcntl(streams[i].in, F_SETFL, fcntl(streams[i].in, F_GETFL) | O_NONBLOCK);
        fcntl(streams[i].out, F_SETFL, fcntl(streams[i].out, F_GETFL) | O_NONBLOCK);
    }

    static char buf[CHUNK];
    int status = 0, exited = 0;
    double last = now(), exited_at = 0;
    for (;;) {
        struct pollfd fds[2];
        struct stream *polled[2];
        nfds_t n = 0;
        for (int i = 0; i < 2; i++) {
            if (streams[i].in >= 0) {
                fds[n].fd = streams[i].in;
                fds[n].events = POLLIN;
                fds[n].revents = 0;
                polled[n++] = &streams[i];
            }
        }
        int ready = poll(n ? fds : NULL, n, exited ? 100 : 250);
        double t = now();
        for (int i = 0; i < 2; i++) {
            streams[i].tokens += (t - last) * rate;
            if (streams[i].tokens > burst)
                streams[i].tokens = burst;
        }
        last = t;
        for (nfds_t i = 0; ready > 0 && i < n; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t got = read(fds[i].fd, buf, sizeof buf);
            if (got > 0) {
                pass(polled[i], buf, (size_t)got);
            } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(polled[i]->in);
                polled[i]->in = -1;
            }
        }
        pid_t pid;
        int st;
        while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
            if (pid == app && !exited) {
                status = st;
                exited = 1;
                exited_at = t;
            }
        }
        for (int i = 0; i < 2; i++) {
            if (streams[i].dropped > 0 && t - streams[i].noted_at >= 1.0)
                note(&streams[i], t);
        }
        if (exited && (n == 0 || ready == 0 || t - exited_at > DRAIN_AFTER_EXIT_S))
            break;
    }
    for (int i = 0; i < 2; i++) {
        if (streams[i].dropped > 0)
            note(&streams[i], now());
    }
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
