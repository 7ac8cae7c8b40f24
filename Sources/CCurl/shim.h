#ifndef LLMD_CCURL_SHIM_H
#define LLMD_CCURL_SHIM_H

#include <curl/curl.h>

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call.
// These typed wrappers fix the argument type per option kind, as
// swift-corelibs-foundation's CFURLSessionInterface does.

static inline CURLcode llmd_curl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode llmd_curl_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode llmd_curl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode llmd_curl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

typedef size_t (*llmd_curl_data_callback)(char *data, size_t size, size_t count, void *userdata);

static inline CURLcode llmd_curl_easy_setopt_data_callback(CURL *handle, CURLoption option, llmd_curl_data_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}

static inline CURLcode llmd_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode llmd_curl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLMcode llmd_curl_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return curl_multi_setopt(multi, option, value);
}

// CURLVERSION_NOW is a macro alias Swift cannot import; it pins the struct layout
// this header was compiled against.
static inline curl_version_info_data *llmd_curl_version_info(void) {
    return curl_version_info(CURLVERSION_NOW);
}

#endif
