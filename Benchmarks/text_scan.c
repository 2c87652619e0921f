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
 * With -p, also the least a C program does to follow the text's pages, on both cores: the reading
 * thread reads the page keys of the page-cache events this benchmark's trace holds
 * (writeback_dirty_folio and folio_wait_writeback "ino= index=", mm_filemap_add_to_page_cache and
 * _delete_ "ino <hex> pfn= ofs=", ext4_writepages "ino") into batches, and a second thread applies
 * each to two hash tables, (ino, index) -> pfn and pfn -> a page state (two counters and a
 * timestamp): two table updates an event. No rules, owners, stacks or findings.
 *
 * Usage: text_scan FILE [-v] [-p]  prints "events: N" and "stack records: S" (-v: counts per name;
 *                                  -p: also "page events: E" and "pages: P")
 */
#include <pthread.h>
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

/* --- -p: page keys, handed in batches to a thread that keeps the page tables ------------------ */
enum { DIRTY = 1, WAIT, ADD, DELETE, WRITEPAGES };
struct rec { uint64_t ino, index, pfn, ns; int kind; };
#define BATCH 4096
#define RING 64
static struct rec ring[RING][BATCH];
static int filled[RING];                 /* records in each full batch; -1: end of input */
static long produced, consumed;          /* batches handed over / taken */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int pages_mode, batch_len;
static long page_events;

/* Hands the batch being filled to the page thread, and waits until the next one to fill is free
 * (the page thread done with what it held before): `emit` writes into it without the lock. */
static void hand_over(int n) {
    pthread_mutex_lock(&lock);
    filled[produced % RING] = n;
    produced++;
    pthread_cond_broadcast(&changed);
    while (produced - consumed == RING) pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
}

static void emit(int kind, uint64_t ino, uint64_t index, uint64_t pfn, uint64_t ns) {
    ring[produced % RING][batch_len++] = (struct rec){ino, index, pfn, ns, kind};
    page_events++;
    if (batch_len == BATCH) { hand_over(BATCH); batch_len = 0; }
}

/* Open addressing on (a, b) -> value, doubled at half full. */
struct slot { uint64_t a, b, used, v0, v1, v2; };
struct table { struct slot *s; uint64_t mask, count; };
static uint64_t mix(uint64_t a, uint64_t b) {
    uint64_t x = a * 0x9E3779B97F4A7C15ull ^ b;
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33;
    return x;
}
static struct slot *find(struct table *t, uint64_t a, uint64_t b) {
    if (t->count * 2 >= t->mask) {
        struct table bigger = {calloc(2 * (t->mask + 1), sizeof(struct slot)), 2 * t->mask + 1, 0};
        for (uint64_t i = 0; t->s && i <= t->mask; i++)
            if (t->s[i].used) *find(&bigger, t->s[i].a, t->s[i].b) = t->s[i];
        free(t->s);
        bigger.count = t->count;
        *t = bigger;
    }
    for (uint64_t i = mix(a, b) & t->mask;; i = (i + 1) & t->mask) {
        struct slot *s = &t->s[i];
        if (!s->used) { *s = (struct slot){a, b, 1, 0, 0, 0}; t->count++; return s; }
        if (s->a == a && s->b == b) return s;
    }
}

static void *keep_pages(void *arg) {  /* arg: where to put the number of pages seen */
    struct table files = {NULL, 1023, 0}, pages = {NULL, 1023, 0};
    files.s = calloc(1024, sizeof(struct slot));
    pages.s = calloc(1024, sizeof(struct slot));
    for (;;) {
        pthread_mutex_lock(&lock);
        while (consumed == produced) pthread_cond_wait(&changed, &lock);
        int n = filled[consumed % RING];
        pthread_mutex_unlock(&lock);
        if (n < 0) break;
        for (int i = 0; i < n; i++) {
            struct rec *r = &ring[consumed % RING][i];
            if (r->kind == WRITEPAGES) { find(&files, r->ino, UINT64_MAX)->v2 = r->ns; continue; }
            struct slot *f = find(&files, r->ino, r->index);
            if (r->kind == ADD || r->kind == DELETE) f->v0 = r->kind == ADD ? r->pfn + 1 : 0;
            uint64_t pfn = r->kind == ADD || r->kind == DELETE ? r->pfn + 1 : f->v0;
            if (pfn == 0) continue;
            struct slot *pg = find(&pages, pfn, 0);
            if (r->kind == DIRTY) pg->v0++;
            if (r->kind == WAIT) pg->v1++;
            pg->v2 = r->ns;
        }
        pthread_mutex_lock(&lock);
        consumed++;
        pthread_cond_broadcast(&changed);
        pthread_mutex_unlock(&lock);
    }
    *(uint64_t *)arg = pages.count;
    return NULL;
}

static const char *after(const char *p, const char *end, const char *key) {
    size_t k = strlen(key);
    for (;;) {
        const char *c = memchr(p, key[0], (size_t)(end - p));
        if (c == NULL || c + k > end) return NULL;
        if (memcmp(c, key, k) == 0) return c + k;
        p = c + 1;
    }
}
static uint64_t number(const char *p, const char *end, int base) {
    uint64_t v = 0;
    for (; p < end; p++) {
        int d = is_digit(*p) ? *p - '0' : (base == 16 && *p >= 'a' && *p <= 'f') ? *p - 'a' + 10 : -1;
        if (d < 0) break;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    return v;
}

/* The page keys of one event line's payload [p, end), for the events this trace's pages go by. */
static void page_keys(const char *name, size_t len, const char *p, const char *end, uint64_t ns) {
    const char *ino, *index, *pfn, *ofs;
    if ((len == 21 && memcmp(name, "writeback_dirty_folio", 21) == 0) ||
        (len == 20 && memcmp(name, "folio_wait_writeback", 20) == 0)) {
        if ((ino = after(p, end, "ino=")) && (index = after(ino, end, "index=")))
            emit(name[0] == 'w' ? DIRTY : WAIT, number(ino, end, 10), number(index, end, 10), 0, ns);
    } else if ((len == 28 && memcmp(name, "mm_filemap_add_to_page_cache", 28) == 0) ||
               (len == 33 && memcmp(name, "mm_filemap_delete_from_page_cache", 33) == 0)) {
        if ((ino = after(p, end, "ino ")) && (pfn = after(ino, end, "pfn=0x")) && (ofs = after(pfn, end, "ofs=")))
            emit(name[11] == 'a' ? ADD : DELETE, number(ino, end, 16), number(ofs, end, 10) / 4096, number(pfn, end, 16), ns);
    } else if (len >= 15 && memcmp(name, "ext4_writepages", 15) == 0) {
        if ((ino = after(p, end, " ino "))) emit(WRITEPAGES, number(ino, end, 10), 0, 0, ns);
    }
}

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
    if (pages_mode) page_keys(name, (size_t)(p - name), p, end, ns);
}

int main(int argc, char **argv) {
    int verbose = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0) verbose = 1;
        else if (strcmp(argv[i], "-p") == 0) pages_mode = 1;
        else argc = 0;
    }
    if (argc < 2) { fprintf(stderr, "usage: text_scan FILE [-v] [-p]\n"); return 2; }
    pthread_t keeper;
    uint64_t pages = 0;
    if (pages_mode) pthread_create(&keeper, NULL, keep_pages, &pages);
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
    if (pages_mode) {
        if (batch_len > 0) hand_over(batch_len);
        hand_over(-1);
        pthread_join(keeper, NULL);
    }
    long events = 0, stacks = 0;
    for (int s = 0; s < SLOTS; s++) {
        if (names[s].text == NULL) continue;
        events += names[s].count;
        if (names[s].text[0] == '<') stacks += names[s].count;
    }
    printf("events: %ld\nstack records: %ld\n", events, stacks);
    if (pages_mode) printf("page events: %ld\npages: %lu\n", page_events, (unsigned long)pages);
    if (verbose) {
        for (int s = 0; s < SLOTS; s++)
            if (names[s].text != NULL) printf("%11ld  %.*s\n", names[s].count, (int)names[s].len, names[s].text);
    }
    return 0;
}
