// A header that includes a local header, as tools split theirs.
#include "records.h"

struct wrapped {
	struct exec_event ev;
	__u64 ts;
};
