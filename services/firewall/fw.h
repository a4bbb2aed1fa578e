/* otasuke-fwd internals: netlink batches (fw_nl.c), the desired ruleset (fw_rules.c),
 * kernel read-back (fw_read.c), diffing (fw_diff.c), applying (fw_apply.c), events
 * (fw_events.c) and commit-confirmed state (fw_state.c). */
#ifndef OTASUKE_FW_H
#define OTASUKE_FW_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "fwset.h"

#define FW_TABLE "otasuke"
#define FW_MAX_CHAINS 32
#define FW_MAX_RULES 1024

struct nlmsghdr;
struct nftnl_rule;

/* ---- netlink batch (fw_nl.c) ------------------------------------------------ */
struct fw_nl_obj {
    uint32_t seq;
    char what[64];      /* "set blk_x_v4 elements 2001-4000", for error messages */
};

struct fw_nl {
    struct mnl_socket *sk;
    uint32_t portid;
    uint32_t seq;
    char *buf;          /* the batch, one contiguous mapping sent with one sendmsg */
    size_t len, cap;
    size_t nmsg;        /* write messages in this batch (begin/end not counted) */
    struct fw_nl_obj *objs;
    size_t nobj, capobj;
    int rcvbuf_set;
    int test_ack_rcvbuf;  /* fault injection (tests only): squeeze the next commit's ack buffer */
};

/* Opens the netfilter socket with big buffers. Returns 0 or -1 + err. */
int fw_nl_open(struct fw_nl *nl, char *err, size_t errlen);
void fw_nl_close(struct fw_nl *nl);
/* Starts a new batch (drops an unsent one). */
int fw_nl_batch_reset(struct fw_nl *nl, char *err, size_t errlen);
/* Reserves room for one message of up to 'room' bytes and writes its header (type is
 * NFT_MSG_*, unique seq, NLM_F_ACK added). The caller fills the payload, then calls
 * fw_nl_msg_end. Returns NULL when memory runs out. */
struct nlmsghdr *fw_nl_msg(struct fw_nl *nl, uint16_t type, uint16_t flags, size_t room,
                           const char *what);
void fw_nl_msg_end(struct fw_nl *nl, struct nlmsghdr *nlh);
/* Sends the batch (if it has any write message) and reads every ack. Returns 0 when the
 * kernel committed it, -1 with err naming the failing object otherwise, and sets
 * *errno_out (ENOBUFS when acks were lost: the caller re-reads state and retries). */
int fw_nl_commit(struct fw_nl *nl, int *errno_out, char *err, size_t errlen);
/* Runs a dump or get request; cb gets each message. Returns 0, -1 + err; ENOENT from a
 * get is returned as 1 (object absent). */
typedef int (*fw_nl_cb)(const struct nlmsghdr *nlh, void *data);
int fw_nl_query(struct fw_nl *nl, struct nlmsghdr *req, fw_nl_cb cb, void *data,
                char *err, size_t errlen);
/* Ruleset generation id (changes with every commit by anyone). */
int fw_nl_genid(struct fw_nl *nl, uint32_t *gen, char *err, size_t errlen);

/* ---- desired ruleset (fw_rules.c) ------------------------------------------------ */
struct fw_chain {
    char name[32];
    int base;                /* 1 = hooked */
    uint32_t hook;
    int32_t prio;
    char type[8];            /* "filter" / "nat" */
    uint32_t policy;         /* NF_ACCEPT / NF_DROP for base chains */
    size_t nrules;
    struct nftnl_rule **rules;
    uint64_t *hashes;        /* one per rule, stored in the rule's comment */
};

struct fw_ruleset {
    size_t nchains;
    struct fw_chain chains[FW_MAX_CHAINS];
};

/* Builds the chains and rules for artifact s. Returns 0 or -1 + err. */
int fw_rules_build(const struct fwset *s, struct fw_ruleset *rs, char *err, size_t errlen);
void fw_rules_free(struct fw_ruleset *rs);
/* Reads "otasuke:<16 hex>" from a rule comment; 0 when absent. */
uint64_t fw_rules_udata_hash(const void *udata, uint32_t len);

/* ---- kernel state (fw_read.c) ---------------------------------------------------- */
struct fw_kset {
    char name[FWSET_NAME_MAX];
    uint32_t flags, key_type, key_len;
    uint64_t timeout_ms;
    uint32_t size;           /* hash size hint (a cap for fixed-size hashes), 0 = none */
    int etype;               /* FWSET_E_* deduced from key and flags, 0 if foreign */
    void *elems;             /* same layout as fw.set, sorted */
    size_t count;
    int elems_loaded;
    int borrowed;            /* elems point into the known artifact: not ours to free */
    int odd;                 /* interval elements that did not pair up */
};

struct fw_kchain {
    char name[32];
    int base;
    uint32_t hook, policy;
    int32_t prio;
    char type[8];
    size_t nrules;
    uint64_t *hashes;
};

struct fw_kstate {
    int table_exists;
    size_t nsets, nchains;
    struct fw_kset *sets;
    struct fw_kchain chains[FW_MAX_CHAINS * 2];
    uint32_t genid;
    int trusted;
};

/* Reads our table back: chains, rule hashes, sets and their elements. Dumping a big
 * set is quadratic in the kernel (each dump round re-walks the set to its resume
 * point: ~25 s for a million elements), so when the ruleset generation still equals
 * known_gen — nothing was committed by anyone since our own last commit — elements of
 * sets without timeouts are taken from 'known', the artifact we committed then.
 * known NULL = always dump. Returns 0 or -1 + err. */
int fw_read_state(struct fw_nl *nl, struct fw_kstate *ks, const struct fwset *known,
                  uint32_t known_gen, char *err, size_t errlen);
void fw_kstate_free(struct fw_kstate *ks);
struct fw_kset *fw_kstate_set(struct fw_kstate *ks, const char *name);

/* ---- diff (fw_diff.c) ----------------------------------------------------------- */
/* Merge-walks two sorted element arrays of type etype. Fills add[] with indexes into
 * want and del[] with indexes into have (caller sizes them nwant and nhave). */
void fw_diff_elems(int etype, const void *have, size_t nhave, const void *want, size_t nwant,
                   uint32_t *add, size_t *nadd, uint32_t *del, size_t *ndel);
/* Sorts a kernel element array into fw.set order (in place). */
void fw_sort_elems(int etype, void *elems, size_t n);

/* ---- apply (fw_apply.c) -------------------------------------------------------- */
struct fw_stats {
    size_t writes;           /* write messages sent (0 for a no-op) */
    size_t elems_added, elems_deleted;
    size_t sets_created, sets_deleted, chains_replaced;
    int rebuilt;             /* whole table re-created */
    int retried;
    char retry_reason[256];  /* what the first attempt failed on, when retried */
    int trusted;             /* elements taken from the known artifact (generation equal) */
    uint32_t genid;          /* ruleset generation after our commit (0 if unknown) */
    double read_ms, build_ms, commit_ms;
};

/* Makes the kernel's table equal to artifact s. dry_run prints the plan to out and sends
 * nothing. Returns 0 or -1 + err; the kernel keeps its old state on failure. */
int fw_apply(struct fw_nl *nl, const struct fwset *s, const struct fwset *known,
             uint32_t known_gen, int dry_run, void *out, struct fw_stats *st,
             char *err, size_t errlen);

/* Deletes our table (rollback to "no firewall of ours"). Returns 0 or -1 + err. */
int fw_remove(struct fw_nl *nl, char *err, size_t errlen);

/* ---- events (fw_events.c) ------------------------------------------------------- */
struct fw_events;
/* Opens the nflog group (0 = none) and the neighbour watch; events go as JSON lines to
 * the unix datagram socket at sock (NULL = stdout). leases: dnsmasq leases file or NULL. */
struct fw_events *fw_events_open(const char *sock, uint32_t nflog_group, const char *leases,
                                 char *err, size_t errlen);
/* The descriptors to poll (-1 for none). */
void fw_events_fds(const struct fw_events *ev, int *nflog_fd, int *neigh_fd);
/* Reads what is ready on fd and emits events. */
void fw_events_handle(struct fw_events *ev, int fd);
void fw_events_counts(const struct fw_events *ev, unsigned long *sent, unsigned long *dropped);
void fw_events_close(struct fw_events *ev);

/* ---- element encoding shared by apply and the benchmark ---------------------- */
size_t fw_elem_key(int etype, const void *elems, size_t i, int end, uint8_t key[16],
                   int *has_end);

#endif
