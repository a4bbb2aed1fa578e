/* fw.set: round trip, validation errors, corruption and truncation are refused. */
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
#include <unistd.h>

#include "fwset.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_fwset.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
    rmdir(dir);
    return 0;
}

static void build_sample(struct fwset *s)
{
    char err[256];
    struct iplist l;
    iplist_init(&l);
    const char *text = "192.0.2.1\n192.0.2.3\n198.51.100.0/24\n2001:db8::1\n2001:db8:1::/48\n";
    assert_int_equal(iplist_parse(&l, text, strlen(text), err, sizeof err), 0);
    iplist_normalize(&l);
    fwset_init(s);
    snprintf(s->opts.ifname[FWSET_ZONE_LAN][0], FWSET_IFNAMSIZ, "eth1");
    snprintf(s->opts.ifname[FWSET_ZONE_WAN][0], FWSET_IFNAMSIZ, "eth0");
    s->opts.nflog_group = 5;
    assert_int_equal(fwset_add_iplist(s, "blk_x", FWSET_KIND_BLOCK, &l, 3600, err, sizeof err), 0);
    static const uint8_t macs[3][6] = { { 2, 0, 0, 0, 0, 9 }, { 2, 0, 0, 0, 0, 1 }, { 2, 0, 0, 0, 0, 9 } };
    assert_int_equal(fwset_add_macs(s, "quar_mac", FWSET_KIND_QUARANTINE, macs, 3, err, sizeof err), 0);
    iplist_free(&l);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct fwset s, r;
    char err[256], path[128];
    build_sample(&s);
    snprintf(path, sizeof path, "%s/fw.set", dir);
    assert_int_equal(fwset_write(&s, path, err, sizeof err), 0);
    assert_int_equal(fwset_open(&r, path, err, sizeof err), 0);
    assert_int_equal(r.n_sets, 5);
    assert_string_equal(r.opts.ifname[FWSET_ZONE_LAN][0], "eth1");
    assert_int_equal(r.opts.nflog_group, 5);
    const struct fwset_set *v4 = fwset_find(&r, "blk_x_v4");
    assert_non_null(v4);
    assert_int_equal(v4->count, 2);
    assert_int_equal(v4->timeout, 3600);
    assert_int_equal(((const uint32_t *)v4->elems)[1], 0xc0000203u);
    const struct fwset_set *v4r = fwset_find(&r, "blk_x_v4r");
    assert_int_equal(v4r->count, 1);
    assert_int_equal(((const struct ipl_v4 *)v4r->elems)[0].hi, 0xc63364ffu);
    assert_int_equal(fwset_find(&r, "blk_x_v6")->count, 1);
    assert_int_equal(fwset_find(&r, "blk_x_v6r")->count, 1);
    const struct fwset_set *m = fwset_find(&r, "quar_mac");
    assert_int_equal(m->count, 2); /* duplicate dropped */
    assert_int_equal(((const uint8_t *)m->elems)[5], 1);
    assert_int_equal(fwset_total_elems(&r), 7);
    assert_null(fwset_find(&r, "nope"));
    /* no temporary file left behind */
    DIR *d = opendir(dir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)))
        files += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, 1);
    fwset_free(&r);
    fwset_free(&s);
}

static void write_bytes(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
}

static void expect_open_error(const char *path, const char *what)
{
    struct fwset r;
    char err[256];
    assert_int_equal(fwset_open(&r, path, err, sizeof err), -1);
    if (!strstr(err, what))
        fail_msg("error '%s' lacks '%s'", err, what);
}

static void test_corruption(void **state)
{
    (void)state;
    struct fwset s;
    char err[256], path[128], bad[128];
    build_sample(&s);
    snprintf(path, sizeof path, "%s/fw.set", dir);
    snprintf(bad, sizeof bad, "%s/bad.set", dir);
    assert_int_equal(fwset_write(&s, path, err, sizeof err), 0);
    fwset_free(&s);
    FILE *f = fopen(path, "rb");
    static uint8_t buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);

    for (size_t off = 96; off < len; off += 37) { /* every flipped body byte is caught */
        buf[off] ^= 0x40;
        write_bytes(bad, buf, len);
        expect_open_error(bad, "checksum mismatch");
        buf[off] ^= 0x40;
    }
    write_bytes(bad, buf, len - 8);
    expect_open_error(bad, "truncated");
    write_bytes(bad, buf, 50);
    expect_open_error(bad, "too short");
    write_bytes(bad, "", 0);
    expect_open_error(bad, "too short");
    buf[0] = 'X';
    write_bytes(bad, buf, len);
    expect_open_error(bad, "bad magic");
    buf[0] = 'O';
    buf[8] = 99; /* version */
    write_bytes(bad, buf, len);
    expect_open_error(bad, "format version 99");
    buf[8] = FWSET_VERSION;
    buf[12] ^= 0xff; /* byte-order mark */
    write_bytes(bad, buf, len);
    expect_open_error(bad, "byte order");
    expect_open_error("/nonexistent/fw.set", "cannot open");
}

static void test_validation(void **state)
{
    (void)state;
    struct fwset s;
    char err[256], path[128];
    snprintf(path, sizeof path, "%s/v.set", dir);
    fwset_init(&s);
    static const uint32_t unsorted[] = { 5, 3 };
    assert_int_equal(fwset_add_raw(&s, "a", FWSET_KIND_BLOCK, FWSET_E_V4, 0, unsorted, 2, err, sizeof err), 0);
    assert_int_equal(fwset_write(&s, path, err, sizeof err), -1);
    assert_string_equal(err, "set 'a' element 1: not strictly increasing");
    assert_int_equal(access(path, F_OK), -1); /* nothing written */
    fwset_free(&s);

    fwset_init(&s);
    static const struct ipl_v4 touching[] = { { 1, 5 }, { 6, 9 } };
    assert_int_equal(fwset_add_raw(&s, "r", FWSET_KIND_BLOCK, FWSET_E_V4R, 0, touching, 2, err, sizeof err), 0);
    assert_int_equal(fwset_validate(&s, err, sizeof err), -1);
    assert_non_null(strstr(err, "overlaps or touches"));
    fwset_free(&s);

    fwset_init(&s);
    static const struct ipl_v4 single_as_range[] = { { 7, 7 } };
    assert_int_equal(fwset_add_raw(&s, "r", FWSET_KIND_BLOCK, FWSET_E_V4R, 0, single_as_range, 1, err, sizeof err), 0);
    assert_int_equal(fwset_validate(&s, err, sizeof err), -1);
    assert_non_null(strstr(err, "range start not below its end"));
    fwset_free(&s);

    fwset_init(&s);
    assert_int_equal(fwset_add_raw(&s, "Bad-Name", FWSET_KIND_BLOCK, FWSET_E_V4, 0, NULL, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "a-z, 0-9, _"));
    assert_int_equal(fwset_add_raw(&s, "x", FWSET_KIND_BLOCK, FWSET_E_V4, 0, NULL, 0, err, sizeof err), 0);
    assert_int_equal(fwset_add_raw(&s, "x", FWSET_KIND_BLOCK, FWSET_E_V4, 0, NULL, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "given twice"));
    snprintf(s.opts.ifname[FWSET_ZONE_IOT][0], FWSET_IFNAMSIZ, "bad name");
    assert_int_equal(fwset_validate(&s, err, sizeof err), -1);
    assert_non_null(strstr(err, "zone iot interface 'bad name'"));
    fwset_free(&s);

    fwset_init(&s);
    s.sets[0].kind = 9;
    snprintf(s.sets[0].name, sizeof s.sets[0].name, "k");
    s.sets[0].etype = FWSET_E_V4;
    s.n_sets = 1;
    assert_int_equal(fwset_validate(&s, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown kind"));
    s.sets[0].kind = FWSET_KIND_BLOCK;
    s.sets[0].etype = 42;
    assert_int_equal(fwset_validate(&s, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown element type"));
    s.n_sets = 0;
    fwset_free(&s);
}

static void test_replace_is_atomic(void **state)
{
    (void)state;
    struct fwset s, r;
    char err[256], path[128];
    snprintf(path, sizeof path, "%s/fw.set", dir);
    build_sample(&s);
    assert_int_equal(fwset_write(&s, path, err, sizeof err), 0);
    assert_int_equal(fwset_open(&r, path, err, sizeof err), 0); /* a reader holds the old one */
    s.opts.nflog_group = 9;
    assert_int_equal(fwset_write(&s, path, err, sizeof err), 0);
    assert_int_equal(r.opts.nflog_group, 5);             /* old mapping intact */
    assert_int_equal(fwset_find(&r, "blk_x_v4")->count, 2);
    fwset_free(&r);
    assert_int_equal(fwset_open(&r, path, err, sizeof err), 0);
    assert_int_equal(r.opts.nflog_group, 9);
    fwset_free(&r);
    fwset_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_is_atomic, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
