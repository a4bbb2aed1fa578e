/* otasukectl command groups. Each group lives in its own file (cli_<group>.c) and
 * exports one entry point taking the arguments after the group name, e.g. for
 * "otasukectl set build -o X" it gets argc=3, argv={"build","-o","X"}.
 * Offline commands print JSON on stdout; errors go to stderr; exit status 0 on success,
 * 1 on a failure the user should fix, 2 on bad usage. */
#ifndef OTASUKE_CLI_H
#define OTASUKE_CLI_H

struct cli_group {
    const char *name;
    const char *summary;  /* one line for "otasukectl help" */
    int (*run)(int argc, char **argv);
};

/* Prints "otasukectl: " + message to stderr and returns exit status 1 (2 for usage). */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Command groups: one line per group, implemented in cli_<group>.c. */
int cli_backup(int argc, char **argv);
int cli_delegate(int argc, char **argv);
int cli_device(int argc, char **argv);
int cli_explain(int argc, char **argv);
int cli_factory_reset(int argc, char **argv);
int cli_feed(int argc, char **argv);
int cli_fw(int argc, char **argv);
int cli_hub(int argc, char **argv);
int cli_incident(int argc, char **argv);
int cli_list(int argc, char **argv);
int cli_policy(int argc, char **argv);
int cli_restore(int argc, char **argv);
int cli_set(int argc, char **argv);
int cli_setup_code(int argc, char **argv);
int cli_status(int argc, char **argv);

#endif
