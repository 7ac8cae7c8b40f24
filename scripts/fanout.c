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
 *   fanout serve
 *       The OpenAI fixture's benchmark scenarios, fixture/tokens:N[:US], with the bytes
 *       Tests/Fixtures/openai_fixture.py sends (one chunk per token, the usage chunk when
 *       asked, [DONE]) on a free loopback port, printed as "listening on PORT". With no
 *       delay the whole reply is written at once, as fast as the client reads: the
 *       stream's pace is the reader's, not a Python server's, which took one of the two
 *       cores and set the pace for either bus. With US, token i is written alone at
 *       i * US microseconds after the first (late tokens go at once): an exact rate,
 *       where the Python fixture's sleeps of US add its own time per token.
 *
 * Every message carries "ts":MICROSECONDS (wall clock) from when its token was received,
 * or published; latency is a subscriber's read time minus it, for every message.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
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

/* --- serve: the fixture's benchmark scenarios, natively ------------------------- */

struct text {
    char *bytes;
    size_t length, capacity;
};

static void append(struct text *text, const char *bytes, size_t count) {
    if (text->length + count > text->capacity) {
        text->capacity = (text->length + count) * 2;
        text->bytes = realloc(text->bytes, text->capacity);
        if (!text->bytes) fail("realloc");
    }
    memcpy(text->bytes + text->length, bytes, count);
    text->length += count;
}

/* One chunk of HTTP's chunked encoding holding `data`. */
static void append_chunk(struct text *text, const char *data, size_t count) {
    char size[32];
    append(text, size, (size_t)snprintf(size, sizeof size, "%zx\r\n", count));
    append(text, data, count);
    append(text, "\r\n", 2);
}

/* An SSE event `data: JSON` as its own chunk; JSON spelled as Python's json.dumps spells it. */
static void append_event(struct text *text, const char *json) {
    char event[1024];
    int length = snprintf(event, sizeof event, "data: %s\n\n", json);
    if (length >= (int)sizeof event) fail("event size");
    append_chunk(text, event, (size_t)length);
}

static void send_text(int fd, struct text *text) {
    write_all(fd, text->bytes, text->length);
    text->length = 0;
}

/* The string value of "name" in a flat JSON body (no escapes in what the benchmarks send). */
static int json_string(const char *body, const char *name, char *value, size_t size) {
    char key[64];
    snprintf(key, sizeof key, "\"%s\"", name);
    const char *at = strstr(body, key);
    if (!at) return 0;
    at += strlen(key);
    while (*at == ' ' || *at == ':') at++;
    if (*at != '"') return 0;
    const char *end = strchr(++at, '"');
    if (!end || (size_t)(end - at) >= size) return 0;
    memcpy(value, at, (size_t)(end - at));
    value[end - at] = 0;
    return 1;
}

/* The Python fixture's count: each message's words plus four. */
static int prompt_tokens(const char *body) {
    int tokens = 0;
    for (const char *at = body; (at = strstr(at, "\"content\"")) != NULL;) {
        at += 9;
        while (*at == ' ' || *at == ':') at++;
        if (*at != '"') continue;
        tokens += 4;
        int in_word = 0;
        for (at++; *at && *at != '"'; at++) {
            if (*at == '\\' && at[1]) at++;
            if (*at == ' ') in_word = 0;
            else if (!in_word) in_word = 1, tokens++;
        }
    }
    return tokens;
}

static void reply_error(int fd, int status, const char *reason, const char *message) {
    char body[512], head[512];
    int body_length = snprintf(body, sizeof body,
        "{\"error\": {\"message\": \"%s\", \"type\": \"invalid_request_error\"}}", message);
    int head_length = snprintf(head, sizeof head,
        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
        status, reason, body_length);
    write_all(fd, head, (size_t)head_length);
    write_all(fd, body, (size_t)body_length);
}

static void stream_tokens(int fd, const char *model, long tokens, long interval_us, int prompt, int usage) {
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
    static const char keep_alive[] = ": fixture keep-alive\n\n";
    struct text text = {0};
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    char json[512];
    append(&text, head, sizeof head - 1);
    append_chunk(&text, keep_alive, sizeof keep_alive - 1);
    for (long i = 0; i < tokens; i++) {
        snprintf(json, sizeof json,
                 "{\"id\": \"fx-1\", \"object\": \"chat.completion.chunk\", \"model\": \"%s\", \"choices\": "
                 "[{\"index\": 0, \"finish_reason\": null, \"delta\": {\"content\": \"t%ld \"}}]}",
                 model, i);
        append_event(&text, json);
        if (interval_us) {
            send_text(fd, &text);
            long long due = (long long)start.tv_nsec + (i + 1) * interval_us * 1000LL;
            struct timespec next = {.tv_sec = start.tv_sec + due / 1000000000, .tv_nsec = due % 1000000000};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR) {}
        }
    }
    append_event(&text, "{\"id\": \"fx-1\", \"object\": \"chat.completion.chunk\", \"choices\": "
                        "[{\"index\": 0, \"finish_reason\": \"stop\", \"delta\": {}}]}");
    if (usage) {
        snprintf(json, sizeof json,
                 "{\"id\": \"fx-1\", \"object\": \"chat.completion.chunk\", \"choices\": [], \"usage\": "
                 "{\"prompt_tokens\": %d, \"completion_tokens\": %ld, \"total_tokens\": %ld, "
                 "\"prompt_tokens_details\": {\"cached_tokens\": 0}, "
                 "\"completion_tokens_details\": {\"reasoning_tokens\": 0}}}",
                 prompt, tokens, prompt + tokens);
        append_event(&text, json);
    }
    append_chunk(&text, "data: [DONE]\n\n", 14);
    append(&text, "0\r\n\r\n", 5);
    send_text(fd, &text);
    free(text.bytes);
}

/* Requests on one kept-alive connection until the client closes it. */
static void serve_connection(int fd) {
    static char buffer[1 << 16];
    size_t used = 0;
    for (;;) {
        char *end;
        while ((end = memmem(buffer, used, "\r\n\r\n", 4)) == NULL) {
            if (used == sizeof buffer - 1) return;
            ssize_t got = read(fd, buffer + used, sizeof buffer - 1 - used);
            if (got <= 0) return;
            used += (size_t)got;
        }
        size_t head = (size_t)(end + 4 - buffer), body_length = 0;
        buffer[head - 1] = 0;
        char *length = strcasestr(buffer, "\r\ncontent-length:");
        if (length) body_length = strtoul(length + 17, NULL, 10);
        if (head + body_length >= sizeof buffer) return;
        while (used < head + body_length) {
            ssize_t got = read(fd, buffer + used, sizeof buffer - 1 - used);
            if (got <= 0) return;
            used += (size_t)got;
        }
        char *body = buffer + head, saved = body[body_length];
        body[body_length] = 0;
        char model[256];
        long tokens = 0, interval_us = 0;
        if (strncmp(buffer, "POST /v1/chat/completions ", 26) != 0) {
            reply_error(fd, 404, "Not Found", "the native fixture serves chat completions only");
        } else if (!strcasestr(buffer, "\r\nauthorization: bearer ")) {
            reply_error(fd, 401, "Unauthorized", "You didn't provide an API key.");
        } else if (!json_string(body, "model", model, sizeof model) ||
                   sscanf(model, "fixture/tokens:%ld:%ld", &tokens, &interval_us) < 1) {
            reply_error(fd, 400, "Bad Request", "the native fixture serves fixture/tokens:N[:US] only");
        } else {
            const char *include = strstr(body, "\"include_usage\"");
            int usage = include && strncmp(include + 15 + strspn(include + 15, " :"), "true", 4) == 0;
            stream_tokens(fd, model, tokens, interval_us, prompt_tokens(body), usage);
        }
        body[body_length] = saved;
        memmove(buffer, buffer + head + body_length, used - head - body_length);
        used -= head + body_length;
    }
}

static int serve(int argc, char **argv) {
    (void)argv;
    if (argc != 2) return 2;
    /* A paced stream's tokens go when due, not up to Linux's default 50 us slack later. */
    prctl(PR_SET_TIMERSLACK, 1UL);
    signal(SIGCHLD, SIG_IGN); /* connections' processes are reaped by the kernel */
    signal(SIGPIPE, SIG_IGN);
    int listener = socket(AF_INET, SOCK_STREAM, 0), on = 1;
    struct sockaddr_in address = {.sin_family = AF_INET};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) < 0 || listen(listener, 64) < 0 ||
        getsockname(listener, (struct sockaddr *)&address, &size) < 0)
        fail("listen");
    printf("listening on %d\n", ntohs(address.sin_port));
    fflush(stdout);
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR) continue;
            fail("accept");
        }
        if (fork() == 0) {
            close(listener);
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
            serve_connection(fd);
            _exit(0);
        }
        close(fd);
    }
}

int main(int argc, char **argv) {
    int status = 2;
    if (argc > 1 && strcmp(argv[1], "subscribe") == 0) status = subscribe(argc, argv);
    else if (argc > 1 && strcmp(argv[1], "relay") == 0) status = relay(argc, argv);
    else if (argc > 1 && strcmp(argv[1], "publish") == 0) status = publish(argc, argv);
    else if (argc > 1 && strcmp(argv[1], "serve") == 0) status = serve(argc, argv);
    if (status == 2) fprintf(stderr, "usage: see the comment at the top of fanout.c\n");
    return status;
}
