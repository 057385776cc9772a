#include <systemd/sd-daemon.h>
// sd_journal_sendv is a macro adding CODE_FILE/CODE_LINE unless this is set; Swift calls the function.
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
