#ifndef LLMD_CEDITLINE_SHIM_H
#define LLMD_CEDITLINE_SHIM_H

#include <stdio.h>
#include <stdint.h>
#include <wchar.h>
#include <editline/readline.h>

// libedit's readline interface keeps its state in C globals, which Swift 6 refuses to
// touch as shared mutable state. These accessors are the way in; LineEditor calls them
// from the one thread that owns the editor.

// Sets the streams rl_initialize hands to el_init and the function libedit reads a
// key with, and keeps libedit's signal handlers out: they re-raise SIGINT with
// kill(0, …) at the whole process group and leave the terminal cooked, while the
// caller wants to handle Ctrl-C itself. Call before rl_initialize, which reads them all.
static inline void llmd_rl_configure(FILE *input, FILE *output, int (*read_key)(FILE *)) {
    rl_instream = input;
    rl_outstream = output;
    rl_getc_function = read_key;
    rl_catch_signals = 0;
    rl_catch_sigwinch = 0;
}

// The line being edited and the cursor's byte offset in it, as of the last key read.
static inline const char *llmd_rl_line_buffer(void) {
    return rl_line_buffer;
}

static inline int llmd_rl_point(void) {
    return rl_point;
}

static inline int llmd_rl_end(void) {
    return rl_end;
}

// How many columns libedit gives a character. glibc declares wcwidth only under
// _XOPEN_SOURCE, which Swift's Glibc module is not built with.
int wcwidth(wchar_t c);

static inline int llmd_wcwidth(uint32_t c) {
    return wcwidth((wchar_t)c);
}

#endif
