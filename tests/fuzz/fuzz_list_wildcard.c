/* Fuzzes the list parser with format wildcard (see fuzz_list_common.h for the checks). */
#define FUZZ_LIST_FORMAT LIST_FMT_WILDCARD
#include "fuzz_list_common.h"
