/* Fuzzes the list parser with format dnsmasq (see fuzz_list_common.h for the checks). */
#define FUZZ_LIST_FORMAT LIST_FMT_DNSMASQ
#include "fuzz_list_common.h"
