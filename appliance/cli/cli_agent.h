/* Helpers shared by the otasukectl groups that talk to otasuke-agent's local API. */
#ifndef OTASUKE_CLI_AGENT_H
#define OTASUKE_CLI_AGENT_H

#include <jansson.h>

/* Options every online command takes: --socket PATH and --json. cli_online_opts removes
 * them from argv (in place) and returns the new argc. */
struct cli_online {
    const char *socket;
    int json;
};
int cli_online_opts(struct cli_online *o, int argc, char **argv);

/* Calls the agent; on success prints the answer (JSON with --json, else human text via
 * print, or a generic rendering when print is NULL) and returns 0; on an error answer
 * prints "otasukectl: ERROR (field F)" and returns 1. body is consumed (decref'd). */
int cli_call(const struct cli_online *o, const char *method, const char *path, json_t *body,
             void (*print)(json_t *answer));

/* cli_setup.c: prints webd's certificate fingerprint line (as reported to the agent). */
void cli_webd_fingerprint(const struct cli_online *o);

/* Generic human rendering: arrays of objects as aligned columns, objects as key: value. */
void cli_print_human(json_t *v);

/* Splits "a,b,c" into a JSON array of strings (new reference). */
json_t *cli_split_list(const char *s);

/* Reads a whole file into a malloc'd NUL-terminated buffer; NULL with a message printed. */
char *cli_read_file(const char *path, size_t *len);

#endif
