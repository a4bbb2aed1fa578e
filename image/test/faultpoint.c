/* faultpoint.so — TEST IMAGE ONLY (otasuke-test.img, never otasuke.img): stops the
 * agent or fwd at an exact point so the fault tests cut the power in the same window
 * every run (tests/image/faults.sh), instead of after a random delay.
 *
 * Preloaded into otasuke-agent and otasuke-fwd by a drop-in of the test image. Disarmed
 * it only costs a failed open() per rename and per nftables batch. The test arms it by
 * writing one line to /run/otasuke-fault/arm:
 *   before-rename NAME   rename(x, .../NAME) is about to run: NAME.tmp.* is complete
 *                        and fsynced, NAME still the old file
 *   after-rename NAME    rename done, the directory not yet fsynced
 *   before-commit        fwd is about to send an nftables batch: the kernel has not
 *                        seen it
 *   after-commit         the kernel applied the batch; fwd has not recorded it yet
 * On a hit the process writes "POINT OLDPATH -> NEWPATH" (or "POINT") to
 * /run/otasuke/fault-hit, logs it on stderr (the journal) and waits forever; the test
 * polls for that file through its shell on ttyS1 and then kills qemu. The arm file is
 * on /run: a reboot disarms. Only the first hit counts (the process never resumes). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ARM_FILE "/run/otasuke-fault/arm"
#define HIT_FILE "/run/otasuke/fault-hit"

/* The armed point: "before-rename domains.set" -> when "before", what "rename", arg. */
static int armed(const char *what, const char *when, const char *name)
{
    char buf[256];
    int fd = open(ARM_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    char want[128];
    snprintf(want, sizeof want, "%s-%s", when, what);
    size_t wl = strlen(want);
    if (strncmp(buf, want, wl) != 0)
        return 0;
    if (!name)
        return buf[wl] == '\0';
    return buf[wl] == ' ' && strcmp(buf + wl + 1, name) == 0;
}

static void hit(const char *point, const char *from, const char *to)
{
    char line[1024];
    int len = from ? snprintf(line, sizeof line, "%s %s -> %s\n", point, from, to)
                   : snprintf(line, sizeof line, "%s\n", point);
    if (len < 0 || (size_t)len >= sizeof line)
        len = (int)strlen(point);
    int fd = open(HIT_FILE ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        if (write(fd, line, (size_t)len) < 0) { /* nothing to do: the test times out */ }
        close(fd);
        rename(HIT_FILE ".tmp", HIT_FILE);
    }
    fprintf(stderr, "faultpoint: stopped at %s", line);
    for (;;)
        pause();   /* until qemu is killed */
}

static const char *base(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

int rename(const char *from, const char *to)
{
    static int (*real)(const char *, const char *);
    if (!real)
        real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    if (strcmp(base(to), "fault-hit") != 0 && armed("rename", "before", base(to)))
        hit("before-rename", from, to);
    int rc = real(from, to);
    if (rc == 0 && strcmp(base(to), "fault-hit") != 0 && armed("rename", "after", base(to)))
        hit("after-rename", from, to);
    return rc;
}

/* An nftables transaction: a netlink message starting with NFNL_MSG_BATCH_BEGIN. */
static int is_batch(int fd, const void *buf, size_t len)
{
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    if (len < sizeof(struct nlmsghdr) || getsockname(fd, (struct sockaddr *)&sa, &sl) < 0 ||
        sa.ss_family != AF_NETLINK)
        return 0;
    const struct nlmsghdr *h = buf;
    return h->nlmsg_type == NFNL_MSG_BATCH_BEGIN;
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
               socklen_t tolen)
{
    static ssize_t (*real)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
    if (!real)
        real = (ssize_t (*)(int, const void *, size_t, int, const struct sockaddr *,
                            socklen_t))dlsym(RTLD_NEXT, "sendto");
    int batch = is_batch(fd, buf, len);
    if (batch && armed("commit", "before", NULL))
        hit("before-commit", NULL, NULL);
    ssize_t rc = real(fd, buf, len, flags, to, tolen);
    if (batch && rc >= 0 && armed("commit", "after", NULL))
        hit("after-commit", NULL, NULL);
    return rc;
}
