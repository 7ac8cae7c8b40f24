#ifndef LLMD_CSYSTEMD_SHIM_H
#define LLMD_CSYSTEMD_SHIM_H

#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

// sd_journal_send is variadic and so out of Swift's reach; the wrapper calls
// sd_journal_sendv, whose iovec array carries one "FIELD=value" entry each.

#endif
