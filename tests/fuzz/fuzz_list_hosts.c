/* Fuzzes the list parser with format hosts (see fuzz_list_common.h for the checks). */
#define FUZZ_LIST_FORMAT LIST_FMT_HOSTS
#include "fuzz_list_common.h"
