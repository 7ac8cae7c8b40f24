#ifndef LLMD_CSQLITE_SHIM_H
#define LLMD_CSQLITE_SHIM_H

#include <malloc.h>
#include <sqlite3.h>

// SQLITE_TRANSIENT is a cast of -1 to a function pointer, which Swift cannot import:
// these bind copies of the caller's bytes, so Swift buffers need not outlive the call.
static inline int llmd_sqlite3_bind_text(sqlite3_stmt *statement, int index, const char *text, int length) {
    return sqlite3_bind_text(statement, index, text, length, SQLITE_TRANSIENT);
}

static inline int llmd_sqlite3_bind_blob(sqlite3_stmt *statement, int index, const void *bytes, int length) {
    return sqlite3_bind_blob(statement, index, bytes, length, SQLITE_TRANSIENT);
}

// glibc keeps the heap that a migration's statements and schema reloads freed, half a
// megabyte a daemon would carry for its whole life: give it back to the system.
static inline void llmd_release_free_heap(void) {
    malloc_trim(0);
}

#endif
