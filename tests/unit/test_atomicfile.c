/* Atomic replacement: the target holds the old or the new content, modes are exact,
 * failures leave no temporary files behind, and errbuf formats safely. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomicfile.h"
#include "errbuf.h"

static char dir[] = "/tmp/otasuke-atomic-XXXXXX";
static char err[512];

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static void read_back(const char *path, char *buf, size_t len)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, len - 1, fp);
    buf[n] = '\0';
    fclose(fp);
}

static int count_entries(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void write_replace_and_mode(void **state)
{
    (void)state;
    char path[256], buf[64];
    struct stat st;
    snprintf(path, sizeof path, "%s/a.set", dir);
    assert_int_equal(atomic_write_file(path, "old", 3, 0644, err, sizeof err), 0);
    assert_int_equal(atomic_write_file(path, "new!", 4, 0600, err, sizeof err), 0);
    read_back(path, buf, sizeof buf);
    assert_string_equal(buf, "new!");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(count_entries(), 1); /* no temporary left */
}

static void abort_keeps_old(void **state)
{
    (void)state;
    char path[256], buf[64];
    struct atomic_file f;
    snprintf(path, sizeof path, "%s/b.set", dir);
    assert_int_equal(atomic_write_file(path, "keep", 4, 0644, err, sizeof err), 0);
    assert_int_equal(atomic_open(&f, path, 0644, err, sizeof err), 0);
    assert_int_equal(atomic_write(&f, "half", 4, err, sizeof err), 0);
    read_back(path, buf, sizeof buf);
    assert_string_equal(buf, "keep"); /* nothing visible before commit */
    atomic_abort(&f);
    atomic_abort(&f);
    read_back(path, buf, sizeof buf);
    assert_string_equal(buf, "keep");
}

static void touch(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
}

static int exists(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void sweep_removes_only_dead_writers_files(void **state)
{
    (void)state;
    char mine[64];
    /* pid 2^22+1 is above the kernel's pid_max limit: never a running process */
    touch("domains.set.tmp.4194305");
    snprintf(mine, sizeof mine, "fw.set.tmp.%ld", (long)getpid());
    touch(mine);                       /* a live writer: this process */
    touch("policy.set.tmp.1");         /* init is alive */
    touch("notes.tmp.txt");            /* not NAME.tmp.PID */
    touch("keep.set");
    /* the same PID, but the file is older than this process: a writer of an earlier
     * boot whose PID this process got (what the image's power-cut test met) */
    char reused[64], path[320];
    snprintf(reused, sizeof reused, "policy.set.tmp.%ld", (long)getpid());
    touch(reused);
    snprintf(path, sizeof path, "%s/%s", dir, reused);
    struct timespec old[2] = { { time(NULL) - 3600 * 24 * 30, 0 }, { time(NULL) - 3600 * 24 * 30, 0 } };
    assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
    /* this boot, but written before this process started: a dead writer whose PID we got
     * (the machine has been up for more than the 20 s this needs) */
    char before_us[64];
    snprintf(before_us, sizeof before_us, "hub.json.tmp.%ld", (long)getpid());
    touch(before_us);
    snprintf(path, sizeof path, "%s/%s", dir, before_us);
    struct timespec up;
    clock_gettime(CLOCK_BOOTTIME, &up);
    if (up.tv_sec > 60) {
        struct timespec earlier[2] = { { time(NULL) - 20, 0 }, { time(NULL) - 20, 0 } };
        assert_int_equal(utimensat(AT_FDCWD, path, earlier, 0), 0);
    } else {
        unlink(path);   /* a machine booted under a minute ago: this case cannot be set up */
    }
    assert_int_equal(atomic_sweep(dir), up.tv_sec > 60 ? 3 : 2);
    assert_false(exists("domains.set.tmp.4194305"));
    assert_false(exists(reused));
    assert_false(exists(before_us));
    assert_true(exists(mine));
    assert_true(exists("policy.set.tmp.1"));
    assert_true(exists("notes.tmp.txt"));
    assert_true(exists("keep.set"));
    assert_int_equal(atomic_sweep("/nonexistent-otasuke-dir"), -1);
}

static void errors_name_the_file(void **state)
{
    (void)state;
    assert_int_equal(atomic_write_file("/nonexistent-dir/x.set", "x", 1, 0644, err, sizeof err), -1);
    char want[128];
    snprintf(want, sizeof want, "/nonexistent-dir/x.set.tmp.%ld: cannot create: No such file or directory",
             (long)getpid());
    assert_string_equal(err, want);
}

static void errbuf_formats_and_tolerates_null(void **state)
{
    (void)state;
    char small[8];
    assert_int_equal(errbuf_set(small, sizeof small, "line %d: %s", 12, "too long"), -1);
    assert_string_equal(small, "line 12");
    assert_int_equal(errbuf_set(NULL, 0, "ignored %d", 1), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(write_replace_and_mode),
        cmocka_unit_test(abort_keeps_old),
        cmocka_unit_test(errors_name_the_file),
        cmocka_unit_test(sweep_removes_only_dead_writers_files),
        cmocka_unit_test(errbuf_formats_and_tolerates_null),
    };
    return cmocka_run_group_tests_name("atomicfile", tests, setup, teardown);
}
