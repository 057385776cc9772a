// The listeners' blocking mode (key `nonblocking`, systemd's NonBlocking=): O_NONBLOCK lives on the
// open file description, so what the supervisor sets here is what every worker's fd 3 has at exec.
#include "fdflags.h"
#include <fcntl.h>

int hg_set_nonblocking_to(int fd, int nonblocking) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -1;
    int wanted = nonblocking ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    return wanted == flags ? 0 : fcntl(fd, F_SETFL, wanted);
}
