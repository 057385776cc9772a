// File status flags Swift cannot set: fcntl is variadic.
#pragma once

/// Sets or clears O_NONBLOCK on fd's open file description (shared with every dup, in every worker).
int hg_set_nonblocking_to(int fd, int nonblocking);
