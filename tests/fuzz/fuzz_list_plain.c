/* Fuzzes the list parser with format plain (see fuzz_list_common.h for the checks). */
#define FUZZ_LIST_FORMAT LIST_FMT_PLAIN
#include "fuzz_list_common.h"
