/* Domain-set micro benchmark: open time, resident memory of the mapping, lookup rate.
 *   dsetbench SET QUERIES...   (query files: one name per line)
 * Prints one JSON object. Built and run by tests/bench/dset/run.sh. */
#include "domainset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU time too: on a busy 2-core box wall time mostly measures the scheduler */
static double cpu(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

/* kB of a field of /proc/self/status ("RssFile:", "VmRSS:") */
static long status_kb(const char *field)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, strlen(field)) == 0)
            kb = strtol(line + strlen(field), NULL, 10);
    fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    char err[512], line[512];
    char **q = NULL;
    size_t nq = 0, cap = 0, verdicts[3] = { 0 };
    struct dset *set;
    struct dset_match m;
    double t0, t1, t2, t3, c0, c1, c2, c3;
    long file_before, file_open, file_after, rss_after, hwm;

    if (argc < 3) {
        fprintf(stderr, "usage: dsetbench SET QUERIES...\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        FILE *f = fopen(argv[i], "r");
        if (!f) {
            perror(argv[i]);
            return 1;
        }
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, " \r\n")] = 0;
            if (!line[0])
                continue;
            if (nq == cap) {
                cap = cap ? cap * 2 : 1 << 16;
                q = realloc(q, cap * sizeof *q);
            }
            q[nq++] = strdup(line);
        }
        fclose(f);
    }
    file_before = status_kb("RssFile:");
    t0 = now();
    c0 = cpu();
    set = dset_open(argv[1], err, sizeof err);
    c1 = cpu();
    t1 = now();
    if (!set) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    file_open = status_kb("RssFile:");
    t2 = now();
    c2 = cpu();
    for (size_t i = 0; i < nq; i++)
        verdicts[dset_lookup(set, q[i], strlen(q[i]), &m)]++;
    c3 = cpu();
    t3 = now();
    file_after = status_kb("RssFile:");
    rss_after = status_kb("VmRSS:");
    hwm = status_kb("VmHWM:");
    printf("{\"names\":%llu,\"open_ms\":%.2f,\"open_cpu_ms\":%.2f,\"lookup_bytes\":%zu,"
           "\"lookup_bytes_per_name\":%.2f,\"set_resident_kb_after_open\":%ld,"
           "\"set_resident_kb_after_lookups\":%ld,\"set_resident_bytes_per_name\":%.2f,"
           "\"process_rss_kb\":%ld,\"process_peak_rss_kb\":%ld,\"queries\":%zu,\"blocked\":%zu,\"allowed\":%zu,"
           "\"none\":%zu,\"ns_per_lookup\":%.1f,\"cpu_ns_per_lookup\":%.1f}\n",
           (unsigned long long)dset_name_count(set), (t1 - t0) * 1e3, (c1 - c0) * 1e3,
           dset_lookup_bytes(set),
           (double)dset_lookup_bytes(set) / (double)dset_name_count(set),
           file_open - file_before, file_after - file_before,
           (double)(file_after - file_before) * 1024.0 / (double)dset_name_count(set),
           rss_after, hwm, nq, verdicts[DSET_BLOCK], verdicts[DSET_ALLOW_VERDICT],
           verdicts[DSET_NONE], (t3 - t2) * 1e9 / (double)(nq ? nq : 1),
           (c3 - c2) * 1e9 / (double)(nq ? nq : 1));
    dset_close(set);
    for (size_t i = 0; i < nq; i++)
        free(q[i]);
    free(q);
    return 0;
}
