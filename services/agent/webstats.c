/* Dashboard numbers: queries and blocks per hour over the last 24 hours and the blocked
 * categories, counted from dnsd's events as they reach the agent. Kept in memory only
 * (24 small buckets; a restart starts from zero) so a busy resolver never turns into one
 * database write per query. The agent is single-threaded: no locking. */
#include "accounts.h"
#include "domainset.h"

#include <stdlib.h>
#include <string.h>

#define HOURS 24
#define OTHER DSET_CAT_COUNT

struct bucket {
    int64_t start;                       /* hour start (Unix seconds), 0 = unused */
    uint64_t queries, blocks;
    uint64_t cats[DSET_CAT_COUNT + 1];
};

static struct bucket ring[HOURS];

static struct bucket *bucket_at(int64_t now)
{
    int64_t start = now - now % 3600;
    struct bucket *b = &ring[(start / 3600) % HOURS];
    if (b->start != start) {
        memset(b, 0, sizeof *b);
        b->start = start;
    }
    return b;
}

void webstats_note(const char *type, const char *category, int64_t count, int64_t now)
{
    if (!type || now <= 0)
        return;
    struct bucket *b = bucket_at(now);
    if (!strcmp(type, "blocked")) {
        int c = category && *category ? dset_category_parse(category) : -1;
        b->blocks++;
        b->queries++;
        b->cats[c >= 0 && c < DSET_CAT_COUNT ? c : OTHER]++;
    } else if (!strcmp(type, "allowed") && count > 0 && count < (1 << 30)) {
        b->queries += (uint64_t)count;
    }
}

static int by_count(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "count"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "count"));
    return x < y ? 1 : x > y ? -1 : 0;
}

json_t *webstats_json(int64_t now)
{
    json_t *hours = json_array(), *top = json_array();
    uint64_t cats[DSET_CAT_COUNT + 1] = { 0 };
    int64_t cur = now - now % 3600;
    for (int i = HOURS - 1; i >= 0; i--) {
        int64_t start = cur - (int64_t)i * 3600;
        const struct bucket *b = &ring[(start / 3600) % HOURS];
        int live = b->start == start;
        json_array_append_new(hours, json_pack("{s:I, s:I, s:I}", "start", (json_int_t)start,
                                               "queries", (json_int_t)(live ? b->queries : 0),
                                               "blocks", (json_int_t)(live ? b->blocks : 0)));
        for (int c = 0; live && c <= DSET_CAT_COUNT; c++)
            cats[c] += b->cats[c];
    }
    json_t *tmp[DSET_CAT_COUNT + 1];
    size_t n = 0;
    for (int c = 0; c <= DSET_CAT_COUNT; c++)
        if (cats[c])
            tmp[n++] = json_pack("{s:s, s:I}", "category",
                                 c < DSET_CAT_COUNT ? dset_category_name(c) : "other",
                                 "count", (json_int_t)cats[c]);
    qsort(tmp, n, sizeof tmp[0], by_count);
    for (size_t i = 0; i < n && i < 5; i++)
        json_array_append(top, tmp[i]);
    for (size_t i = 0; i < n; i++)
        json_decref(tmp[i]);
    return json_pack("{s:o, s:o, s:s}", "hours", hours, "top_categories", top, "since",
                     "agent start");
}
