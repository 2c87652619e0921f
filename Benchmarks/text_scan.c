/* A floor for reading kernel ftrace text: the least a C program does to know, for every event line,
 * its CPU, its timestamp and its event name. Not a peer tool and not a target: `run.sh` times it
 * to show how much of a text time budget merely finding the events takes on this machine.
 *
 * Per line: the line end (memchr), the "[cpu]" column (memchr for '['), the timestamp after the
 * flags column, the name up to its ':'; counted per name in a small hash table. It checks nothing
 * else (no pid, comm or fields; no stacks joined; no lost-event marks), and reads the file with
 * read(2) into one buffer, as PinScope does. "<stack trace>" lines count as events, " =>" frames
 * and '#' comments do not, as in regex_scan.py.
 *
 * Usage: text_scan FILE [-v]    prints "events: N" and "stack records: S" (-v: counts per name)
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLOTS 4096
struct name { const char *text; size_t len; long count; };
static struct name names[SLOTS];

static void count(const char *p, size_t len) {
    /* Hashed on the length and the first and last 8 bytes (names are short): one multiply. */
    uint64_t a = 0, b = 0;
    memcpy(&a, p, len < 8 ? len : 8);
    if (len > 8) memcpy(&b, p + len - 8, 8);
    uint64_t h = ((a * 31 + b) ^ len) * 0x9E3779B97F4A7C15ull;
    for (size_t s = (h >> 40) & (SLOTS - 1);; s = (s + 1) & (SLOTS - 1)) {
        if (names[s].text == NULL) {
            char *copy = malloc(len);
            memcpy(copy, p, len);
            names[s] = (struct name){copy, len, 1};
            return;
        }
        if (names[s].len == len && memcmp(names[s].text, p, len) == 0) {
            names[s].count++;
            return;
        }
    }
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* One line (without its '\n'): counts it when it is an event line. */
static void line(const char *l, size_t n, uint64_t *first, uint64_t *last) {
    const char *end = l + n;
    size_t i = 0;
    while (i < n && l[i] == ' ') i++;
    if (i == n || l[i] == '#' || (l[i] == '=' && i + 1 < n && l[i + 1] == '>')) return;
    const char *lb = memchr(l + i, '[', n - i < 256 ? n - i : 256);
    if (lb == NULL || lb == l || lb[-1] != ' ') return;
    const char *p = lb + 1;
    while (p < end && is_digit(*p)) p++;
    if (p == lb + 1 || p >= end || *p != ']') return;
    p++;
    while (p < end && *p == ' ') p++;
    if (p < end && !is_digit(*p)) { /* the irq-flags column */
        while (p < end && *p != ' ') p++;
        while (p < end && *p == ' ') p++;
    }
    uint64_t sec = 0, frac = 0;
    int digits = 0;
    while (p < end && is_digit(*p)) sec = sec * 10 + (uint64_t)(*p++ - '0');
    if (p < end && *p == '.') {
        p++;
        while (p < end && is_digit(*p)) { if (digits < 9) { frac = frac * 10 + (uint64_t)(*p - '0'); digits++; } p++; }
    }
    if (p >= end || *p != ':') return;
    while (digits++ < 9) frac *= 10;
    uint64_t ns = sec * 1000000000ull + frac;
    if (ns < *first) *first = ns;
    if (ns > *last) *last = ns;
    p++;
    while (p < end && *p == ' ') p++;
    const char *name = p;
    if (p < end && *p == '<') { /* <stack trace> or <user stack trace> */
        const char *close = memchr(p, '>', (size_t)(end - p));
        if (close == NULL) return;
        count(name, (size_t)(close + 1 - name));
        return;
    }
    while (p < end && *p != ':' && *p != ' ' && *p != '(') p++;
    if (p == name) return;
    count(name, (size_t)(p - name));
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: text_scan FILE [-v]\n"); return 2; }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror(argv[1]); return 2; }
    size_t cap = 1 << 18, start = 0, end = 0;
    char *buf = malloc(cap);
    uint64_t first = UINT64_MAX, last = 0;
    for (;;) {
        char *nl;
        while (start < end && (nl = memchr(buf + start, '\n', end - start)) != NULL) {
            line(buf + start, (size_t)(nl - (buf + start)), &first, &last);
            start = (size_t)(nl - buf) + 1;
        }
        if (start > 0) { memmove(buf, buf + start, end - start); end -= start; start = 0; }
        if (end == cap) { cap *= 2; buf = realloc(buf, cap); }
        ssize_t r = read(fd, buf + end, cap - end);
        if (r < 0) { perror(argv[1]); return 2; }
        if (r == 0) break;
        end += (size_t)r;
    }
    if (end > start) line(buf + start, end - start, &first, &last);
    long events = 0, stacks = 0;
    for (int s = 0; s < SLOTS; s++) {
        if (names[s].text == NULL) continue;
        events += names[s].count;
        if (names[s].text[0] == '<') stacks += names[s].count;
    }
    printf("events: %ld\nstack records: %ld\n", events, stacks);
    if (argc > 2 && strcmp(argv[2], "-v") == 0) {
        for (int s = 0; s < SLOTS; s++)
            if (names[s].text != NULL) printf("%11ld  %.*s\n", names[s].count, (int)names[s].len, names[s].text);
    }
    return 0;
}
