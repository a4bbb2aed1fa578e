/* Fuzzes the list parser with format rpz (see fuzz_list_common.h for the checks). */
#define FUZZ_LIST_FORMAT LIST_FMT_RPZ
#include "fuzz_list_common.h"
