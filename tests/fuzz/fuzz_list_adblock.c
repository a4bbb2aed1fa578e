/* Fuzzes the list parser with format adblock (see fuzz_list_common.h for the checks). */
#define FUZZ_LIST_FORMAT LIST_FMT_ADBLOCK
#include "fuzz_list_common.h"
