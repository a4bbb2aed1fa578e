/* Fuzzes the list parser with format auto (see fuzz_list_common.h for the checks). */
#define FUZZ_LIST_FORMAT LIST_FMT_AUTO
#include "fuzz_list_common.h"
