/* faultpoint.so — TEST IMAGE ONLY (otasuke-test.img, never otasuke.img): stops the
 * agent or fwd at an exact point so the fault tests cut the power in the same window
 * every run (tests/image/faults.sh), instead of after a random delay.
 *
 * Preloaded into otasuke-agent and otasuke-fwd by a drop-in of the test image. Disarmed
 * it only costs a failed open() per rename and per nftables batch. The test arms it by
 * writing one line to /run/otasuke-fault/arm (optionally followed by "with HEX" or
 * "without HEX": the new file or the batch must (not) hold those bytes):
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

/* Does [p, p+n) contain the bytes hex (e.g. "140a12c6")? */
static int has_bytes(const unsigned char *p, size_t n, const char *hex)
{
    unsigned char want[64];
    size_t wl = 0;
    for (; hex[0] && hex[1] && wl < sizeof want; hex += 2) {
        unsigned v;
        if (sscanf(hex, "%2x", &v) != 1)
            return 0;
        want[wl++] = (unsigned char)v;
    }
    if (!wl || n < wl)
        return 0;
    for (size_t i = 0; i + wl <= n; i++)
        if (memcmp(p + i, want, wl) == 0)
            return 1;
    return 0;
}

static int file_has_bytes(const char *path, const char *hex)
{
    static unsigned char buf[1 << 20];   /* fw.set is small; a big file is read in part */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    return n > 0 && has_bytes(buf, (size_t)n, hex);
}

/* Is the point armed? The arm line is "WHEN-WHAT [NAME] [with|without HEX]": e.g.
 * "before-rename fw.set with 140a12c6" stops only at a rename of fw.set whose new file
 * (from) holds those bytes, so an unrelated compile running at the same time cannot
 * take the stop; for commits the bytes are looked for in the batch (buf). */
static int armed(const char *what, const char *when, const char *name, const char *from,
                 const void *buf, size_t len)
{
    char line[256];
    int fd = open(ARM_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, line, sizeof line - 1);
    close(fd);
    if (n <= 0)
        return 0;
    line[n] = '\0';
    line[strcspn(line, "\n")] = '\0';
    char point[64] = "", arg1[128] = "", arg2[16] = "", arg3[130] = "";
    int k = sscanf(line, "%63s %127s %15s %129s", point, arg1, arg2, arg3);
    char want[128];
    snprintf(want, sizeof want, "%s-%s", when, what);
    if (k < 1 || strcmp(point, want) != 0)
        return 0;
    const char *cond = arg1, *hex = arg2;   /* commit: "before-commit with HEX" */
    if (name) {                             /* rename: "before-rename NAME with HEX" */
        if (strcmp(arg1, name) != 0)
            return 0;
        cond = arg2;
        hex = arg3;
    }
    if (!cond[0])
        return 1;
    int has = from ? file_has_bytes(from, hex) : has_bytes(buf, len, hex);
    if (strcmp(cond, "with") == 0)
        return has;
    if (strcmp(cond, "without") == 0)
        return !has;
    return 0;
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
    if (strcmp(base(to), "fault-hit") != 0 && armed("rename", "before", base(to), from, NULL, 0))
        hit("before-rename", from, to);
    int rc = real(from, to);
    if (rc == 0 && strcmp(base(to), "fault-hit") != 0 && armed("rename", "after", base(to), to, NULL, 0))
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
    if (batch && armed("commit", "before", NULL, NULL, buf, len))
        hit("before-commit", NULL, NULL);
    ssize_t rc = real(fd, buf, len, flags, to, tolen);
    if (batch && rc >= 0 && armed("commit", "after", NULL, NULL, buf, len))
        hit("after-commit", NULL, NULL);
    return rc;
}
