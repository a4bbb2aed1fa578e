/* The blameless post-incident report, Markdown or HTML, English or Japanese: what was
 * seen, when, on which device, what the box and people did, what was contained, and what
 * to learn. Metadata only (no payloads), so it can go to an insurer or the authorities. */
#include "incidents.h"
#include "errbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct out {
    char *buf;
    size_t len;
    FILE *f;
    int html;
};

/* Writes s, escaped for HTML when the report is HTML. */
static void put(struct out *o, const char *s)
{
    for (; s && *s; s++) {
        if (!o->html) {
            /* Keep table cells in one piece in Markdown. */
            fputs(*s == '|' ? "\\|" : *s == '\n' ? " " : (char[]){ *s, 0 }, o->f);
            continue;
        }
        switch (*s) {
        case '<': fputs("&lt;", o->f); break;
        case '>': fputs("&gt;", o->f); break;
        case '&': fputs("&amp;", o->f); break;
        case '"': fputs("&quot;", o->f); break;
        default: fputc(*s, o->f);
        }
    }
}

static void when(char *buf, size_t len, json_int_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!t || !gmtime_r(&tt, &tm))
        snprintf(buf, len, "-");
    else
        strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static const char *S(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static json_int_t I(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* A timeline step in the report's language (the owner UI's words, webui/owner tl.*);
 * a step without words here is shown by its name. */
static const char *step_words(const char *what, int ja)
{
    static const char *const words[][3] = {
        { "detected", "detected", "検知" }, { "reported", "reported", "報告" },
        { "acknowledged", "acknowledged", "確認" },
        { "help_requested", "help requested", "助けを依頼" },
        { "helper_connected", "helper connected", "業者が対応開始" },
        { "resolved", "resolved", "解決" }, { "contained", "contained", "隔離" },
        { "released", "released", "隔離解除" },
        { "help_sent", "help request sent", "助けの依頼を送信" },
        { "remote_help_started", "remote help started", "リモートサポート開始" },
        { "remote_help_ended", "remote help ended", "リモートサポート終了" },
        { "notify_sent", "owner notified", "所有者にお知らせ" },
        { "notify_failed", "notification failed", "お知らせの失敗" },
        { "notify_retry", "notification delayed", "お知らせの遅れ" },
        { "notify_skipped", "notification not sent", "お知らせせず" },
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!strcmp(what, words[i][0]))
            return words[i][ja ? 2 : 1];
    return what;
}

/* Steps the box words itself store "English / 日本語" in one detail (notify.c, detect.c,
 * incidents.c, help*.c). The report shows the half in its language, found as the owner UI
 * finds it (webui/owner/pages.js): the middle " / " of an odd count (an error quoted in
 * both halves brings its own), Japanese characters after it. Owners' notes and rows from
 * before both languages are shown whole. Writes into out (at most outlen). */
static void step_detail(const char *what, const char *d, int ja, char *out, size_t outlen)
{
    static const char *const box_worded[] = {
        "detected", "contained", "released", "help_sent", "helper_connected",
        "remote_help_started", "remote_help_ended", "notify_sent", "notify_failed",
        "notify_retry", "notify_skipped",
    };
    size_t k = 0;
    while (k < sizeof box_worded / sizeof box_worded[0] && strcmp(what, box_worded[k]))
        k++;
    snprintf(out, outlen, "%s", d);
    if (k == sizeof box_worded / sizeof box_worded[0])
        return;
    int n = 0;
    for (const char *p = strstr(d, " / "); p; p = strstr(p + 3, " / "))
        n++;
    if (n % 2 == 0)
        return;
    const char *cut = strstr(d, " / ");
    for (int i = 0; i < n / 2; i++)
        cut = strstr(cut + 3, " / ");
    int cjk = 0;   /* UTF-8 of U+3000..U+9FFF (lead E3..E9) or U+FF00..U+FFEF (EF BC..BF) */
    for (const unsigned char *p = (const unsigned char *)cut + 3; *p && !cjk; p++)
        cjk = (*p >= 0xe3 && *p <= 0xe9) || (*p == 0xef && p[1] >= 0xbc && p[1] <= 0xbf);
    if (!cjk)
        return;
    if (ja)
        snprintf(out, outlen, "%s", cut + 3);
    else
        snprintf(out, outlen, "%.*s", (int)(cut - d), d);
}

static void heading(struct out *o, int level, const char *text)
{
    if (o->html) {
        fprintf(o->f, "<h%d>", level);
        put(o, text);
        fprintf(o->f, "</h%d>\n", level);
    } else {
        fprintf(o->f, "\n%.*s ", level, "####");
        put(o, text);
        fputs("\n\n", o->f);
    }
}

static void para(struct out *o, const char *text)
{
    fputs(o->html ? "<p>" : "", o->f);
    put(o, text);
    fputs(o->html ? "</p>\n" : "\n\n", o->f);
}

static void row(struct out *o, const char *a, const char *b)
{
    if (o->html) {
        fputs("<tr><th>", o->f);
        put(o, a);
        fputs("</th><td>", o->f);
        put(o, b);
        fputs("</td></tr>\n", o->f);
    } else {
        fputs("| ", o->f);
        put(o, a);
        fputs(" | ", o->f);
        put(o, b);
        fputs(" |\n", o->f);
    }
}

static void table_start(struct out *o, const char *h1, const char *h2)
{
    if (o->html) {
        fputs("<table>\n", o->f);
        return;
    }
    fprintf(o->f, "| %s | %s |\n|---|---|\n", h1, h2);
}

static void table_end(struct out *o)
{
    fputs(o->html ? "</table>\n" : "\n", o->f);
}

char *incident_report(sqlite3 *db, int64_t id, const char *format, const char *lang,
                      int64_t now, char *err, size_t errlen)
{
    int html = format && !strcmp(format, "html");
    if (format && strcmp(format, "md") && !html) {
        errbuf_set(err, errlen, "format '%s': use md or html", format);
        return NULL;
    }
    int ja = lang && !strcmp(lang, "ja");
    if (lang && strcmp(lang, "en") && !ja) {
        errbuf_set(err, errlen, "lang '%s': use en or ja", lang);
        return NULL;
    }
    json_t *inc = incident_get(db, id, err, errlen);
    if (!inc)
        return NULL;
    struct out o = { .html = html };
    o.f = open_memstream(&o.buf, &o.len);
    if (!o.f) {
        json_decref(inc);
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    const char *kind = S(inc, "kind");
    char title[256], t1[40], t2[40], t3[40], num[64], detail[4096];
    snprintf(title, sizeof title, "%s #%lld: %s", ja ? "インシデント報告" : "Incident report",
             (long long)id, incident_title(kind, ja ? "ja" : "en"));
    if (html) {
        fprintf(o.f, "<!DOCTYPE html>\n<html lang=\"%s\"><head><meta charset=\"utf-8\"><title>",
                ja ? "ja" : "en");
        put(&o, title);
        fputs("</title><style>body{font-family:sans-serif;max-width:60em;margin:auto}"
              "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.3em;"
              "text-align:left;vertical-align:top}</style></head><body>\n", o.f);
        heading(&o, 1, title);
    } else {
        fputs("# ", o.f);
        put(&o, title);
        fputs("\n", o.f);
    }
    para(&o, ja ? "この報告は誰かの責任を問うためのものではありません。何が起き、何をしたか、次に何を学べるかを"
                  "記録するものです。内容は通信の中身を含まないメタデータだけです。"
                : "This report is blameless: it records what happened, what was done and what "
                  "to learn, not who is at fault. It holds metadata only, never the content of "
                  "any communication.");
    heading(&o, 2, ja ? "概要" : "Summary");
    table_start(&o, ja ? "項目" : "Field", ja ? "内容" : "Value");
    when(t1, sizeof t1, I(inc, "opened"));
    when(t2, sizeof t2, I(inc, "updated"));
    when(t3, sizeof t3, I(inc, "resolved"));
    row(&o, ja ? "種類" : "Kind", kind);
    row(&o, ja ? "重大度" : "Severity", S(inc, "severity"));
    row(&o, ja ? "状態" : "State", S(inc, "state"));
    row(&o, ja ? "機器" : "Device", S(inc, "device"));
    row(&o, "MAC", S(inc, "mac"));
    row(&o, ja ? "機器名" : "Device name", S(inc, "label"));
    snprintf(num, sizeof num, "%lld", (long long)I(inc, "importance"));
    row(&o, ja ? "機器の重要度 (1-5)" : "Device importance (1-5)", num);
    snprintf(num, sizeof num, "%lld", (long long)I(inc, "count"));
    row(&o, ja ? "検知回数" : "Detections", num);
    row(&o, ja ? "最初の検知" : "First seen", t1);
    row(&o, ja ? "最後の更新" : "Last update", t2);
    row(&o, ja ? "解決" : "Resolved", t3);
    row(&o, ja ? "隔離中" : "Quarantined now",
        json_is_true(json_object_get(inc, "quarantined")) ? (ja ? "はい" : "yes") : (ja ? "いいえ" : "no"));
    table_end(&o);
    heading(&o, 2, ja ? "何が起きたか" : "What happened");
    para(&o, incident_title(kind, ja ? "ja" : "en"));
    heading(&o, 2, ja ? "検知された指標" : "Matched indicators");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(inc, "indicators"), i, v) {
        fputs(html ? "<li>" : "- ", o.f);
        put(&o, json_string_value(v));
        fputs(html ? "</li>\n" : "\n", o.f);
    }
    heading(&o, 2, ja ? "経過" : "Timeline");
    if (html)
        fputs("<table>\n", o.f);
    else
        fprintf(o.f, "| %s | %s | %s | %s |\n|---|---|---|---|\n", ja ? "時刻" : "Time",
                ja ? "誰が" : "By", ja ? "出来事" : "Event", ja ? "詳細" : "Detail");
    json_t *tl = json_object_get(inc, "timeline");
    int contained = 0;
    json_array_foreach(tl, i, v) {
        when(t1, sizeof t1, I(v, "at"));
        contained |= !strcmp(S(v, "what"), "contained");
        step_detail(S(v, "what"), S(v, "detail"), ja, detail, sizeof detail);
        const char *cells[4] = { t1, S(v, "who"), step_words(S(v, "what"), ja), detail };
        fputs(html ? "<tr>" : "|", o.f);
        for (int c = 0; c < 4; c++) {
            fputs(html ? "<td>" : " ", o.f);
            put(&o, cells[c]);
            fputs(html ? "</td>" : " |", o.f);
        }
        fputs("\n", o.f);
    }
    if (html)
        fputs("</table>\n", o.f);
    if (I(inc, "count") > INCIDENT_TIMELINE_MAX) {
        snprintf(num, sizeof num, ja ? "ほかに %lld 件の検知は件数のみ記録しました。"
                 : "%lld further detections were counted but not listed.",
                 (long long)(I(inc, "count") - INCIDENT_TIMELINE_MAX));
        para(&o, num);
    }
    heading(&o, 2, ja ? "封じ込め" : "Containment");
    para(&o, contained ? (ja ? "機器はネットワーク上で隔離されました (ボックス以外と通信できません)。"
                             : "The device was quarantined on the network (it could reach only the box).")
                       : (ja ? "機器の隔離は行われていません。ボックスは危険な宛先への通信を遮断しました。"
                             : "The device was not quarantined; the box blocked the dangerous destinations."));
    heading(&o, 2, ja ? "次に学べること" : "What to learn");
    para(&o, incident_advice(kind, ja ? "ja" : "en"));
    para(&o, ja ? "気づいて報告してくれた人、対応した人に感謝します。"
                : "Thanks to everyone who noticed, reported and responded.");
    when(t1, sizeof t1, now);
    snprintf(title, sizeof title, "%s %s (otasuke)", ja ? "作成:" : "Generated", t1);
    para(&o, title);
    if (html)
        fputs("</body></html>\n", o.f);
    json_decref(inc);
    if (fclose(o.f) != 0) {
        free(o.buf);
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    return o.buf;
}
