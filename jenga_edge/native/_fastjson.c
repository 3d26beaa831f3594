/* The agent's fast path: lines of JSON -> the graph's input columns, in C.
 *
 * One pass per line extracts the schema's fields (dotted paths into nested
 * objects) and writes them straight into numpy buffers the caller allocated:
 * no Python object per field. It is deliberately conservative: a line is
 * accepted only when it is well-formed JSON and every field it reads is a
 * plain case (a number, null, true/false, a vocabulary string; a number or
 * true/false given for a categorical column is looked up by the key tier 2 gives
 * it: 8081 and 8081.0 as "8081"). Anything else
 * (bad JSON, numeric strings, escapes in a read string, \u escapes anywhere,
 * duplicate keys, deep nesting, out-of-range numbers, unseen non-ASCII
 * categories) marks the line FALLBACK and the Python decoder, msgspec, takes
 * it and gives the precise reason.
 *
 * Text features (T_TEXT) copy a string's bytes into the row's slot of the text
 * block, applying contract/text_input.encode_text's rules (normalize dns: ASCII
 * lower-case and trailing dots stripped; cut to max_bytes at the head or the tail)
 * and write its length (-1: absent). Only strings without escapes are read here,
 * their UTF-8 checked as msgspec checks it; an escaped string (\n, \u0000, ...)
 * and any value that is not a string or null (a number: tier 2's wrong_type) go
 * to tier 2, so C never has to unescape.
 *
 * List elements and first-present paths (contract/events.py): a spec value that
 * is a list [ {b"0": spec} ] reads elements of a JSON array by index (an element
 * of another type, or a missing one, is a missing value, as records.get_path
 * reads it; a value that is not an array goes to tier 2). A target may belong
 * to a group, the paths one name is read from, with its path's priority: a
 * non-null value is written only if no earlier path of its group has written
 * one (a later-priority value seen first is overwritten), a null never counts.
 * Tier 2 decodes the whole value of such a path's top-level key (untyped), so
 * the plan marks those keys `strict`: everything under them is checked as
 * msgspec checks a decoded value (UTF-8 of every non-ASCII string and key,
 * floats in range), skipped or read. So this code never has to produce a reject
 * message, and it may only accept what msgspec accepts, with the same values:
 * tests/jenga_edge/test_fastjson.py checks that difference by difference.
 *
 * Input is untrusted: every read is bounds-checked against the line's end.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define COLD __attribute__((noinline, cold))   /* off the numbers' hot path: keeps read_leaf small */
#define HOT_INLINE inline __attribute__((always_inline))
#define RARELY(x) __builtin_expect(!!(x), 0)
#else
#define RARELY(x) (x)
#define COLD
#define HOT_INLINE inline
#endif

#define MAX_DEPTH 32
#define MAX_TARGETS 4
#define NUMBER_MAX 64
#define LOWER_MAX 256

enum { T_NUM = 0, T_BOOL = 1, T_CAT = 2, T_KEY = 3, T_TIME = 4, T_TEXT = 5 };
enum { OK = 0, FALLBACK = 1 };

typedef struct Node Node;

typedef struct {
    char *key;
    Py_ssize_t len;
    uint32_t hash;
    uint64_t a, b;               /* key_words() of the key */
    Node *child;                 /* interior: an object of more paths */
    int ntargets;                /* leaf: where its value goes */
    int kind[MAX_TARGETS];
    int index[MAX_TARGETS];
    int slot;                    /* for duplicate detection */
    int grouped;                 /* some target has a group (the rest of the entry is read only then) */
    int strict;                  /* top level: tier 2 decodes its whole value (see above) */
    int rare;                    /* grouped, strict or a list: read by read_entry_rare, off the hot path */
    Node *list;                  /* interior: an array; its entries' keys are element indices ("0", "2") */
    int group[MAX_TARGETS];      /* -1, or the first-present group of its name */
    int prio[MAX_TARGETS];       /* its path's place in the group (0 first) */
} Entry;

/* The key last seen at one position of an object (its n-th key). Events of one
 * sensor come with their keys in one order, so the key at a position is usually
 * the one seen there before: a match of its raw bytes (and the closing quote)
 * settles the key without scanning it or hashing it. Only plain ASCII keys (no
 * escape, no control byte: what scan_string passes as plain) are remembered, so
 * a match is exactly the string scan_string would have read, and node_find would
 * give the same entry (NULL for a key the plan does not read). */
#define PRED_MAX 64              /* positions of an object remembered */
#define PRED_KEY 64              /* bytes of a remembered key, its closing quote included */
typedef struct {
    const Entry *e;              /* the key's entry, or NULL: a key the plan does not read */
    int nw;                      /* words to compare; 0: nothing remembered */
    Py_ssize_t len;              /* the key's length */
    uint64_t w[PRED_KEY / 8];    /* its bytes and the closing quote, zero-padded */
    uint64_t last;               /* mask of the last word's bytes that count */
} Pred;

struct Node {
    Py_ssize_t nentries;
    Entry *entries;
    int32_t *table;              /* open addressing over entries, -1 = empty */
    uint32_t mask;
    Pred *pred;                  /* [PRED_MAX]; NULL in a vocabulary */
};

typedef struct {
    PyObject_HEAD
    Node *root;
    int nslots;
    Py_ssize_t n_num, n_cat, n_key;
    Node **vocabs;               /* per categorical column: category bytes -> index (in index[0]) */
    unsigned char *lower;        /* per categorical column: lower-case ASCII before the lookup */
    Py_ssize_t n_text, text_width;
    Py_ssize_t n_groups;         /* names read from the first present of several paths */
    int *text_max;               /* per text column: max_bytes */
    unsigned char *text_dns;     /* per text column: normalize dns */
    unsigned char *text_tail;    /* per text column: truncate tail (keep the last max_bytes) */
} Plan;

/* Per-line working state. */
typedef struct {
    const Plan *plan;
    const char *base;
    double *num;
    int64_t *cat;
    PyObject **keys;             /* new references, handed to the caller's lists on OK */
    unsigned char *seen;
    unsigned char *text;         /* [n_text, text_width] of this row */
    int64_t *text_len;           /* [n_text], -1 = absent */
    unsigned char *best;         /* [n_groups]: priority of the value written (255 none) */
    int strict;                  /* inside a strict top-level key's value */
} Line;

/* Keys are short and few: hash the length and up to 8 bytes at each end
 * (collisions only cost a probe; equality is checked with memcmp). */
static inline uint64_t load8(const char *s) {   /* fixed-size memcpy: one unaligned load */
    uint64_t v;
    memcpy(&v, s, 8);
    return v;
}

/* A key's first and last 8 bytes (all of it up to 16 bytes, with its length). */
static inline void key_words(const char *s, Py_ssize_t n, uint64_t *a, uint64_t *b) {
    if (n >= 8) {
        *a = load8(s);
        *b = load8(s + n - 8);
    } else {
        uint64_t v = 0;
        for (Py_ssize_t i = 0; i < n; i++) v = (v << 8) | (unsigned char)s[i];
        *a = v;
        *b = 0;
    }
}

static inline uint32_t hash_words(uint64_t a, uint64_t b, Py_ssize_t n) {
    uint64_t h = (a * 0x9E3779B97F4A7C15ull) ^ (b * 0xC2B2AE3D27D4EB4Full) ^ (uint64_t)n;
    return (uint32_t)(h ^ (h >> 29) ^ (h >> 41));
}

/* SWAR: does any byte of w need a look (quote, backslash, control, non-ASCII)? */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
static inline uint64_t special_bytes(uint64_t w) {
    uint64_t quote = w ^ (ONES * '"'), slash = w ^ (ONES * '\\');
    uint64_t zero_q = (quote - ONES) & ~quote, zero_s = (slash - ONES) & ~slash;
    uint64_t control = (w - ONES * 0x20) & ~w;
    return (zero_q | zero_s | control | w) & HIGHS;
}

static void node_free(Node *node) {
    if (!node) return;
    for (Py_ssize_t i = 0; i < node->nentries; i++) {
        PyMem_Free(node->entries[i].key);
        node_free(node->entries[i].child);
        node_free(node->entries[i].list);
    }
    PyMem_Free(node->entries);
    PyMem_Free(node->table);
    PyMem_Free(node->pred);
    PyMem_Free(node);
}

/* spec: dict bytes -> (dict spec) | [dict spec of element indices] | tuple of (kind, index[, group, prio]) */
/* limits: per target kind, the size of what its index points into (NULL: unchecked, for vocabularies) */
static Node *node_build(PyObject *spec, int *nslots, int depth, const Py_ssize_t *limits) {
    if (!PyDict_Check(spec) || depth > MAX_DEPTH) {
        PyErr_SetString(PyExc_TypeError, "plan spec: expected a dict of bytes keys, depth <= 32");
        return NULL;
    }
    Node *node = PyMem_Calloc(1, sizeof(Node));
    if (!node) return (Node *)PyErr_NoMemory();
    Py_ssize_t n = PyDict_Size(spec), pos = 0, i = 0;
    uint32_t size = 4;
    while (size < 2 * (uint32_t)n + 2) size <<= 1;
    node->entries = PyMem_Calloc(n ? n : 1, sizeof(Entry));
    node->table = PyMem_Malloc(size * sizeof(int32_t));
    if (limits) node->pred = PyMem_Calloc(PRED_MAX, sizeof(Pred));   /* objects of events, not vocabularies */
    if (!node->entries || !node->table || (limits && !node->pred)) { node_free(node); return (Node *)PyErr_NoMemory(); }
    memset(node->table, 0xff, size * sizeof(int32_t));
    node->mask = size - 1;
    PyObject *k, *v;
    while (PyDict_Next(spec, &pos, &k, &v)) {
        Entry *e = &node->entries[i];
        node->nentries = i + 1;
        if (!PyBytes_Check(k)) { PyErr_SetString(PyExc_TypeError, "plan spec: keys must be bytes"); goto fail; }
        e->len = PyBytes_GET_SIZE(k);
        e->key = PyMem_Malloc(e->len + 1);
        if (!e->key) { PyErr_NoMemory(); goto fail; }
        memcpy(e->key, PyBytes_AS_STRING(k), e->len + 1);
        key_words(e->key, e->len, &e->a, &e->b);
        e->hash = hash_words(e->a, e->b, e->len);
        e->slot = (*nslots)++;
        if (PyDict_Check(v)) {
            if (!(e->child = node_build(v, nslots, depth + 1, limits))) goto fail;
        } else if (PyList_Check(v) && PyList_GET_SIZE(v) == 1 && PyDict_Check(PyList_GET_ITEM(v, 0)) && limits) {
            if (!(e->list = node_build(PyList_GET_ITEM(v, 0), nslots, depth + 1, limits))) goto fail;
            e->rare = 1;
        } else if (PyTuple_Check(v) && PyTuple_GET_SIZE(v) >= 1 && PyTuple_GET_SIZE(v) <= MAX_TARGETS) {
            e->ntargets = (int)PyTuple_GET_SIZE(v);
            for (int t = 0; t < e->ntargets; t++) {
                PyObject *pair = PyTuple_GET_ITEM(v, t);
                e->group[t] = -1;
                e->prio[t] = 0;
                if (!PyArg_ParseTuple(pair, "ii|ii", &e->kind[t], &e->index[t], &e->group[t], &e->prio[t])) goto fail;
                e->grouped |= e->group[t] >= 0;
                e->rare |= e->group[t] >= 0;
                if (e->kind[t] < T_NUM || e->kind[t] > T_TEXT || e->index[t] < 0
                    || (limits && e->index[t] >= limits[e->kind[t]])
                    || e->group[t] < -1 || (limits && e->group[t] >= limits[T_TEXT + 1])
                    || e->prio[t] < 0 || e->prio[t] > 254) {
                    PyErr_SetString(PyExc_ValueError, "plan spec: a target's kind or index is out of range");
                    goto fail;
                }
            }
        } else {
            PyErr_SetString(PyExc_TypeError, "plan spec: a value must be a dict, a list of one dict, or a tuple of "
                                             "1-4 (kind, index[, group, prio]) targets");
            goto fail;
        }
        uint32_t h = e->hash & node->mask;
        while (node->table[h] >= 0) h = (h + 1) & node->mask;
        node->table[h] = (int32_t)i;
        i++;
    }
    return node;
fail:
    node_free(node);
    return NULL;
}

static const Entry *node_find(const Node *node, const char *key, Py_ssize_t len) {
    uint64_t a, b;
    key_words(key, len, &a, &b);
    uint32_t hash = hash_words(a, b, len), h = hash & node->mask;
    for (;;) {
        int32_t j = node->table[h];
        if (j < 0) return NULL;
        const Entry *e = &node->entries[j];
        /* up to 16 bytes the two words are the whole key */
        if (e->hash == hash && e->len == len && e->a == a && e->b == b
            && (len <= 16 || memcmp(e->key + 8, key + 8, len - 16) == 0))
            return e;
        h = (h + 1) & node->mask;
    }
}

/* q: the byte after a key's opening quote. Whether the key (and its closing quote)
 * is the one remembered in g, compared a word at a time. */
static inline int pred_match(const Pred *g, const char *q, const char *end) {
    int nw = g->nw;
    if (!nw || end - q < (Py_ssize_t)nw * 8) return 0;   /* also nothing remembered: nw 0 */
    uint64_t diff = (load8(q + 8 * (nw - 1)) ^ g->w[nw - 1]) & g->last;
    for (int i = 0; i < nw - 1; i++) diff |= load8(q + 8 * i) ^ g->w[i];
    return diff == 0;
}

/* Remember a plain ASCII key (len bytes at key) and its entry at one position. */
static void pred_set(Pred *g, const Entry *e, const char *key, Py_ssize_t len) {
    unsigned char buf[PRED_KEY], mask[8];
    if (len + 1 > PRED_KEY) { g->nw = 0; return; }
    memset(buf, 0, sizeof buf);
    memcpy(buf, key, len);
    buf[len] = '"';
    int nw = (int)((len + 8) / 8), tail = (int)(len + 1 - (Py_ssize_t)(nw - 1) * 8);
    memset(mask, 0, sizeof mask);
    memset(mask, 0xff, tail);
    memcpy(g->w, buf, (size_t)nw * 8);
    memcpy(&g->last, mask, 8);
    g->e = e;
    g->len = len;
    g->nw = nw;
}

/* ------------------------------------------------------------ the parser */

static inline const char *skip_ws(const char *p, const char *end) {
    /* compact JSON (the usual case) has none: one test, then the loop */
    while (p < end && (unsigned char)*p <= ' ' && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* p at the opening quote. Returns the byte after the closing quote, or NULL
 * (malformed, or something this fast path leaves to msgspec: \u escapes).
 * *plain: no escapes at all; *ascii: no byte >= 0x80. */
static const char *scan_string(const char *p, const char *end, int *plain, int *ascii) {
    *plain = 1; *ascii = 1;
    p++;
    while (p < end) {
        while (end - p >= 8) {                 /* 8 bytes at a time, straight to the first special one */
            uint64_t w, hit;
            memcpy(&w, p, 8);
            if (!(hit = special_bytes(w))) { p += 8; continue; }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            p += __builtin_ctzll(hit) >> 3;    /* the lowest flagged byte is the first special one */
#endif
            break;
        }
        if (p >= end) break;
        unsigned char c = (unsigned char)*p;
        if (c == '"') return p + 1;
        if (c < 0x20) return NULL;
        if (c >= 0x80) { *ascii = 0; p++; continue; }
        if (c == '\\') {
            *plain = 0;
            if (p + 1 >= end) return NULL;
            switch (p[1]) {
                case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't': p += 2; continue;
                default: return NULL;      /* \u (surrogate rules) and invalid escapes: msgspec decides */
            }
        }
        p++;
    }
    return NULL;
}

/* Strict JSON number grammar. Returns the end, or NULL. *is_int: no fraction
 * or exponent; *digits: integer digits. */
static const char *scan_number(const char *p, const char *end, int *is_int, int *digits) {
    const char *s = p;
    *is_int = 1;
    if (p < end && *p == '-') p++;
    if (p >= end) return NULL;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') { while (p < end && *p >= '0' && *p <= '9') p++; }
    else return NULL;
    *digits = (int)(p - s) - (*s == '-');
    if (p < end && *p == '.') {
        *is_int = 0; p++;
        const char *d = p;
        while (p < end && *p >= '0' && *p <= '9') p++;
        if (p == d) return NULL;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *is_int = 0; p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        const char *d = p;
        while (p < end && *p >= '0' && *p <= '9') p++;
        if (p == d) return NULL;
    }
    return p;
}

/* scan_number, reading the value on the way where Clinger's fast path (below) or an
 * integer of at most 15 digits gives it: *have is then 1 and *out is exactly what
 * number_value() gives for a value it accepts (the read numbers' usual case: the token is
 * walked once instead of twice). Otherwise *have is 0 and number_value() decides. */
static HOT_INLINE const char *scan_number_value(const char *p, const char *end, int *is_int, int *digits,
                                                double *out, int *have) {
    static const double pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                                   1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const char *s = p;
    int neg = 0, sig = 0, frac = 0, exp = 0;
    uint64_t m = 0;
    *is_int = 1;
    *have = 0;
    if (p < end && *p == '-') { neg = 1; p++; }
    if (p >= end) return NULL;
    if (*p == '0') p++;                          /* a leading zero is not significant (clinger) */
    else if (*p >= '1' && *p <= '9') {
        for (; p < end && *p >= '0' && *p <= '9'; p++, sig++)
            if (sig < 19) m = m * 10 + (uint64_t)(*p - '0');
    } else return NULL;
    *digits = (int)(p - s) - neg;
    if (p < end && *p == '.') {
        *is_int = 0; p++;
        const char *d = p;
        for (; p < end && *p >= '0' && *p <= '9'; p++, frac++) {
            if (m == 0 && *p == '0') continue;   /* zeros before the first significant digit */
            if (++sig < 19) m = m * 10 + (uint64_t)(*p - '0');
        }
        if (p == d) return NULL;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        *is_int = 0; p++;
        if (p < end && (*p == '+' || *p == '-')) eneg = (*p++ == '-');
        const char *d = p;
        for (; p < end && *p >= '0' && *p <= '9'; p++)
            if (exp < 100000) exp = exp * 10 + (*p - '0');
        if (p == d) return NULL;
        if (eneg) exp = -exp;
    }
    if (*is_int) {
        if (*digits > 15) return p;              /* big integers: number_value's FALLBACK */
        *out = (double)(neg ? -(int64_t)m : (int64_t)m);   /* -0 is the integer 0 */
        *have = 1;
        return p;
    }
    if (sig > 15) return p;
    exp -= frac;
    double v = (double)m;
    if (m == 0) v = 0.0;
    else if (exp >= 0 && exp <= 22) v *= pow10[exp];
    else if (exp < 0 && exp >= -22) v /= pow10[-exp];
    else return p;
    *out = neg ? -v : v;                         /* |v| < 1e38: finite, within float32's range */
    *have = 1;
    return p;
}

/* Clinger's fast path: with at most 15 significant digits and a power of ten
 * within 1e22, mantissa and power are exact doubles, so one multiply or divide
 * gives the correctly rounded result (what any correct parser returns). */
static int clinger(const char *p, const char *e, double *out) {
    static const double pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                                   1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    int neg = (*p == '-'), digits = 0, frac = 0, exp = 0, in_frac = 0;
    uint64_t m = 0;
    if (neg) p++;
    for (; p < e && *p != 'e' && *p != 'E'; p++) {
        if (*p == '.') { in_frac = 1; continue; }
        if (m == 0 && *p == '0') { frac += in_frac; continue; }   /* leading zeros are not significant */
        if (++digits > 15) return 0;
        m = m * 10 + (uint64_t)(*p - '0');
        frac += in_frac;
    }
    if (p < e) {                                  /* exponent */
        int eneg = 0, ev = 0;
        p++;
        if (*p == '+' || *p == '-') eneg = (*p++ == '-');
        for (; p < e; p++) { if (ev > 10000) return 0; ev = ev * 10 + (*p - '0'); }
        exp = eneg ? -ev : ev;
    }
    exp -= frac;
    double v = (double)m;
    if (m == 0) v = 0.0;
    else if (exp >= 0 && exp <= 22) v *= pow10[exp];
    else if (exp < 0 && exp >= -22) v /= pow10[-exp];
    else return 0;
    *out = neg ? -v : v;
    return 1;
}

/* An integer token of at most 18 digits, exactly (-0 is the integer 0, as msgspec reads it). */
static int64_t int_value(const char *s, const char *e) {
    int neg = (*s == '-');
    if (neg) s++;
    int64_t v = 0;
    while (s < e) v = v * 10 + (*s++ - '0');
    return neg ? -v : v;
}

/* A number token with a fraction or exponent, correctly rounded; 0 when it cannot be read here. */
static int float_value(const char *s, const char *e, double *out) {
    if (clinger(s, e, out)) return 1;
    if (e - s >= NUMBER_MAX) return 0;
    char buf[NUMBER_MAX], *stop = NULL;
    memcpy(buf, s, e - s);
    buf[e - s] = '\0';
    double v = PyOS_string_to_double(buf, &stop, NULL);   /* correctly rounded, locale-free */
    if (v == -1.0 && PyErr_Occurred()) { PyErr_Clear(); return 0; }
    if (stop != buf + (e - s)) return 0;
    *out = v;
    return 1;
}

/* The value of a number token, or FALLBACK when it is not a finite float32-range value. */
static int number_value(const char *s, const char *e, int is_int, int digits, double *out) {
    if (is_int) {
        if (digits > 15) return FALLBACK;                 /* big integers: Python's int rules */
        *out = (double)int_value(s, e);
        return OK;
    }
    if (!float_value(s, e, out) || !isfinite(*out) || fabs(*out) > FLT_MAX) return FALLBACK;
    return OK;
}

static const char *skip_value(const char *p, const char *end, int depth, int strict);
static int utf8_ok(const char *s, Py_ssize_t n);

/* strict: a string as msgspec decodes one (valid UTF-8), a float token in range. */
static COLD const char *strict_string(const char *p, const char *end) {
    int plain, ascii;
    const char *stop = scan_string(p, end, &plain, &ascii);
    return (stop && (ascii || utf8_ok(p + 1, stop - p - 2))) ? stop : NULL;
}

static COLD const char *strict_number(const char *p, const char *end) {
    int is_int, digits;
    double v;
    const char *stop = scan_number(p, end, &is_int, &digits);
    if (!stop || is_int) return stop;              /* integers of any size: a Python int */
    return (float_value(p, stop, &v) && isfinite(v)) ? stop : NULL;
}

static const char *skip_container(const char *p, const char *end, int depth, char close, int strict) {
    if (depth > MAX_DEPTH) return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == close) return p + 1;
    for (;;) {
        if (close == '}') {
            int plain, ascii;
            if (p >= end || *p != '"') return NULL;
            if (!(p = strict ? strict_string(p, end) : scan_string(p, end, &plain, &ascii))) return NULL;
            p = skip_ws(p, end);
            if (p >= end || *p != ':') return NULL;
            p = skip_ws(p + 1, end);
        }
        if (!(p = skip_value(p, end, depth + 1, strict))) return NULL;
        p = skip_ws(p, end);
        if (p >= end) return NULL;
        if (*p == close) return p + 1;
        if (*p != ',') return NULL;
        p = skip_ws(p + 1, end);
    }
}

static const char *skip_value(const char *p, const char *end, int depth, int strict) {
    if (p >= end) return NULL;
    int plain, ascii, is_int, digits;
    switch (*p) {
        case '"': return strict ? strict_string(p, end) : scan_string(p, end, &plain, &ascii);
        case '{': return skip_container(p, end, depth, '}', strict);
        case '[': return skip_container(p, end, depth, ']', strict);
        case 't': return (end - p >= 4 && memcmp(p, "true", 4) == 0) ? p + 4 : NULL;
        case 'f': return (end - p >= 5 && memcmp(p, "false", 5) == 0) ? p + 5 : NULL;
        case 'n': return (end - p >= 4 && memcmp(p, "null", 4) == 0) ? p + 4 : NULL;
        default: return strict ? strict_number(p, end) : scan_number(p, end, &is_int, &digits);
    }
}

/* A key field's value as the Python object msgspec would give, or NULL (FALLBACK). */
static PyObject *key_value(char type, const char *s, const char *e, int plain, int is_int, int digits) {
    switch (type) {
        case 't': Py_RETURN_TRUE;
        case 'f': Py_RETURN_FALSE;
        case 'n': Py_RETURN_NONE;
        case 's': {
            if (!plain) return NULL;                 /* escapes: msgspec unescapes */
            PyObject *str = PyUnicode_DecodeUTF8(s + 1, e - s - 2, "strict");
            if (!str) PyErr_Clear();                 /* invalid UTF-8: msgspec's bad_json */
            return str;
        }
        default: {
            PyObject *num;
            double v;
            if (is_int)
                num = digits > 18 ? NULL : PyLong_FromLongLong(int_value(s, e));   /* longer: msgspec's rules */
            else        /* out of range: msgspec's "Number out of range" */
                num = (float_value(s, e, &v) && isfinite(v)) ? PyFloat_FromDouble(v) : NULL;
            if (!num) PyErr_Clear();
            return num;
        }
    }
}

/* A string value for a categorical column: its vocabulary index, OOV (0) for
 * a plain ASCII miss, FALLBACK for what Python's category_key might map. */
static int category_index(const Plan *plan, int col, const char *s, Py_ssize_t n, int ascii, int64_t *out) {
    char folded[LOWER_MAX];
    folded[0] = 0;                                /* (quiets -Wmaybe-uninitialized for n == 0) */
    if (plan->lower[col]) {                       /* the normalizer's lower-case; non-ASCII: Python's rules */
        if (!ascii || n > LOWER_MAX) return FALLBACK;
        for (Py_ssize_t i = 0; i < n; i++) folded[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
        s = folded;
    }
    const Entry *hit = node_find(plan->vocabs[col], s, n);
    if (hit) {
        *out = hit->index[0];
        return OK;
    }
    /* A miss maps to the out-of-vocabulary index unless stripping it could make a hit. */
    if (!ascii || (n > 0 && (s[0] == ' ' || s[n - 1] == ' '))) return FALLBACK;
    *out = 0;
    return OK;
}

/* A number, true or false for a categorical column: looked up by the key tier 2's
 * category_key (contract/values.py) gives the value msgspec decodes it to: an integer's
 * digits (-0 is the integer 0: "0"), an integral float as an integer (8081.0 and 8.081e3:
 * "8081"; -0.0: "0"), another float as repr() spells it (PyOS_double_to_string 'r' is
 * float.__repr__), "true" / "false". FALLBACK where that is not sure here: integers of
 * more than 18 digits, integral floats beyond int64, numbers out of range (a reject). */
static int number_category(const Plan *plan, int col, char type, const char *s, const char *e, int is_int,
                           int digits, int64_t *out) {
    char buf[24];
    double v;
    if (type == 't') return category_index(plan, col, "true", 4, 1, out);
    if (type == 'f') return category_index(plan, col, "false", 5, 1, out);
    if (is_int) {
        if (digits > 18) return FALLBACK;
        if (e - s == 2 && s[0] == '-' && s[1] == '0') return category_index(plan, col, "0", 1, 1, out);
        return category_index(plan, col, s, e - s, 1, out);   /* JSON has no leading zeros: str(int) */
    }
    if (!float_value(s, e, &v) || !isfinite(v)) return FALLBACK;
    if (v == floor(v)) {
        if (fabs(v) >= 0x1p63) return FALLBACK;
        int n = snprintf(buf, sizeof buf, "%lld", (long long)v);   /* exact: |v| < 2^63 is an int64 */
        return category_index(plan, col, buf, n, 1, out);
    }
    char *r = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (!r) { PyErr_Clear(); return FALLBACK; }
    int st = category_index(plan, col, r, (Py_ssize_t)strlen(r), 1, out);
    PyMem_Free(r);
    return st;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static HOT_INLINE int digits_at(const char *s, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

/* An ISO 8601 time, as timestamps.parse_time reads it: YYYY-MM-DD[Tt ]HH:MM:SS[.frac][Z|+HH[:]MM].
 * Only the plain, valid forms are read here; the rest (spaces, bad dates) is FALLBACK. */
static int iso_time(const char *s, Py_ssize_t n, double *out) {
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, se;
    if (n < 19 || s[4] != '-' || s[7] != '-' || !(s[10] == 'T' || s[10] == 't' || s[10] == ' ')
        || s[13] != ':' || s[16] != ':')
        return FALLBACK;
    if (!digits_at(s, 4, &y) || !digits_at(s + 5, 2, &mo) || !digits_at(s + 8, 2, &d) || !digits_at(s + 11, 2, &h)
        || !digits_at(s + 14, 2, &mi) || !digits_at(s + 17, 2, &se))
        return FALLBACK;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 2 || y > 9998 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap) || h > 23
        || mi > 59 || se > 59)
        return FALLBACK;
    const char *p = s + 19, *end = s + n;
    double frac = 0.0;
    if (p < end && (*p == '.' || *p == ',')) {
        const char *f = ++p;
        uint64_t m = 0;                            /* the digits' value, while there are at most 15 */
        while (p < end && *p >= '0' && *p <= '9') {
            if (p - f < 15) m = m * 10 + (uint64_t)(*p - '0');
            p++;
        }
        if (p == f || p - f > NUMBER_MAX - 3) return FALLBACK;
        if (p - f <= 15) {
            /* float("0." + frac), exactly: digits < 10^15 < 2^53 and 10^d (d <= 22) are exact doubles,
             * so one IEEE division is the correctly rounded quotient, which float() also returns */
            static const double p10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
            frac = (double)m / p10[p - f];
        } else {
            char buf[NUMBER_MAX];
            buf[0] = '0'; buf[1] = '.';
            memcpy(buf + 2, f, p - f);
            buf[2 + (p - f)] = '\0';
            frac = PyOS_string_to_double(buf, NULL, NULL);    /* float("0." + frac), as parse_time adds it */
            if (frac == -1.0 && PyErr_Occurred()) { PyErr_Clear(); return FALLBACK; }
        }
    }
    int64_t offset = 0;
    if (p < end && (*p == 'Z' || *p == 'z')) {
        p++;
    } else if (p < end && (*p == '+' || *p == '-')) {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (end - p < 4 || !digits_at(p, 2, &oh)) return FALLBACK;
        p += 2;
        if (*p == ':') p++;
        if (end - p < 2 || !digits_at(p, 2, &om)) return FALLBACK;
        p += 2;
        if (oh * 60 + om >= 24 * 60) return FALLBACK;   /* timezone() refuses a day or more */
        offset = sign * (oh * 3600 + om * 60);
    }
    if (p != end) return FALLBACK;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
    *out = (double)secs + frac;
    return OK;
}

/* A string's bytes into text column col, as encode_text gives them: normalize dns
 * lower-cases A-Z and strips trailing dots (lower-casing never makes a dot, so the
 * order does not matter), then a text longer than max_bytes keeps its head or tail. */
static COLD void write_text(Line *ln, int col, const char *s, Py_ssize_t n) {
    const Plan *pl = ln->plan;
    unsigned char *dst = ln->text + (Py_ssize_t)col * pl->text_width;
    Py_ssize_t max = pl->text_max[col];
    int dns = pl->text_dns[col];
    if (dns)
        while (n > 0 && s[n - 1] == '.') n--;
    if (n > max) {
        if (pl->text_tail[col]) s += n - max;
        n = max;
    }
    if (dns) {
        for (Py_ssize_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            dst[i] = (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
        }
    } else {
        memcpy(dst, s, n);
    }
    memset(dst + n, 0, pl->text_width - n);
    ln->text_len[col] = n;
}

/* Non-ASCII bytes in a string: valid UTF-8 as msgspec (and Python's strict codec) sees it? */
static COLD int utf8_ok(const char *s, Py_ssize_t n) {
    PyObject *str = PyUnicode_DecodeUTF8(s, n, "strict");
    if (!str) { PyErr_Clear(); return 0; }
    Py_DECREF(str);
    return 1;
}

/* Store one leaf value into its targets. p at the value; returns the end or NULL (FALLBACK). */
/* rare: a constant where inlined; 0 (the hot path: no group, not in a strict value) drops those checks. */
static HOT_INLINE const char *read_leaf(Line *ln, const Entry *e, const char *p, const char *end, int rare) {
    const char *start = p, *stop;
    int plain = 1, ascii = 1, is_int = 0, digits = 0, have = 0;
    double nv = 0.0;                             /* a number's value, when have */
    char type;
    switch (*p) {
        case '"': type = 's'; stop = scan_string(p, end, &plain, &ascii); break;
        case 't': type = 't'; stop = (end - p >= 4 && memcmp(p, "true", 4) == 0) ? p + 4 : NULL; break;
        case 'f': type = 'f'; stop = (end - p >= 5 && memcmp(p, "false", 5) == 0) ? p + 5 : NULL; break;
        case 'n': type = 'n'; stop = (end - p >= 4 && memcmp(p, "null", 4) == 0) ? p + 4 : NULL; break;
        case '{': case '[': return NULL;       /* msgspec: wrong_type */
        case '0':                                 /* 0 and 0.0 before a comma or brace: the most common values */
            type = '0';
            if (end - p >= 2 && (p[1] == ',' || p[1] == '}')) {
                stop = p + 1; is_int = 1; digits = 1; nv = 0.0; have = 1;
            } else if (end - p >= 4 && p[1] == '.' && p[2] == '0' && (p[3] == ',' || p[3] == '}')) {
                stop = p + 3; is_int = 0; digits = 1; nv = 0.0; have = 1;
            } else {
                stop = scan_number_value(p, end, &is_int, &digits, &nv, &have);
            }
            break;
        default: type = '0'; stop = scan_number_value(p, end, &is_int, &digits, &nv, &have); break;
    }
    if (!stop) return NULL;
    if (rare && ln->strict && !skip_value(start, stop, 0, 1)) return NULL;   /* what tier 2 decodes, even if unused */
    unsigned wrote = 0;   /* targets of a group written: one bit each */
    for (int t = 0; t < e->ntargets; t++) {
        int idx = e->index[t];
        double v;
        if (rare && e->grouped && e->group[t] >= 0) {   /* a null never counts; an earlier path's value wins */
            if (type == 'n' || e->prio[t] >= ln->best[e->group[t]]) continue;
            wrote |= 1u << t;
        }
        switch (e->kind[t]) {
            case T_KEY: {
                PyObject *obj = key_value(type, start, stop, plain, is_int, digits);
                if (!obj) return NULL;
                Py_XSETREF(ln->keys[idx], obj);
                break;
            }
            case T_NUM:
                if (type == 'n') break;                                  /* missing: stays NaN */
                if (type != '0') return NULL;
                if (have) v = nv;
                else if (number_value(start, stop, is_int, digits, &v) != OK) return NULL;
                ln->num[idx] = v;
                break;
            case T_BOOL:
                if (type == 'n') break;
                if (type == 't' || type == 'f') { ln->num[idx] = type == 't' ? 1.0 : 0.0; break; }
                if (type != '0') return NULL;
                if (have) v = nv;
                else if (number_value(start, stop, is_int, digits, &v) != OK) return NULL;
                if (v != 0.0 && v != 1.0) return NULL;
                ln->num[idx] = v;
                break;
            case T_TIME:
                if (type == 'n') break;                                  /* missing: stays NaN */
                if (type == 's') {
                    if (!plain || !ascii || iso_time(start + 1, stop - start - 2, &v) != OK) return NULL;
                } else if (type != '0') {
                    return NULL;
                } else if (have) {
                    v = nv;                                               /* epoch seconds */
                } else if (number_value(start, stop, is_int, digits, &v) != OK) {
                    return NULL;                                          /* FALLBACK */
                }
                ln->num[idx] = v;
                break;
            case T_TEXT:
                if (type == 'n') break;                                  /* missing: stays -1 */
                if (type != 's' || !plain) return NULL;                  /* tier 2: wrong_type, or unescape */
                if (!ascii && !utf8_ok(start + 1, stop - start - 2)) return NULL;   /* msgspec's bad_json */
                write_text(ln, idx, start + 1, stop - start - 2);
                break;
            case T_CAT:
                if (type == 'n') break;                                  /* missing: stays -1 */
                if (type != 's') {                                       /* 8081, 8081.0, true: tier 2's key */
                    if (number_category(ln->plan, idx, type, start, stop, is_int, digits, &ln->cat[idx]) != OK)
                        return NULL;
                    break;
                }
                if (!plain) return NULL;
                if (category_index(ln->plan, idx, start + 1, stop - start - 2, ascii, &ln->cat[idx]) != OK)
                    return NULL;
                break;
        }
    }
    for (int t = 0; rare && wrote && t < e->ntargets; t++)   /* after all targets: a key and a feature of one name share a group */
        if (wrote & (1u << t)) ln->best[e->group[t]] = (unsigned char)e->prio[t];
    return stop;
}

static const char *read_object(Line *ln, const Node *node, const char *p, const char *end, int depth);

/* An array whose elements some paths read (node: element index -> entry). An element
 * that is not what its path expects (not an object on the way, null) is a missing
 * value, as get_path reads it; one of the wrong type for a leaf goes to tier 2. */
static const char *read_array(Line *ln, const Node *node, const char *p, const char *end, int depth) {
    if (depth > MAX_DEPTH) return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']') return p + 1;
    for (int i = 0;; i++) {
        char key[12];
        int klen = i < 256 ? snprintf(key, sizeof key, "%d", i) : 0;
        const Entry *e = klen ? node_find(node, key, klen) : NULL;
        if (p >= end) return NULL;
        if (e && e->ntargets) {
            p = read_leaf(ln, e, p, end, 1);
        } else if (e && e->child && *p == '{') {
            p = read_object(ln, e->child, p, end, depth + 1);
        } else {
            p = skip_value(p, end, depth + 1, ln->strict);
        }
        if (!p) return NULL;
        p = skip_ws(p, end);
        if (p >= end) return NULL;
        if (*p == ']') return p + 1;
        if (*p != ',') return NULL;
        p = skip_ws(p + 1, end);
    }
}

/* An entry that is grouped, strict or a list, or any entry inside a strict value. */
static COLD const char *read_entry_rare(Line *ln, const Entry *e, const char *p, const char *end, int depth) {
    int top = e->strict;
    if (top) ln->strict = 1;                      /* a top-level key tier 2 decodes whole */
    if (e->child) {
        if (*p == '{') p = read_object(ln, e->child, p, end, depth + 1);
        else if (end - p >= 4 && memcmp(p, "null", 4) == 0) p += 4;
        else p = NULL;
    } else if (e->list) {
        if (*p == '[') p = read_array(ln, e->list, p, end, depth + 1);
        else if (end - p >= 4 && memcmp(p, "null", 4) == 0) p += 4;
        else p = NULL;                            /* not an array: tier 2 (a missing value there) */
    } else {
        p = read_leaf(ln, e, p, end, 1);
    }
    if (top) ln->strict = 0;
    return p;
}

static const char *read_object(Line *ln, const Node *node, const char *p, const char *end, int depth) {
    if (depth > MAX_DEPTH) return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') return p + 1;
    for (int i = 0;; i++) {
        int plain, ascii;
        const char *k = p;
        const Entry *e;
        Pred *g = (node->pred && i < PRED_MAX) ? &node->pred[i] : NULL;
        if (p >= end || *p != '"') return NULL;
        if (g && pred_match(g, p + 1, end)) {   /* the key seen at this position before */
            e = g->e;
            p += g->len + 2;
        } else {
            if (!(p = scan_string(p, end, &plain, &ascii))) return NULL;
            if (!plain) return NULL;      /* an escaped key may spell a field we read: msgspec decides */
            if (RARELY(ln->strict) && !ascii && !utf8_ok(k + 1, p - k - 2)) return NULL;
            e = node_find(node, k + 1, p - k - 2);
            if (g && ascii) pred_set(g, e, k + 1, p - k - 2);
        }
        p = skip_ws(p, end);
        if (p >= end || *p != ':') return NULL;
        p = skip_ws(p + 1, end);
        if (p >= end) return NULL;
        if (e) {
            if (ln->seen[e->slot]) return NULL;   /* a duplicate key: msgspec's last-wins rules */
            ln->seen[e->slot] = 1;
            if (RARELY(e->rare | ln->strict)) {
                p = read_entry_rare(ln, e, p, end, depth);
            } else if (e->child) {
                if (*p == '{') p = read_object(ln, e->child, p, end, depth + 1);
                else if (end - p >= 4 && memcmp(p, "null", 4) == 0) p += 4;
                else return NULL;
            } else {
                p = read_leaf(ln, e, p, end, 0);
            }
        } else {
            p = skip_value(p, end, depth + 1, ln->strict);
        }
        if (!p) return NULL;
        p = skip_ws(p, end);
        if (p >= end) return NULL;
        if (*p == '}') return p + 1;
        if (*p != ',') return NULL;
        p = skip_ws(p + 1, end);
    }
}

static int decode_line(Line *ln, const char *s, Py_ssize_t n) {
    const char *end = s + n, *p = skip_ws(s, end);
    if (p >= end || *p != '{') return FALLBACK;
    memset(ln->seen, 0, ln->plan->nslots);
    p = read_object(ln, ln->plan->root, p, end, 0);
    if (!p) return FALLBACK;
    return skip_ws(p, end) == end ? OK : FALLBACK;
}

/* ---------------------------------------------------------- Python glue */

/* Is the buffer's item type one of these struct codes ("d", "lq" for int64, "B")? */
static int has_format(const Py_buffer *view, const char *codes) {
    const char *f = view->format ? view->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    return strlen(f) == 1 && strchr(codes, *f) != NULL;
}

/* formats: the struct codes accepted for the items */
static int get_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t itemsize, Py_ssize_t need, const char *formats,
                      const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (view->itemsize != itemsize || view->len < need * itemsize || !has_format(view, formats)) {
        PyErr_Format(PyExc_ValueError, "%s: expected a C-contiguous buffer of %zd items of type '%s'",
                     what, need, formats);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *Plan_decode(Plan *self, PyObject *args) {
    PyObject *lines, *o_num, *o_cat, *keys, *o_status, *chunk = NULL, *o_text = NULL, *o_tlen = NULL;
    if (!PyArg_ParseTuple(args, "OOOO!O|OO", &lines, &o_num, &o_cat, &PyList_Type, &keys, &o_status, &o_text,
                          &o_tlen))
        return NULL;
    if (self->root && (self->n_text > 0) != (o_tlen != NULL)) {
        PyErr_SetString(PyExc_ValueError, "decode: text and text_len are given exactly when the plan has text columns");
        return NULL;
    }
    Py_buffer b_num = {0}, b_cat = {0}, b_status = {0}, b_spans = {0}, b_text = {0}, b_tlen = {0};
    const int64_t *spans = NULL;
    Py_ssize_t n;
    if (!self->root) {
        PyErr_SetString(PyExc_RuntimeError, "Plan: not initialised");
        return NULL;
    }
    if (PyList_Check(lines)) {
        n = PyList_GET_SIZE(lines);
    } else if (PyTuple_Check(lines) && PyTuple_GET_SIZE(lines) == 2 && PyBytes_Check(PyTuple_GET_ITEM(lines, 0))) {
        /* (buffer, spans): lines are buffer[spans[i, 0]:spans[i, 1]], no bytes object each */
        chunk = PyTuple_GET_ITEM(lines, 0);
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(lines, 1), &b_spans, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
            return NULL;
        if (!has_format(&b_spans, "lq")) {
            PyBuffer_Release(&b_spans);
            PyErr_SetString(PyExc_ValueError, "decode: spans must be int64 [n, 2] ranges inside the buffer");
            return NULL;
        }
        n = b_spans.len / 16;
        spans = (const int64_t *)b_spans.buf;
        Py_ssize_t size = PyBytes_GET_SIZE(chunk);
        for (Py_ssize_t i = 0; i < n; i++) {
            if (b_spans.itemsize != 8 || spans[2 * i] < 0 || spans[2 * i] > spans[2 * i + 1] || spans[2 * i + 1] > size) {
                PyBuffer_Release(&b_spans);
                PyErr_SetString(PyExc_ValueError, "decode: spans must be int64 [n, 2] ranges inside the buffer");
                return NULL;
            }
        }
    } else {
        PyErr_SetString(PyExc_TypeError, "decode: lines must be a list of bytes or a (bytes, spans) tuple");
        return NULL;
    }
    PyObject *result = NULL;
    unsigned char *seen = NULL, *best = NULL;
    PyObject **kv = NULL;
    if (PyList_GET_SIZE(keys) != self->n_key) {
        PyErr_SetString(PyExc_ValueError, "keys: expected one list per key field");
        goto done;
    }
    for (Py_ssize_t j = 0; j < self->n_key; j++) {
        PyObject *col = PyList_GET_ITEM(keys, j);
        if (!PyList_Check(col) || PyList_GET_SIZE(col) != n) {
            PyErr_SetString(PyExc_ValueError, "keys: each key field needs a list as long as lines");
            goto done;
        }
    }
    if (get_buffer(o_num, &b_num, 8, n * self->n_num, "d", "num") < 0) goto done;
    if (get_buffer(o_cat, &b_cat, 8, n * self->n_cat, "lq", "cat") < 0) goto done;
    if (get_buffer(o_status, &b_status, 1, n, "B", "status") < 0) goto done;
    if (o_tlen) {
        if (get_buffer(o_text, &b_text, 1, n * self->n_text * self->text_width, "B", "text") < 0) goto done;
        if (get_buffer(o_tlen, &b_tlen, 8, n * self->n_text, "lq", "text_len") < 0) goto done;
    }
    seen = PyMem_Malloc(self->nslots ? self->nslots : 1);
    best = PyMem_Malloc(self->n_groups ? self->n_groups : 1);
    kv = PyMem_Calloc(self->n_key ? self->n_key : 1, sizeof(PyObject *));
    if (!seen || !kv || !best) { PyErr_NoMemory(); goto done; }
    Py_ssize_t ok = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Line ln = {self, NULL, (double *)b_num.buf + i * self->n_num, (int64_t *)b_cat.buf + i * self->n_cat,
                   kv, seen, NULL, NULL, best, 0};
        if (self->n_groups) memset(best, 255, self->n_groups);
        for (Py_ssize_t j = 0; j < self->n_num; j++) ln.num[j] = NAN;
        for (Py_ssize_t j = 0; j < self->n_cat; j++) ln.cat[j] = -1;
        if (self->n_text) {
            ln.text = (unsigned char *)b_text.buf + i * self->n_text * self->text_width;
            ln.text_len = (int64_t *)b_tlen.buf + i * self->n_text;
            for (Py_ssize_t j = 0; j < self->n_text; j++) ln.text_len[j] = -1;
        }
        unsigned char st = FALLBACK;
        if (chunk) {
            ln.base = PyBytes_AS_STRING(chunk) + spans[2 * i];
            st = (unsigned char)decode_line(&ln, ln.base, spans[2 * i + 1] - spans[2 * i]);
        } else {
            PyObject *item = PyList_GET_ITEM(lines, i);
            if (PyBytes_Check(item)) {
                ln.base = PyBytes_AS_STRING(item);
                st = (unsigned char)decode_line(&ln, ln.base, PyBytes_GET_SIZE(item));
            }
        }
        for (Py_ssize_t j = 0; j < self->n_key; j++) {
            if (kv[j] && st == OK) PyList_SetItem(PyList_GET_ITEM(keys, j), i, kv[j]);   /* steals */
            else Py_XDECREF(kv[j]);
            kv[j] = NULL;
        }
        ((unsigned char *)b_status.buf)[i] = st;
        ok += (st == OK);
    }
    result = PyLong_FromSsize_t(ok);
done:
    PyMem_Free(seen);
    PyMem_Free(best);
    PyMem_Free(kv);
    if (b_num.obj) PyBuffer_Release(&b_num);
    if (b_cat.obj) PyBuffer_Release(&b_cat);
    if (b_status.obj) PyBuffer_Release(&b_status);
    if (b_spans.obj) PyBuffer_Release(&b_spans);
    if (b_text.obj) PyBuffer_Release(&b_text);
    if (b_tlen.obj) PyBuffer_Release(&b_tlen);
    return result;
}

/* ------------------------------------------------------------- framing */

/* The line ending at nl (exclusive), from start: its length without one trailing '\r'. */
static inline Py_ssize_t content_len(const char *start, const char *nl) {
    Py_ssize_t n = nl - start;
    return (n > 0 && start[n - 1] == '\r') ? n - 1 : n;
}

static PyObject *frame(PyObject *Py_UNUSED(module), PyObject *arg) {
    if (!PyBytes_Check(arg)) { PyErr_SetString(PyExc_TypeError, "frame: expected bytes"); return NULL; }
    const char *p = PyBytes_AS_STRING(arg), *end = p + PyBytes_GET_SIZE(arg);
    Py_ssize_t count = 0, longest = 0;
    for (;;) {
        const char *nl = memchr(p, '\n', end - p);
        if (!nl) break;
        if (nl - p > longest) longest = nl - p;
        count += content_len(p, nl) > 0;
        p = nl + 1;
    }
    return Py_BuildValue("nn", count, longest);
}

static PyObject *spans_of(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *buf, *out;
    Py_ssize_t start, k;
    if (!PyArg_ParseTuple(args, "O!nnO", &PyBytes_Type, &buf, &start, &k, &out)) return NULL;
    Py_buffer b = {0};
    if (get_buffer(out, &b, 8, 2 * k, "lq", "spans") < 0) return NULL;
    const char *base = PyBytes_AS_STRING(buf), *p = base + start, *end = base + PyBytes_GET_SIZE(buf);
    int64_t *o = (int64_t *)b.buf;
    Py_ssize_t got = 0;
    if (start < 0 || start > PyBytes_GET_SIZE(buf)) p = end;
    while (got < k && p < end) {
        const char *nl = memchr(p, '\n', end - p);
        if (!nl) break;
        Py_ssize_t n = content_len(p, nl);
        if (n > 0) { o[2 * got] = p - base; o[2 * got + 1] = p - base + n; got++; }
        p = nl + 1;
    }
    PyBuffer_Release(&b);
    if (got < k) {
        PyErr_Format(PyExc_ValueError, "spans: %zd lines asked, %zd found", k, got);
        return NULL;
    }
    return PyLong_FromSsize_t(p - base);
}

static PyMethodDef module_methods[] = {
    {"frame", (PyCFunction)frame, METH_O,
     "frame(buf) -> (lines, longest): non-empty newline-terminated lines in buf (one trailing \\r\n"
     "stripped), and the longest raw line's length. Bytes after the last newline are not counted."},
    {"spans", (PyCFunction)spans_of, METH_VARARGS,
     "spans(buf, start, k, out) -> end: the next k non-empty lines from byte start, as int64\n"
     "[start, stop) pairs in out [k, 2]; end is the byte after the k-th line's newline."},
    {NULL, NULL, 0, NULL}};

/* text: per text column (max_bytes, normalize dns, truncate tail); each max_bytes in 1..text_width. */
static int init_text(Plan *self, PyObject *text, Py_ssize_t width) {
    Py_ssize_t n = text ? PyTuple_GET_SIZE(text) : 0;
    if (self->root || width < 0 || (n > 0) != (width > 0)) {
        PyErr_SetString(PyExc_ValueError, "Plan: text columns need a text_width >= 1 (and none without them)");
        return -1;
    }
    PyMem_Free(self->text_max); PyMem_Free(self->text_dns); PyMem_Free(self->text_tail);
    self->text_max = PyMem_Calloc(n ? n : 1, sizeof(int));
    self->text_dns = PyMem_Calloc(n ? n : 1, 1);
    self->text_tail = PyMem_Calloc(n ? n : 1, 1);
    if (!self->text_max || !self->text_dns || !self->text_tail) { PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < n; i++) {
        int max, dns, tail;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(text, i), "ipp", &max, &dns, &tail)) return -1;
        if (max < 1 || max > width) {
            PyErr_SetString(PyExc_ValueError, "Plan: a text column's max_bytes must be 1 to text_width");
            return -1;
        }
        self->text_max[i] = max; self->text_dns[i] = (unsigned char)dns; self->text_tail[i] = (unsigned char)tail;
    }
    self->n_text = n;
    self->text_width = width;
    return 0;
}

static int Plan_init(Plan *self, PyObject *args, PyObject *kwds) {
    PyObject *spec, *vocabs, *lower = NULL, *text = NULL, *strict = NULL;
    Py_ssize_t n_num, n_cat, n_key, text_width = 0, n_groups = 0;
    static char *kwlist[] = {"spec", "n_num", "n_cat", "n_key", "vocabs", "lower", "text", "text_width", "n_groups",
                             "strict", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OnnnO!|O!O!nnO!", kwlist, &spec, &n_num, &n_cat, &n_key,
                                     &PyTuple_Type, &vocabs, &PyTuple_Type, &lower, &PyTuple_Type, &text,
                                     &text_width, &n_groups, &PyTuple_Type, &strict))
        return -1;
    if (n_groups < 0 || n_groups > 4096) {
        PyErr_SetString(PyExc_ValueError, "Plan: n_groups must be 0 to 4096");
        return -1;
    }
    if (init_text(self, text, text_width) < 0) return -1;
    if (n_num < 0 || n_cat < 0 || n_key < 0 || PyTuple_GET_SIZE(vocabs) != n_cat || self->root
        || (lower && PyTuple_GET_SIZE(lower) != n_cat)) {
        PyErr_SetString(PyExc_ValueError, "Plan: sizes must be >= 0, one vocabulary (and lower flag) per "
                                          "categorical column, and a plan is initialised once");
        return -1;
    }
    PyMem_Free(self->lower);                      /* a second __init__ after a failed one */
    self->lower = PyMem_Calloc(n_cat ? n_cat : 1, 1);
    if (!self->lower) { PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; lower && i < n_cat; i++) {
        int flag = PyObject_IsTrue(PyTuple_GET_ITEM(lower, i));
        if (flag < 0) return -1;
        self->lower[i] = (unsigned char)flag;
    }
    int nslots = 0, unused = 0;
    Node **tables = PyMem_Calloc(n_cat ? n_cat : 1, sizeof(Node *));
    if (!tables) { PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < n_cat; i++) {
        /* a vocabulary is a one-level spec: {category bytes: ((2, index),)} */
        if (!(tables[i] = node_build(PyTuple_GET_ITEM(vocabs, i), &unused, 0, NULL))) {
            for (Py_ssize_t j = 0; j < i; j++) node_free(tables[j]);
            PyMem_Free(tables);
            return -1;
        }
    }
    /* T_NUM, T_BOOL, T_CAT, T_KEY, T_TIME, T_TEXT, then the number of groups */
    const Py_ssize_t limits[] = {n_num, n_num, n_cat, n_key, n_num, self->n_text, n_groups};
    Node *root = node_build(spec, &nslots, 0, limits);
    if (!root) {
        for (Py_ssize_t j = 0; j < n_cat; j++) node_free(tables[j]);
        PyMem_Free(tables);
        return -1;
    }
    for (Py_ssize_t i = 0; strict && i < PyTuple_GET_SIZE(strict); i++) {
        PyObject *key = PyTuple_GET_ITEM(strict, i);
        const Entry *hit = PyBytes_Check(key) ? node_find(root, PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key)) : NULL;
        if (!hit) {
            PyErr_SetString(PyExc_ValueError, "Plan: a strict key must be a top-level key of the spec");
            node_free(root);
            for (Py_ssize_t j = 0; j < n_cat; j++) node_free(tables[j]);
            PyMem_Free(tables);
            return -1;
        }
        ((Entry *)hit)->strict = ((Entry *)hit)->rare = 1;
    }
    self->vocabs = tables;
    self->root = root;
    self->nslots = nslots;
    self->n_num = n_num; self->n_cat = n_cat; self->n_key = n_key; self->n_groups = n_groups;
    return 0;
}

static void Plan_dealloc(Plan *self) {
    node_free(self->root);
    if (self->vocabs)
        for (Py_ssize_t j = 0; j < self->n_cat; j++) node_free(self->vocabs[j]);
    PyMem_Free(self->vocabs);
    PyMem_Free(self->lower);
    PyMem_Free(self->text_max);
    PyMem_Free(self->text_dns);
    PyMem_Free(self->text_tail);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Plan_methods[] = {
    {"decode", (PyCFunction)Plan_decode, METH_VARARGS,
     "decode(lines, num, cat, keys, status[, text, text_len]) -> lines accepted.\n"
     "Writes rows into float64 num [n, n_num] (NaN = missing), int64 cat [n, n_cat] (-1 = missing),\n"
     "keys (one list of n items per key field: the value msgspec would give; left as is when absent) and\n"
     "uint8 status [n] (0 accepted, 1 leave the line to the Python decoder); with text columns, uint8\n"
     "text [n, n_text, text_width] (each value's bytes, zero-padded) and int64 text_len [n, n_text] (-1 = absent)."},
    {NULL, NULL, 0, NULL}};

static PyTypeObject PlanType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "jenga_edge._fastjson.Plan",
    .tp_basicsize = sizeof(Plan),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Plan(spec, n_num, n_cat, n_key, vocabs, lower=(), text=(), text_width=0): a compiled\n"
              "field-extraction plan for one schema; lower[i]: lower-case ASCII values of categorical column i\n"
              "before the lookup; text[j]: (max_bytes, normalize dns, truncate tail) of text column j.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Plan_init,
    .tp_dealloc = (destructor)Plan_dealloc,
    .tp_methods = Plan_methods,
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_fastjson",
    .m_doc = "Compiled field extraction for jenga_edge.decode.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__fastjson(void) {
    if (PyType_Ready(&PlanType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddObjectRef(m, "Plan", (PyObject *)&PlanType) < 0) { Py_DECREF(m); return NULL; }
    return m;
}
