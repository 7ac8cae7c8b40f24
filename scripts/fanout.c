/*
 * The native side of scripts/bench_events.py: subscribers, and the Redis baseline's
 * publishers. Written in C so that neither llmd nor Redis is measured through a slow
 * reader: at 16 subscribers a Python reader saturated before either server did.
 *
 *   fanout subscribe llmd|redis SOCKET READERS STALLED EXPECTED
 *       Connects READERS + STALLED subscribers (llmd: llm_new_token events; Redis: channel
 *       "tokens"), waits until every subscription is confirmed, prints "ready", then reads
 *       on one epoll loop until each reader has EXPECTED messages (or 120 s pass). STALLED
 *       subscribers never read. Prints one JSON line: messages delivered, seconds from the
 *       first to the last message, latency percentiles, mean message bytes.
 *   fanout relay PORT MODEL TOKENS REDIS_SOCKET SIZE
 *       Streams MODEL's reply of TOKENS tokens from the OpenAI fixture on 127.0.0.1:PORT
 *       and publishes one SIZE-byte message per token to Redis as it arrives: Redis as
 *       the event bus for the same stream llmd reads.
 *   fanout publish REDIS_SOCKET COUNT SIZE
 *       Publishes COUNT SIZE-byte messages as fast as Redis takes them, 16 per write.
 *
 * Every message carries "ts":MICROSECONDS (wall clock) from when its token was received,
 * or published; latency is a subscriber's read time minus it, for every message.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void fail(const char *what) {
    perror(what);
    exit(1);
}

static int64_t now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static int connect_unix(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strncpy(address.sun_path, path, sizeof address.sun_path - 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) < 0) fail("connect");
    return fd;
}

static void write_all(int fd, const char *bytes, size_t count) {
    while (count > 0) {
        ssize_t written = write(fd, bytes, count);
        if (written < 0 && errno == EINTR) continue;
        if (written <= 0) fail("write");
        bytes += written;
        count -= (size_t)written;
    }
}

/* Reads until `marker` has arrived; what followed it is dropped, as nothing is published yet. */
static void read_until(int fd, const char *marker) {
    char buffer[65536];
    size_t used = 0;
    for (;;) {
        ssize_t got = read(fd, buffer + used, sizeof buffer - 1 - used);
        if (got <= 0) fail("read confirmation");
        used += (size_t)got;
        buffer[used] = 0;
        if (strstr(buffer, marker)) return;
        if (used == sizeof buffer - 1) fail("confirmation too long");
    }
}

/* Redis drops what a client sent just before it closed: a PING answered means all was done. */
static void finish_publishing(int fd) {
    static const char ping[] = "*1\r\n$4\r\nPING\r\n";
    write_all(fd, ping, sizeof ping - 1);
    char buffer[65536 + 5], *chunk = buffer + 5;
    memset(buffer, 0, 5);
    for (;;) {
        ssize_t got = read(fd, chunk, 65536);
        if (got <= 0) fail("read PONG");
        if (memmem(buffer, (size_t)got + 5, "+PONG", 5)) return;
        memmove(buffer, buffer + got, 5); /* the last five bytes: "+PONG" may straddle reads */
    }
}

static int compare_int64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

enum { BUFFER_BYTES = 1 << 20 };

struct reader {
    int fd;
    long count;
    size_t held; /* bytes of an incomplete last line, kept at the start of buffer */
    char *buffer;
};

static int subscribe(int argc, char **argv) {
    if (argc != 7) return 2;
    int redis = strcmp(argv[2], "redis") == 0;
    const char *path = argv[3];
    int readers = atoi(argv[4]), stalled = atoi(argv[5]);
    long expected = atol(argv[6]);
    struct reader *all = calloc((size_t)readers, sizeof *all);
    size_t capacity = (size_t)readers * (size_t)expected;
    int64_t *latencies = malloc(capacity * sizeof *latencies);
    if (!all || !latencies) fail("malloc");

    for (int i = 0; i < readers + stalled; i++) {
        int fd = connect_unix(path);
        if (redis) {
            static const char command[] = "*2\r\n$9\r\nSUBSCRIBE\r\n$6\r\ntokens\r\n";
            write_all(fd, command, sizeof command - 1);
            read_until(fd, ":1\r\n");
        } else {
            static const char command[] =
                "{\"id\":1,\"method\":\"subscribe\",\"params\":{\"types\":[\"llm_new_token\"]}}\n";
            read_until(fd, "\n"); /* hello */
            write_all(fd, command, sizeof command - 1);
            read_until(fd, "\"type\":\"ready\"");
        }
        if (i < readers) {
            all[i] = (struct reader){.fd = fd, .buffer = malloc(BUFFER_BYTES)};
            if (!all[i].buffer) fail("malloc");
        }
    }
    int poller = epoll_create1(0);
    for (int i = 0; i < readers; i++) {
        struct epoll_event interest = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(poller, EPOLL_CTL_ADD, all[i].fd, &interest) < 0) fail("epoll_ctl");
    }
    printf("ready\n");
    fflush(stdout);

    size_t samples = 0, message_bytes = 0;
    int64_t first = 0, last = 0, deadline = now_us() + 120 * 1000000LL;
    int remaining = readers;
    struct epoll_event ready[256];
    while (remaining > 0 && now_us() < deadline) {
        int count = epoll_wait(poller, ready, 256, 1000);
        for (int e = 0; e < count; e++) {
            struct reader *r = &all[ready[e].data.u32];
            ssize_t got = read(r->fd, r->buffer + r->held, BUFFER_BYTES - r->held);
            if (got <= 0) { /* closed early: count what arrived */
                epoll_ctl(poller, EPOLL_CTL_DEL, r->fd, NULL);
                remaining--;
                continue;
            }
            int64_t arrived = now_us();
            size_t end = r->held + (size_t)got;
            char *lines_end = memrchr(r->buffer, '\n', end);
            if (!lines_end) {
                r->held = end;
                continue;
            }
            /* Every message, of either server, holds one "ts": and ends a line. */
            size_t complete = (size_t)(lines_end + 1 - r->buffer);
            char *cursor = r->buffer, *limit = r->buffer + complete;
            while ((cursor = memmem(cursor, (size_t)(limit - cursor), "\"ts\":", 5)) != NULL) {
                cursor += 5;
                int64_t stamp = strtoll(cursor, &cursor, 10);
                if (r->count < expected) {
                    latencies[samples++] = arrived - stamp;
                    r->count++;
                    if (r->count == expected) {
                        epoll_ctl(poller, EPOLL_CTL_DEL, r->fd, NULL);
                        remaining--;
                    }
                }
            }
            if (!first) first = arrived;
            last = arrived;
            message_bytes += complete;
            memmove(r->buffer, r->buffer + complete, end - complete);
            r->held = end - complete;
        }
    }
    qsort(latencies, samples, sizeof *latencies, compare_int64);
    long delivered = (long)samples;
    double seconds = (double)(last - first) / 1e6;
    printf("{\"delivered\":%ld,\"seconds\":%.6f,\"p50_us\":%lld,\"p99_us\":%lld,\"max_us\":%lld,"
           "\"message_bytes\":%zu}\n",
           delivered, seconds, samples ? (long long)latencies[samples / 2] : 0,
           samples ? (long long)latencies[samples * 99 / 100] : 0,
           samples ? (long long)latencies[samples - 1] : 0, samples ? message_bytes / samples : 0);
    return 0;
}

/* One PUBLISH of a SIZE-byte payload {"ts":…,"p":"xxx…"} into `out`; returns its length. */
static size_t format_publish(char *out, int64_t stamp, int size) {
    char payload[8192];
    int head = snprintf(payload, sizeof payload, "{\"ts\":%lld,\"p\":\"", (long long)stamp);
    int padding = size - head - 2;
    if (padding < 0) padding = 0;
    if (head + padding + 2 >= (int)sizeof payload) fail("message size");
    memset(payload + head, 'x', (size_t)padding);
    memcpy(payload + head + padding, "\"}", 2);
    int length = head + padding + 2;
    int prefix = sprintf(out, "*3\r\n$7\r\nPUBLISH\r\n$6\r\ntokens\r\n$%d\r\n", length);
    memcpy(out + prefix, payload, (size_t)length);
    memcpy(out + prefix + length, "\r\n", 2);
    return (size_t)prefix + (size_t)length + 2;
}

static int relay(int argc, char **argv) {
    if (argc != 7) return 2;
    int port = atoi(argv[2]), tokens = atoi(argv[4]), size = atoi(argv[6]);
    const char *model = argv[3];
    int bus = connect_unix(argv[5]);
    int upstream = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(upstream, (struct sockaddr *)&address, sizeof address) < 0) fail("connect fixture");
    char body[256], request[1024];
    int body_length = snprintf(body, sizeof body,
        "{\"model\":\"%s\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"go\"}]}",
        model);
    int request_length = snprintf(request, sizeof request,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer bench\r\n"
        "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", body_length, body);
    write_all(upstream, request, (size_t)request_length);

    /* Each token is an SSE event whose chunk holds "content"; events end with a blank line. */
    static char buffer[1 << 20], out[1 << 22];
    size_t held = 0;
    int published = 0;
    while (published < tokens) {
        ssize_t got = read(upstream, buffer + held, sizeof buffer - held);
        if (got <= 0) fail("fixture stream ended early");
        int64_t arrived = now_us();
        size_t end = held + (size_t)got, used = 0, outgoing = 0;
        char *event;
        while ((event = memmem(buffer + used, end - used, "\n\n", 2)) != NULL) {
            size_t stop = (size_t)(event - buffer) + 2;
            if (memmem(buffer + used, stop - used, "\"content\"", 9)) {
                outgoing += format_publish(out + outgoing, arrived, size);
                published++;
            }
            used = stop;
        }
        if (outgoing) write_all(bus, out, outgoing);
        memmove(buffer, buffer + used, end - used);
        held = end - used;
    }
    close(upstream);
    finish_publishing(bus);
    return 0;
}

static int publish(int argc, char **argv) {
    if (argc != 5) return 2;
    int bus = connect_unix(argv[2]);
    int count = atoi(argv[3]), size = atoi(argv[4]);
    static char out[1 << 20];
    size_t outgoing = 0;
    for (int i = 0; i < count; i++) {
        outgoing += format_publish(out + outgoing, now_us(), size);
        if (i % 16 == 15 || i == count - 1) {
            write_all(bus, out, outgoing);
            outgoing = 0;
        }
    }
    finish_publishing(bus);
    return 0;
}

int main(int argc, char **argv) {
    int status = 2;
    if (argc > 1 && strcmp(argv[1], "subscribe") == 0) status = subscribe(argc, argv);
    else if (argc > 1 && strcmp(argv[1], "relay") == 0) status = relay(argc, argv);
    else if (argc > 1 && strcmp(argv[1], "publish") == 0) status = publish(argc, argv);
    if (status == 2) fprintf(stderr, "usage: see the comment at the top of fanout.c\n");
    return status;
}
