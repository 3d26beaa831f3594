/* Window feature kernels: the per-row loops of jenga_edge/contract/window_state.py in C.
 *
 * Each function walks a batch's rows in order over state arrays that Python owns
 * (numpy, indexed by a key's slot), with the same arithmetic in the same order as
 * the Python loops, so both give bit-identical values (tests/jenga_edge/test_windows.py).
 * Slots come from Python's KeySpace and are < the arrays' first dimension; every
 * buffer's size is checked here before any row is touched.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define B 8        /* sub-windows of a time window (windows.BUCKETS) */
#define E 32       /* exact distinct values per key (windows.EXACT_DISTINCT) */
#define M 64       /* HyperLogLog registers (windows.SKETCH_REGISTERS) */
#define SEEN_MOD 248 /* a distinct entry's sub-window, kept mod 248 (a multiple of B) + 1; 0: empty */
#define EMPTY INT64_MIN
#define AHEAD 8    /* rows ahead whose state is prefetched: the slots are known for the whole batch */

#if defined(__GNUC__)
#define PREFETCH(p) __builtin_prefetch((p), 1, 1)
#else
#define PREFETCH(p) ((void)0)
#endif

#if defined(__GNUC__)
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE static inline
#endif

typedef struct {
    Py_buffer view;
    int held;
} Buf;

static void release(Buf *bufs, int n) {
    for (int i = 0; i < n; i++)
        if (bufs[i].held) PyBuffer_Release(&bufs[i].view);
}

/* obj as a C-contiguous buffer of at least `need` items of `itemsize` bytes (None allowed if optional). */
static int take(PyObject *obj, Buf *b, Py_ssize_t itemsize, Py_ssize_t need, int writable, int optional,
                const char *what) {
    b->held = 0;
    if (obj == Py_None && optional) return 0;
    int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, &b->view, flags) < 0) return -1;
    b->held = 1;
    if (b->view.itemsize != itemsize || b->view.len < need * itemsize) {
        PyErr_Format(PyExc_ValueError, "%s: expected at least %zd items of %zd bytes", what, need, itemsize);
        return -1;
    }
    return 0;
}

static inline int64_t ring_pos(int64_t b) { return ((b % B) + B) % B; }

/* All slots < cap (Python guarantees it; checked so a bad call cannot write out of bounds). */
static int slots_ok(const int64_t *slots, Py_ssize_t n, Py_ssize_t cap) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (slots[i] < 0 || slots[i] >= cap) {
            PyErr_SetString(PyExc_ValueError, "slot out of range");
            return 0;
        }
    return 1;
}

/* ------------------------------------------------------------------ clock */

/* clock(times, state[5], lag, ahead_max, jump) -> the row where the clock jumped back (n: none).
 * state: clock, ahead run, late, ahead, behind run. Times are changed in place to the
 * times the windows count them at, up to (not including) that row. */
static PyObject *w_clock(PyObject *self, PyObject *args) {
    PyObject *o_t, *o_st;
    double lag, ahead_max;
    long jump;
    if (!PyArg_ParseTuple(args, "OOddl", &o_t, &o_st, &lag, &ahead_max, &jump)) return NULL;
    Buf b[2];
    if (take(o_t, &b[0], 8, 0, 1, 0, "times") < 0 || take(o_st, &b[1], 8, 5, 1, 0, "state") < 0) {
        release(b, 2);
        return NULL;
    }
    double *t = b[0].view.buf, *st = b[1].view.buf;
    Py_ssize_t n = b[0].view.len / 8, i = 0;
    double clock = st[0], run = st[1], late = st[2], ahead = st[3], behind = st[4];
    for (; i < n; i++) {
        double ti = t[i];
        if (clock == -INFINITY) clock = ti;
        if (ti > clock + ahead_max) {
            ahead += 1; run += 1; behind = 0;
            if (run >= (double)jump) { clock = ti; run = 0; }
            else t[i] = clock;
            continue;
        }
        if (ti < clock - ahead_max) {
            late += 1; behind += 1; run = 0;
            if (behind >= (double)jump) { clock = ti; behind = 0; break; }   /* the clock comes back: stop here */
            t[i] = clock - lag;
            continue;
        }
        run = 0; behind = 0;
        if (ti < clock - lag) { late += 1; t[i] = clock - lag; }
        else if (ti > clock) clock = ti;
    }
    st[0] = clock; st[1] = run; st[2] = late; st[3] = ahead; st[4] = behind;
    release(b, 2);
    return PyLong_FromSsize_t(i);
}

/* ---------------------------------------------------------- time windows */

enum { K_COUNT = 0, K_SUM = 1, K_MEAN = 2, K_STD = 3, K_RATE = 4, K_STATS = 5 /* sum, mean, std: each out given */ };

/* floor(x) as an integer, for |x| < 2^62 without a libm call (the same value: a
 * truncation, one down when it rounded up); beyond, floor() itself. */
static inline int64_t floor_i64(double x) {
    if (x > -4.6e18 && x < 4.6e18) {
        int64_t q = (int64_t)x;
        return (double)q > x ? q - 1 : q;
    }
    return (int64_t)floor(x);
}

/* Move slot s's ring to sub-window b; returns the sub-window the row counts in. */
ALWAYS_INLINE int64_t advance(int64_t *newest, double *acc, const int k, int fresh, int64_t b) {
    int64_t nw = *newest;
    if (fresh || nw == EMPTY || (b > nw && (uint64_t)b - (uint64_t)nw >= B)) {   /* no signed overflow */
        memset(acc, 0, sizeof(double) * B * k);
        *newest = b;
        return b;
    }
    if (b > nw) {   /* b - nw < B here: at most B - 1 sub-windows expire */
        for (int64_t j = nw + 1; j <= b; j++) memset(acc + ring_pos(j) * k, 0, sizeof(double) * k);
        *newest = b;
        return b;
    }
    return b > nw - B + 1 ? b : nw - B + 1;
}

/* The rows of one time window; kind and k are constants where it is inlined. */
ALWAYS_INLINE void buckets_rows(const int kind, const int k, double width, Py_ssize_t n, const int64_t *slots,
                                const uint8_t *fresh, const double *t, const double *x, const uint8_t *cond,
                                int64_t *newest, double *acc, double *out, double *const *stats) {
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t s = slots[i];
        if (i + AHEAD < n) {                     /* a key's state is a cache miss: ask for it early */
            const double *ahead = acc + slots[i + AHEAD] * B * k;
            PREFETCH(ahead);
            if (k > 1) PREFETCH(ahead + 8);
            if (k > 2) PREFETCH(ahead + 16);
            PREFETCH(&newest[slots[i + AHEAD]]);
        }
        double *a = acc + s * B * k;
        int64_t at = advance(&newest[s], a, k, fresh[i], floor_i64(t[i] / width));
        double *cell = a + ring_pos(at) * k;
        if (kind == K_COUNT) {
            cell[0] += 1.0;
        } else if (kind == K_RATE) {
            cell[0] += 1.0;
            cell[1] += cond[i] ? 1.0 : 0.0;
        } else {
            double v = x[i];
            if (v == v) { cell[0] += 1.0; cell[1] += v; cell[2] += v * v; }
        }
        double tot[3] = {0.0, 0.0, 0.0};
        for (int p = 0; p < B; p++)              /* in the Python loop's order: the same float sums */
            for (int q = 0; q < k; q++) tot[q] += a[p * k + q];
        if (kind == K_STATS) {   /* stats[0..2]: sum, mean, std, each when not NULL */
            if (stats[0]) stats[0][i] = tot[1];
            if (stats[1]) stats[1][i] = tot[0] != 0.0 ? tot[1] / tot[0] : NAN;
            if (stats[2]) {
                if (tot[0] == 0.0) stats[2][i] = NAN;
                else {
                    double mean = tot[1] / tot[0], var = tot[2] / tot[0] - mean * mean;
                    stats[2][i] = sqrt(var > 0.0 ? var : 0.0);
                }
            }
            continue;
        }
        double v;
        switch (kind) {
            case K_COUNT: v = tot[0]; break;
            case K_SUM: v = tot[1]; break;
            case K_MEAN: v = tot[0] != 0.0 ? tot[1] / tot[0] : NAN; break;
            case K_STD: {
                if (tot[0] == 0.0) { v = NAN; break; }
                double mean = tot[1] / tot[0], var = tot[2] / tot[0] - mean * mean;
                v = sqrt(var > 0.0 ? var : 0.0);
                break;
            }
            default: v = tot[1] / tot[0]; break;
        }
        out[i] = v;
    }
}

static PyObject *w_buckets(PyObject *self, PyObject *args) {
    int kind;
    double width;
    PyObject *o_slots, *o_fresh, *o_t, *o_x, *o_cond, *o_newest, *o_acc, *o_out;
    if (!PyArg_ParseTuple(args, "idOOOOOOOO", &kind, &width, &o_slots, &o_fresh, &o_t, &o_x, &o_cond, &o_newest,
                          &o_acc, &o_out))
        return NULL;
    if (kind < K_COUNT || kind > K_RATE) { PyErr_SetString(PyExc_ValueError, "buckets: unknown kind"); return NULL; }
    int k = kind == K_COUNT ? 1 : kind == K_RATE ? 2 : 3;
    Buf b[8] = {0};
    if (take(o_slots, &b[0], 8, 0, 0, 0, "slots") < 0) { release(b, 8); return NULL; }
    Py_ssize_t n = b[0].view.len / 8;
    if (take(o_fresh, &b[1], 1, n, 0, 0, "fresh") < 0 || take(o_t, &b[2], 8, n, 0, 0, "t") < 0
        || take(o_x, &b[3], 8, n, 0, 1, "x") < 0 || take(o_cond, &b[4], 1, n, 0, 1, "cond") < 0
        || take(o_newest, &b[5], 8, 0, 1, 0, "newest") < 0) { release(b, 8); return NULL; }
    Py_ssize_t cap = b[5].view.len / 8;
    if (take(o_acc, &b[6], 8, cap * B * k, 1, 0, "acc") < 0 || take(o_out, &b[7], 8, n, 1, 0, "out") < 0
        || ((kind == K_SUM || kind == K_MEAN || kind == K_STD) && !b[3].held) || (kind == K_RATE && !b[4].held)
        || !slots_ok(b[0].view.buf, n, cap)) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "buckets: x (sum, mean, std) or cond (rate) missing");
        release(b, 8);
        return NULL;
    }
    const int64_t *slots = b[0].view.buf;
    const uint8_t *fresh = b[1].view.buf, *cond = b[4].held ? b[4].view.buf : NULL;
    const double *t = b[2].view.buf, *x = b[3].held ? b[3].view.buf : NULL;
    int64_t *newest = b[5].view.buf;
    double *acc = b[6].view.buf, *out = b[7].view.buf;
    switch (kind) {   /* one loop per kind, its k a constant: the sums unrolled, the branches gone */
        case K_COUNT: buckets_rows(K_COUNT, 1, width, n, slots, fresh, t, x, cond, newest, acc, out, NULL); break;
        case K_SUM: buckets_rows(K_SUM, 3, width, n, slots, fresh, t, x, cond, newest, acc, out, NULL); break;
        case K_MEAN: buckets_rows(K_MEAN, 3, width, n, slots, fresh, t, x, cond, newest, acc, out, NULL); break;
        case K_STD: buckets_rows(K_STD, 3, width, n, slots, fresh, t, x, cond, newest, acc, out, NULL); break;
        default: buckets_rows(K_RATE, 2, width, n, slots, fresh, t, x, cond, newest, acc, out, NULL); break;
    }
    release(b, 8);
    Py_RETURN_NONE;
}

/* stats(width, slots, fresh, t, x, newest, acc, out_sum, out_mean, out_std): the sum, mean
 * and std of one key, field and window share their accumulators (k = 3): one pass gives
 * each out that is not None, with the same arithmetic as buckets() gives it alone. */
static PyObject *w_stats(PyObject *self, PyObject *args) {
    double width;
    PyObject *o_slots, *o_fresh, *o_t, *o_x, *o_newest, *o_acc, *o_out[3];
    if (!PyArg_ParseTuple(args, "dOOOOOOOOO", &width, &o_slots, &o_fresh, &o_t, &o_x, &o_newest, &o_acc, &o_out[0],
                          &o_out[1], &o_out[2]))
        return NULL;
    Buf b[9] = {0};
    if (take(o_slots, &b[0], 8, 0, 0, 0, "slots") < 0) { release(b, 9); return NULL; }
    Py_ssize_t n = b[0].view.len / 8;
    if (take(o_fresh, &b[1], 1, n, 0, 0, "fresh") < 0 || take(o_t, &b[2], 8, n, 0, 0, "t") < 0
        || take(o_x, &b[3], 8, n, 0, 0, "x") < 0 || take(o_newest, &b[4], 8, 0, 1, 0, "newest") < 0) {
        release(b, 9);
        return NULL;
    }
    Py_ssize_t cap = b[4].view.len / 8;
    if (take(o_acc, &b[5], 8, cap * B * 3, 1, 0, "acc") < 0 || take(o_out[0], &b[6], 8, n, 1, 1, "out_sum") < 0
        || take(o_out[1], &b[7], 8, n, 1, 1, "out_mean") < 0 || take(o_out[2], &b[8], 8, n, 1, 1, "out_std") < 0
        || !slots_ok(b[0].view.buf, n, cap)) {
        release(b, 9);
        return NULL;
    }
    double *stats[3] = {b[6].held ? b[6].view.buf : NULL, b[7].held ? b[7].view.buf : NULL,
                        b[8].held ? b[8].view.buf : NULL};
    buckets_rows(K_STATS, 3, width, n, b[0].view.buf, b[1].view.buf, b[2].view.buf, b[3].view.buf, NULL,
                 b[4].view.buf, b[5].view.buf, NULL, stats);
    release(b, 9);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------- count among last */

static PyObject *w_count_last(PyObject *self, PyObject *args) {
    PyObject *o_slots, *o_fresh, *o_inc, *o_count, *o_owner, *o_ring, *o_pos, *o_out;
    if (!PyArg_ParseTuple(args, "OOOOOOOO", &o_slots, &o_fresh, &o_inc, &o_count, &o_owner, &o_ring, &o_pos, &o_out))
        return NULL;
    Buf b[8] = {0};
    if (take(o_slots, &b[0], 8, 0, 0, 0, "slots") < 0) { release(b, 8); return NULL; }
    Py_ssize_t n = b[0].view.len / 8;
    if (take(o_fresh, &b[1], 1, n, 0, 0, "fresh") < 0 || take(o_inc, &b[2], 8, n, 0, 0, "inc") < 0
        || take(o_count, &b[3], 8, 0, 1, 0, "count") < 0 || take(o_ring, &b[5], 8, 2, 1, 0, "ring") < 0
        || take(o_pos, &b[6], 8, 1, 1, 0, "pos") < 0 || take(o_out, &b[7], 8, n, 1, 0, "out") < 0) {
        release(b, 8);
        return NULL;
    }
    Py_ssize_t cap = b[3].view.len / 8, N = b[5].view.len / 16;
    if (take(o_owner, &b[4], 8, cap, 1, 0, "owner") < 0 || !slots_ok(b[0].view.buf, n, cap)) {
        release(b, 8);
        return NULL;
    }
    const int64_t *slots = b[0].view.buf, *inc = b[2].view.buf;
    const uint8_t *fresh = b[1].view.buf;
    int64_t *count = b[3].view.buf, *owner = b[4].view.buf, *ring = b[5].view.buf, *pos = b[6].view.buf;
    double *out = b[7].view.buf;
    int64_t p = pos[0];
    if (p < 0 || p >= N) p = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t s = slots[i];
        if (i + AHEAD < n) { PREFETCH(&count[slots[i + AHEAD]]); PREFETCH(&owner[slots[i + AHEAD]]); }
        if (fresh[i]) { count[s] = 0; owner[s] = inc[i]; }
        int64_t old = ring[2 * p], old_inc = ring[2 * p + 1];
        if (old >= 0 && old < cap && owner[old] == old_inc) count[old] -= 1;
        ring[2 * p] = s;
        ring[2 * p + 1] = inc[i];
        p = (p + 1) % N;
        count[s] += 1;
        out[i] = (double)count[s];
    }
    pos[0] = p;
    release(b, 8);
    Py_RETURN_NONE;
}

/* --------------------------------------------------------- since previous */

static PyObject *w_since_previous(PyObject *self, PyObject *args) {
    PyObject *o_slots, *o_fresh, *o_t, *o_last, *o_out;
    if (!PyArg_ParseTuple(args, "OOOOO", &o_slots, &o_fresh, &o_t, &o_last, &o_out)) return NULL;
    Buf b[5] = {0};
    if (take(o_slots, &b[0], 8, 0, 0, 0, "slots") < 0) { release(b, 5); return NULL; }
    Py_ssize_t n = b[0].view.len / 8;
    if (take(o_fresh, &b[1], 1, n, 0, 0, "fresh") < 0 || take(o_t, &b[2], 8, n, 0, 0, "t") < 0
        || take(o_last, &b[3], 8, 0, 1, 0, "last") < 0 || take(o_out, &b[4], 8, n, 1, 0, "out") < 0
        || !slots_ok(b[0].view.buf, n, b[3].view.len / 8)) {
        release(b, 5);
        return NULL;
    }
    const int64_t *slots = b[0].view.buf;
    const uint8_t *fresh = b[1].view.buf;
    const double *t = b[2].view.buf;
    double *last = b[3].view.buf, *out = b[4].view.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t s = slots[i];
        if (i + AHEAD < n) PREFETCH(&last[slots[i + AHEAD]]);
        double ti = t[i], prev = fresh[i] ? NAN : last[s];
        if (prev == prev) {
            double d = ti - prev;
            out[i] = d > 0.0 ? d : 0.0;
            last[s] = ti > prev ? ti : prev;          /* max(prev, ti): prev when equal, as Python */
        } else {
            out[i] = NAN;
            last[s] = ti;
        }
    }
    release(b, 5);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ damped */

static PyObject *w_damped(PyObject *self, PyObject *args) {
    double decay;
    int stat, has_field;
    PyObject *o_slots, *o_fresh, *o_t, *o_x, *o_st, *o_out;
    if (!PyArg_ParseTuple(args, "diiOOOOOO", &decay, &stat, &has_field, &o_slots, &o_fresh, &o_t, &o_x, &o_st, &o_out))
        return NULL;
    Buf b[6] = {0};
    if (take(o_slots, &b[0], 8, 0, 0, 0, "slots") < 0) { release(b, 6); return NULL; }
    Py_ssize_t n = b[0].view.len / 8;
    if (take(o_fresh, &b[1], 1, n, 0, 0, "fresh") < 0 || take(o_t, &b[2], 8, n, 0, 0, "t") < 0
        || take(o_x, &b[3], 8, n, 0, !has_field, "x") < 0 || take(o_st, &b[4], 8, 0, 1, 0, "st") < 0
        || take(o_out, &b[5], 8, n, 1, 0, "out") < 0 || !slots_ok(b[0].view.buf, n, b[4].view.len / 32)) {
        release(b, 6);
        return NULL;
    }
    const int64_t *slots = b[0].view.buf;
    const uint8_t *fresh = b[1].view.buf;
    const double *t = b[2].view.buf, *x = b[3].held ? b[3].view.buf : NULL;
    double *state = b[4].view.buf, *out = b[5].view.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i + AHEAD < n) PREFETCH(state + slots[i + AHEAD] * 4);
        double *st = state + slots[i] * 4, ti = t[i];
        if (fresh[i]) { st[0] = st[1] = st[2] = 0.0; st[3] = NAN; }
        double w = st[0], ls = st[1], ss = st[2], tl = st[3];
        if (tl == tl) {
            double dt = ti - tl, f = pow(2.0, -decay * (dt > 0.0 ? dt : 0.0));
            w *= f; ls *= f; ss *= f;
            tl = ti > tl ? ti : tl;                   /* max(tl, ti): tl when equal, as Python */
        } else {
            tl = ti;
        }
        double v = has_field && x ? x[i] : 0.0;
        if (!has_field || v == v) { w += 1.0; ls += v; ss += v * v; }
        st[0] = w; st[1] = ls; st[2] = ss; st[3] = tl;
        double r;
        if (stat == 0) r = w;
        else if (w == 0.0) r = NAN;
        else {
            double mean = ls / w;
            if (stat == 1) r = mean;
            else { double var = ss / w - mean * mean; r = sqrt(var > 0.0 ? var : 0.0); }
        }
        out[i] = r;
    }
    release(b, 6);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------- distinct */

/* A sub-window index mod SEEN_MOD, and the age of an entry kept as (that + 1) when the
 * newest sub-window's is nm (entries are at most 2 * B - 2 old: no wrap). */
static inline int64_t seen_mod(int64_t b) { return ((b % SEEN_MOD) + SEEN_MOD) % SEEN_MOD; }
static inline int64_t seen_age(uint8_t v, int64_t nm) { return ((nm - (v - 1)) % SEEN_MOD + SEEN_MOD) % SEEN_MOD; }

static void hll_add(uint8_t *reg, uint64_t h) {
    int j = (int)(h >> 58);
    uint64_t rest = h & ((1ull << 58) - 1);
    int bits = rest ? 64 - __builtin_clzll(rest) : 0;
    uint8_t rank = (uint8_t)(58 - bits + 1);
    if (rank > reg[j]) reg[j] = rank;
}

static double hll_estimate(const uint8_t *pool_k) {
    uint8_t reg[M];
    for (int j = 0; j < M; j++) {
        uint8_t r = 0;
        for (int p = 0; p < B; p++) if (pool_k[p * M + j] > r) r = pool_k[p * M + j];
        reg[j] = r;
    }
    double total = 0.0;
    int zeros = 0;
    for (int j = 0; j < M; j++) { total += ldexp(1.0, -(int)reg[j]); zeros += reg[j] == 0; }
    double est = 0.709 * M * M / total;
    if (est <= 2.5 * M && zeros) est = M * log((double)M / zeros);
    return est;
}

/* Returns the row to resume from after Python grows the sketch pool, or n when done. */
static PyObject *w_distinct(PyObject *self, PyObject *args) {
    double width;
    Py_ssize_t start;
    PyObject *o_slots, *o_fresh, *o_t, *o_h, *o_has, *o_newest, *o_hashes, *o_seen, *o_sketch, *o_pool, *o_free,
        *o_free_n, *o_out;
    if (!PyArg_ParseTuple(args, "dnOOOOOOOOOOOOO", &width, &start, &o_slots, &o_fresh, &o_t, &o_h, &o_has, &o_newest,
                          &o_hashes, &o_seen, &o_sketch, &o_pool, &o_free, &o_free_n, &o_out))
        return NULL;
    if (start < 0) { PyErr_SetString(PyExc_ValueError, "distinct: start < 0"); return NULL; }
    Buf b[13] = {0};
    if (take(o_slots, &b[0], 8, 0, 0, 0, "slots") < 0) { release(b, 13); return NULL; }
    Py_ssize_t n = b[0].view.len / 8;
    if (take(o_fresh, &b[1], 1, n, 0, 0, "fresh") < 0 || take(o_t, &b[2], 8, n, 0, 0, "t") < 0
        || take(o_h, &b[3], 8, n, 0, 0, "h") < 0 || take(o_has, &b[4], 1, n, 0, 0, "has") < 0
        || take(o_newest, &b[5], 8, 0, 1, 0, "newest") < 0 || take(o_pool, &b[9], 1, 0, 1, 0, "pool") < 0
        || take(o_free_n, &b[11], 8, 1, 1, 0, "free_n") < 0 || take(o_out, &b[12], 8, n, 1, 0, "out") < 0) {
        release(b, 13);
        return NULL;
    }
    Py_ssize_t cap = b[5].view.len / 8, P = b[9].view.len / (B * M);
    if (take(o_hashes, &b[6], 8, cap * E, 1, 0, "hashes") < 0 || take(o_seen, &b[7], 1, cap * E, 1, 0, "seen") < 0
        || take(o_sketch, &b[8], 8, cap, 1, 0, "sketch") < 0 || take(o_free, &b[10], 8, P, 1, 0, "free") < 0
        || !slots_ok(b[0].view.buf, n, cap)) {
        release(b, 13);
        return NULL;
    }
    const int64_t *slots = b[0].view.buf;
    const uint8_t *fresh = b[1].view.buf, *has = b[4].view.buf;
    const double *t = b[2].view.buf;
    const uint64_t *hin = b[3].view.buf;
    int64_t *newest = b[5].view.buf, *sketch = b[8].view.buf, *freel = b[10].view.buf;
    uint8_t *seen_all = b[7].view.buf;
    int64_t *free_n = b[11].view.buf;
    uint64_t *hash_all = b[6].view.buf;
    uint8_t *pool = b[9].view.buf;
    double *out = b[12].view.buf;
    Py_ssize_t i = start;
    for (; i < n; i++) {
        if (i + AHEAD < n) {
            int64_t sa = slots[i + AHEAD];
            PREFETCH(&newest[sa]); PREFETCH(&sketch[sa]);
            PREFETCH(seen_all + sa * E); PREFETCH(hash_all + sa * E);   /* the first 8 values: most keys have few */
        }
        int64_t s = slots[i], bk = floor_i64(t[i] / width), nw = newest[s];
        uint8_t *seen = seen_all + s * E;
        uint64_t *hashes = hash_all + s * E;
        int64_t k = sketch[s], at;
        if (k >= P || k < -1 || free_n[0] < 0 || free_n[0] > P) {
            PyErr_SetString(PyExc_ValueError, "distinct: sketch pool state out of range");
            release(b, 13);
            return NULL;
        }
        /* advance (idempotent: a row resumed after the pool grew redoes it unchanged) */
        if (fresh[i] || nw == EMPTY || (bk > nw && (uint64_t)bk - (uint64_t)nw >= B)) {
            memset(seen, 0, E);
            if (k >= 0) {
                if (free_n[0] >= P) { PyErr_SetString(PyExc_ValueError, "distinct: free stack full"); release(b, 13); return NULL; }
                freel[free_n[0]++] = k; sketch[s] = k = -1;
            }
            newest[s] = at = bk;
        } else if (bk > nw) {
            if (k >= 0) {
                for (int64_t j = nw + 1; j <= bk && j <= nw + B; j++) memset(pool + (k * B + ring_pos(j)) * M, 0, M);
            } else {   /* entries the window leaves are emptied: every one kept is within it */
                int64_t step = bk - nw, nm = seen_mod(nw);
                for (int j = 0; j < E; j++)
                    if (seen[j] && seen_age(seen[j], nm) + step >= B) seen[j] = 0;
            }
            newest[s] = at = bk;
        } else {
            at = bk > nw - B + 1 ? bk : nw - B + 1;
        }
        if (k >= 0) {
            if (has[i]) hll_add(pool + (k * B + ring_pos(at)) * M, hin[i]);
            out[i] = hll_estimate(pool + k * B * M);
            continue;
        }
        /* exact: one pass finds the value, the first free entry and the live count (every
         * entry kept is within the window: the advance above empties the others) */
        int hit = -1, room = -1, live = 0;
        uint64_t h = hin[i];
        for (int j = 0; j < E; j++) {
            if (seen[j]) {
                live++;
                if (has[i] && hit < 0 && hashes[j] == h) hit = j;
            } else if (room < 0) {
                room = j;
            }
        }
        if (has[i]) {
            int64_t nm = seen_mod(newest[s]), age = newest[s] - at;   /* at is within the window: 0..B-1 */
            if (hit >= 0) {
                if (age < seen_age(seen[hit], nm)) seen[hit] = (uint8_t)(seen_mod(at) + 1);
            } else if (room >= 0) {
                hashes[room] = h; seen[room] = (uint8_t)(seen_mod(at) + 1); live++;
            } else {
                if (free_n[0] == 0) break;   /* Python grows the pool, then calls again from row i */
                k = freel[--free_n[0]];
                if (k < 0 || k >= P) { PyErr_SetString(PyExc_ValueError, "distinct: free sketch out of range"); release(b, 13); return NULL; }
                sketch[s] = k;
                memset(pool + k * B * M, 0, B * M);
                for (int j = 0; j < E; j++) hll_add(pool + (k * B + (seen[j] - 1) % B) * M, hashes[j]);
                hll_add(pool + (k * B + ring_pos(at)) * M, h);
                out[i] = hll_estimate(pool + k * B * M);
                continue;
            }
        }
        out[i] = (double)live;
    }
    release(b, 13);
    return PyLong_FromSsize_t(i);
}

/* ------------------------------------------------------------------ keys */

/* --------------------------------------------------------- value hashes */

/* window_state.value_hash in C for the usual values: mix64(FNV-1a 64 of the UTF-8 of
 * the value's category key). An int's key is its decimal digits; an ASCII string's,
 * itself stripped of what str.strip() strips. Other values (non-ASCII strings,
 * floats, booleans) are left to Python: has[i] = 2. None: has[i] = 0. */

static inline uint64_t fnv1a(const unsigned char *d, Py_ssize_t n) {
    uint64_t f = 0xcbf29ce484222325ull;
    for (Py_ssize_t i = 0; i < n; i++) { f ^= d[i]; f *= 0x100000001b3ull; }
    return f;
}

static inline int ascii_space(unsigned char c) { return (c >= 9 && c <= 13) || (c >= 28 && c <= 32); }

static uint64_t mix64(uint64_t x);

static PyObject *w_value_hashes(PyObject *self, PyObject *args) {
    PyObject *values, *o_out, *o_has;
    if (!PyArg_ParseTuple(args, "O!OO", &PyList_Type, &values, &o_out, &o_has)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(values);
    Buf b[2] = {0};
    if (take(o_out, &b[0], 8, n, 1, 0, "out") < 0 || take(o_has, &b[1], 1, n, 1, 0, "has") < 0) {
        release(b, 2);
        return NULL;
    }
    uint64_t *out = b[0].view.buf;
    uint8_t *has = b[1].view.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = PyList_GET_ITEM(values, i);
        out[i] = 0;
        if (v == Py_None) { has[i] = 0; continue; }
        has[i] = 2;
        if (PyLong_CheckExact(v)) {
            int overflow = 0;
            long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
            if (overflow || (x == -1 && PyErr_Occurred())) { PyErr_Clear(); continue; }
            unsigned char buf[24], *p = buf + sizeof buf;     /* decimal digits, as str(int) writes them */
            uint64_t u = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
            do { *--p = (unsigned char)('0' + u % 10); u /= 10; } while (u);
            if (x < 0) *--p = '-';
            out[i] = mix64(fnv1a(p, buf + sizeof buf - p));
            has[i] = 1;
        } else if (PyUnicode_CheckExact(v) && PyUnicode_IS_ASCII(v)) {
            const unsigned char *d = PyUnicode_DATA(v);
            Py_ssize_t lo = 0, hi = PyUnicode_GET_LENGTH(v);
            while (lo < hi && ascii_space(d[lo])) lo++;
            while (hi > lo && ascii_space(d[hi - 1])) hi--;
            out[i] = mix64(fnv1a(d + lo, hi - lo));
            has[i] = 1;
        }
    }
    release(b, 2);
    Py_RETURN_NONE;
}

/* memo_mask(values, memo, out, start) -> n when done, else the row to resume from after
 * Python adds that row's value to memo, or -(row + 1) at a value that is neither None, a
 * str nor an int (Python then computes the column itself). out[i] = memo[values[i]] is True:
 * a condition's verdict per distinct value, looked up at C speed (True is never a key or
 * looked up, so it cannot take 1's verdict). */
static PyObject *w_memo_mask(PyObject *self, PyObject *args) {
    PyObject *values, *memo, *o_out;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "O!O!On", &PyList_Type, &values, &PyDict_Type, &memo, &o_out, &start)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(values), i = start < 0 ? 0 : start;
    Buf b[1] = {0};
    if (take(o_out, &b[0], 1, n, 1, 0, "out") < 0) { release(b, 1); return NULL; }
    uint8_t *out = b[0].view.buf;
    for (; i < n; i++) {
        PyObject *v = PyList_GET_ITEM(values, i);
        if (v != Py_None && !PyUnicode_CheckExact(v) && !PyLong_CheckExact(v)) { release(b, 1); return PyLong_FromSsize_t(-(i + 1)); }
        PyObject *r = PyDict_GetItemWithError(memo, v);   /* borrowed */
        if (!r) {
            release(b, 1);
            if (PyErr_Occurred()) return NULL;
            return PyLong_FromSsize_t(i);
        }
        out[i] = r == Py_True;
    }
    release(b, 1);
    return PyLong_FromSsize_t(n);
}

/* has_none(list) -> whether an item is None (by identity: `None in list` compares each
 * item with None through ==, about 60 instructions an item for a str). */
static PyObject *w_has_none(PyObject *self, PyObject *values) {
    if (!PyList_Check(values)) { PyErr_SetString(PyExc_TypeError, "has_none: a list"); return NULL; }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(values); i++)
        if (PyList_GET_ITEM(values, i) == Py_None) Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

/* ------------------------------------------------------------- key table */

/* An index of a key space's live keys by a 128-bit fingerprint: for a string,
 * Python's keyed hash (SipHash, cached in the object) and FNV-1a over its data;
 * for an integer, two bijective mixes of its value; a tuple key combines its
 * columns'. Equal keys have equal fingerprints, and different keys practically
 * never do (an integer's are unique), so a row finds its slot in one probe,
 * without building a tuple or comparing key objects. Python's dict of the same
 * keys stays the reference (pure mode, snapshots). */

/* slot -1: empty, -2: removed. touch and owner live here while C assigns (one cache line a row);
 * export() copies them to the key space's slot-indexed arrays when Python needs those. */
typedef struct { uint64_t a, b; int64_t slot, touch, owner; } KEntry;

typedef struct {
    PyObject_HEAD
    KEntry *tab;
    uint64_t mask;
    Py_ssize_t used;     /* live + removed entries */
    Py_ssize_t live;
} KeyTable;

static uint64_t mix64(uint64_t x) {
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27; x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* One value's fingerprint; 0 when it is neither a str nor an int (Python converts the column). */
static int value_fp(PyObject *v, uint64_t *a, uint64_t *b) {
    if (PyUnicode_CheckExact(v)) {
        Py_hash_t h = PyObject_Hash(v);
        if (h == -1) { PyErr_Clear(); return 0; }
        const unsigned char *d = PyUnicode_DATA(v);
        Py_ssize_t n = PyUnicode_GET_LENGTH(v) * PyUnicode_KIND(v), i = 0;
        /* 8 bytes a step (an address: 2 steps; a byte at a time took 82 instructions); the
         * length and kind in the seed tell "a" from "a\0" apart */
        uint64_t f = 0xcbf29ce484222325ull ^ ((uint64_t)n << 8) ^ (uint64_t)PyUnicode_KIND(v);
        for (; i + 8 <= n; i += 8) {
            uint64_t w;
            memcpy(&w, d + i, 8);
            f = mix64(f ^ w);
        }
        if (i < n) {
            uint64_t w = 0;
            memcpy(&w, d + i, (size_t)(n - i));
            f = mix64(f ^ w ^ 0x9e3779b97f4a7c15ull);
        }
        *a = mix64((uint64_t)h ^ 0x5354520000000000ull);
        *b = f;
        return 1;
    }
    if (PyLong_CheckExact(v)) {
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow || (x == -1 && PyErr_Occurred())) {   /* beyond int64: Python makes it a string key */
            PyErr_Clear();
            return 0;
        }
        *a = mix64((uint64_t)x ^ 0x494e540000000000ull);
        *b = mix64((uint64_t)x + 0x632be59bd9b4e019ull);
        return 1;
    }
    return 0;
}

static inline void combine(uint64_t *a, uint64_t *b, uint64_t va, uint64_t vb) {
    *a = mix64(*a * 0x9e3779b97f4a7c15ull + va);
    *b = mix64(*b * 0xc2b2ae3d27d4eb4full + vb);
}

/* A row's fingerprint over `ncols` column lists; 0: a value Python must convert first. */
static int row_fp(PyObject **cols, int ncols, Py_ssize_t i, uint64_t *a, uint64_t *b) {
    if (ncols == 1) return value_fp(PyList_GET_ITEM(cols[0], i), a, b);
    *a = 0x243f6a8885a308d3ull; *b = 0x13198a2e03707344ull;
    for (int c = 0; c < ncols; c++) {
        uint64_t va, vb;
        if (!value_fp(PyList_GET_ITEM(cols[c], i), &va, &vb)) return 0;
        combine(a, b, va, vb);
    }
    return 1;
}

/* A stored key's fingerprint (a value, or a tuple of values as rows make them). */
static int key_fp(PyObject *key, uint64_t *a, uint64_t *b) {
    if (!PyTuple_CheckExact(key)) return value_fp(key, a, b);
    *a = 0x243f6a8885a308d3ull; *b = 0x13198a2e03707344ull;
    for (Py_ssize_t c = 0; c < PyTuple_GET_SIZE(key); c++) {
        uint64_t va, vb;
        if (!value_fp(PyTuple_GET_ITEM(key, c), &va, &vb)) return 0;
        combine(a, b, va, vb);
    }
    return 1;
}

static KEntry *kt_find(KeyTable *t, uint64_t a, uint64_t b, int for_insert) {
    uint64_t i = (a ^ (b >> 7)) & t->mask;
    KEntry *first_free = NULL;
    for (;;) {
        KEntry *e = &t->tab[i];
        if (e->slot == -1) return for_insert && first_free ? first_free : e;
        if (e->slot == -2) { if (!first_free) first_free = e; }
        else if (e->a == a && e->b == b) return e;
        i = (i + 1) & t->mask;
    }
}

/* The probe array. Each row's probe lands on a random entry of a table of many MB, so
 * beside its cache miss it would take a TLB miss (a costly walk in a VM) on 4 KiB pages:
 * a table of 2 MiB or more is aligned to and advised onto huge pages (transparent huge
 * pages in madvise mode; where the kernel has none, it stays on small pages). */
#define HUGE_PAGE ((size_t)2 << 20)
static KEntry *kt_alloc(uint64_t size) {
    size_t bytes = (size_t)size * sizeof(KEntry);
    if (bytes < HUGE_PAGE) return malloc(bytes);
    void *p = NULL;
    bytes = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    if (posix_memalign(&p, HUGE_PAGE, bytes) != 0) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    (void)madvise(p, bytes, MADV_HUGEPAGE);   /* advice only: refused, small pages serve */
#endif
    return p;
}

static int kt_resize(KeyTable *t, uint64_t size) {
    KEntry *old = t->tab;
    uint64_t old_size = old ? t->mask + 1 : 0;
    KEntry *tab = kt_alloc(size);
    if (!tab) { PyErr_NoMemory(); return -1; }
    for (uint64_t i = 0; i < size; i++) tab[i].slot = -1;
    t->tab = tab; t->mask = size - 1; t->used = t->live;
    for (uint64_t i = 0; i < old_size; i++)
        if (old[i].slot >= 0) *kt_find(t, old[i].a, old[i].b, 1) = old[i];
    free(old);
    return 0;
}

static int kt_put(KeyTable *t, uint64_t a, uint64_t b, int64_t slot, int64_t touch, int64_t owner) {
    if ((uint64_t)(t->used + 1) * 2 > t->mask + 1) {
        uint64_t size = t->mask + 1;
        while ((uint64_t)(t->live + 1) * 4 > size) size *= 2;   /* after the resize: at most a quarter full */
        if (kt_resize(t, size) < 0) return -1;
    }
    KEntry *e = kt_find(t, a, b, 1);
    if (e->slot == -1) t->used++;
    e->a = a; e->b = b; e->slot = slot; e->touch = touch; e->owner = owner;
    t->live++;
    return 0;
}

static PyObject *KeyTable_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    KeyTable *t = (KeyTable *)type->tp_alloc(type, 0);
    if (!t) return NULL;
    if (kt_resize(t, 1024) < 0) { Py_DECREF(t); return NULL; }
    return (PyObject *)t;
}

static void KeyTable_dealloc(KeyTable *t) {
    free(t->tab);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

/* remove(keys): forget these stored keys (evicted). */
static PyObject *KeyTable_remove(KeyTable *t, PyObject *keys) {
    if (!PyList_Check(keys)) { PyErr_SetString(PyExc_TypeError, "remove: a list of keys"); return NULL; }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keys); i++) {
        uint64_t a, b;
        if (!key_fp(PyList_GET_ITEM(keys, i), &a, &b)) { PyErr_SetString(PyExc_TypeError, "remove: not a key"); return NULL; }
        KEntry *e = kt_find(t, a, b, 0);
        if (e->slot >= 0) { e->slot = -2; t->live--; }
    }
    Py_RETURN_NONE;
}

/* rebuild(keylist, touch, owner): the index of keylist's keys (slot = position; None = free). */
static PyObject *KeyTable_rebuild(KeyTable *t, PyObject *args) {
    PyObject *keylist, *o_touch, *o_owner;
    if (!PyArg_ParseTuple(args, "O!OO", &PyList_Type, &keylist, &o_touch, &o_owner)) return NULL;
    Buf bb[2] = {0};
    Py_ssize_t cap = PyList_GET_SIZE(keylist);
    if (take(o_touch, &bb[0], 8, cap, 0, 0, "touch") < 0 || take(o_owner, &bb[1], 8, cap, 0, 0, "owner") < 0) {
        release(bb, 2);
        return NULL;
    }
    const int64_t *touch = bb[0].view.buf, *owner = bb[1].view.buf;
    /* sized for the live keys, at most half full, not for the arrays' capacity: a sparser
     * table is only more cache and TLB misses per probe */
    uint64_t live = 0, size = 1024;
    for (Py_ssize_t s = 0; s < cap; s++) live += PyList_GET_ITEM(keylist, s) != Py_None;
    while ((live + 1) * 2 > size) size *= 2;
    KEntry *tab = kt_alloc(size);
    if (!tab) { PyErr_NoMemory(); release(bb, 2); return NULL; }   /* the old index stays whole */
    for (uint64_t i = 0; i < size; i++) tab[i].slot = -1;
    free(t->tab);
    t->tab = tab; t->mask = size - 1; t->used = t->live = 0;
    for (Py_ssize_t s = 0; s < cap; s++) {
        PyObject *k = PyList_GET_ITEM(keylist, s);
        uint64_t a, b;
        if (k == Py_None) continue;
        if (!key_fp(k, &a, &b)) { PyErr_SetString(PyExc_TypeError, "rebuild: not a key"); release(bb, 2); return NULL; }
        if (kt_put(t, a, b, s, touch[s], owner[s]) < 0) { release(bb, 2); return NULL; }
    }
    release(bb, 2);
    Py_RETURN_NONE;
}

/* assign(cols, index, touch, owner, seq, start, slots, fresh, inc, keylist, free, free_n, incarnations):
 * each row's slot from its key's columns; a new key takes the top of the free stack and is
 * entered in `keylist` (and `index`, unless None). Returns the row where it stopped: n when
 * done, a row whose new key found no free slot (Python grows or evicts, then calls again
 * from there), or -(row + 1) for a row holding a value that is neither a str nor an int. */
static PyObject *KeyTable_assign(KeyTable *t, PyObject *args) {
    PyObject *cols, *index, *o_touch, *o_owner, *o_slots, *o_fresh, *o_inc, *keylist, *o_free, *o_free_n, *o_incarn;
    long long seq;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "O!OOOLnOOOO!OOO", &PyList_Type, &cols, &index, &o_touch, &o_owner,
                          &seq, &start, &o_slots, &o_fresh, &o_inc, &PyList_Type, &keylist, &o_free, &o_free_n,
                          &o_incarn))
        return NULL;
    int ncols = (int)PyList_GET_SIZE(cols);
    if (ncols < 1 || ncols > 4) { PyErr_SetString(PyExc_ValueError, "assign: 1 to 4 key columns"); return NULL; }
    if (start < 0) { PyErr_SetString(PyExc_ValueError, "assign: start < 0"); return NULL; }
    PyObject *col[4];
    Py_ssize_t n = -1;
    for (int c = 0; c < ncols; c++) {
        col[c] = PyList_GET_ITEM(cols, c);
        if (!PyList_Check(col[c]) || (n >= 0 && PyList_GET_SIZE(col[c]) != n)) {
            PyErr_SetString(PyExc_ValueError, "assign: key columns must be lists of one length");
            return NULL;
        }
        n = PyList_GET_SIZE(col[c]);
    }
    Buf b[8] = {0};
    if (take(o_touch, &b[0], 8, 0, 1, 0, "touch") < 0 || take(o_slots, &b[2], 8, n, 1, 0, "slots") < 0
        || take(o_fresh, &b[3], 1, n, 1, 0, "fresh") < 0 || take(o_inc, &b[4], 8, n, 1, 0, "inc") < 0
        || take(o_free_n, &b[6], 8, 1, 1, 0, "free_n") < 0 || take(o_incarn, &b[7], 8, 1, 1, 0, "incarnations") < 0) {
        release(b, 8);
        return NULL;
    }
    Py_ssize_t cap = b[0].view.len / 8;
    if (take(o_owner, &b[1], 8, cap, 1, 0, "owner") < 0 || take(o_free, &b[5], 8, 0, 1, 0, "free") < 0
        || PyList_GET_SIZE(keylist) != cap) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "assign: keylist must be as long as the arrays");
        release(b, 8);
        return NULL;
    }
    int64_t *touch = b[0].view.buf, *owner = b[1].view.buf, *slots = b[2].view.buf, *inc = b[4].view.buf;
    int64_t *freel = b[5].view.buf, *free_n = b[6].view.buf, *incarn = b[7].view.buf;
    Py_ssize_t free_cap = b[5].view.len / 8;
    uint8_t *fresh = b[3].view.buf;
    /* Fingerprints first, then the probes: a tight loop of probes runs faster on this
     * VM than one that interleaves them with hashing (a prefetch of the entries AHEAD
     * rows early was slower still: measured 1.04-1.2 against 0.72-0.8 us per event). */
    Py_ssize_t i = start, stop = n;
    uint64_t *fp = PyMem_Malloc(sizeof(uint64_t) * 2 * (n - start + 1));
    if (!fp) { PyErr_NoMemory(); goto fail; }
    for (Py_ssize_t r = start; r < n; r++)
        if (!row_fp(col, ncols, r, &fp[2 * (r - start)], &fp[2 * (r - start) + 1])) { stop = r; break; }
    for (; i < stop; i++) {
        uint64_t fa = fp[2 * (i - start)], fb = fp[2 * (i - start) + 1];
        KEntry *e = kt_find(t, fa, fb, 0);
        int64_t s;
        if (e->slot >= 0) {
            s = e->slot;
            fresh[i] = 0;
            e->touch = seq + i;
            slots[i] = s;
            inc[i] = e->owner;
            continue;
        } else {
            if (free_n[0] <= 0 || free_n[0] > free_cap) break;          /* Python grows or evicts */
            s = freel[free_n[0] - 1];
            if (s < 0 || s >= cap) { PyErr_SetString(PyExc_ValueError, "assign: free slot out of range"); goto fail; }
            PyObject *key, *slot;
            if (ncols == 1) {
                key = PyList_GET_ITEM(col[0], i);
                Py_INCREF(key);
            } else {
                key = PyTuple_New(ncols);
                if (!key) goto fail;
                for (int c = 0; c < ncols; c++) {
                    PyObject *v = PyList_GET_ITEM(col[c], i);
                    Py_INCREF(v);
                    PyTuple_SET_ITEM(key, c, v);
                }
                /* Its items are exact str and int (row_fp took only those): it can be in no cycle,
                 * so the collector need not track it (it would untrack it at its first pass anyway;
                 * tracked, a key per event made every young collection walk the new keys). */
                PyObject_GC_UnTrack(key);
            }
            if (index != Py_None) {                                   /* the dict, when Python keeps one too */
                slot = PyLong_FromLongLong(s);
                if (!slot || PyDict_SetItem(index, key, slot) < 0) { Py_XDECREF(slot); Py_DECREF(key); goto fail; }
                Py_DECREF(slot);
            }
            if (kt_put(t, fa, fb, s, seq + i, incarn[0] + 1) < 0) { Py_DECREF(key); goto fail; }
            PyList_SetItem(keylist, s, key);                           /* steals key */
            free_n[0] -= 1;
            incarn[0] += 1;
            owner[s] = incarn[0];
            fresh[i] = 1;
        }
        slots[i] = s;
        touch[s] = seq + i;
        inc[i] = owner[s];
    }
    PyMem_Free(fp);
    release(b, 8);
    if (i == stop && stop < n) return PyLong_FromSsize_t(-(stop + 1));   /* a value Python converts first */
    return PyLong_FromSsize_t(i);
fail:
    PyMem_Free(fp);
    release(b, 8);
    return NULL;
}

static PyObject *KeyTable_live(KeyTable *t, PyObject *unused) { return PyLong_FromSsize_t(t->live); }
static PyObject *KeyTable_size(KeyTable *t, PyObject *unused) { return PyLong_FromUnsignedLongLong(t->mask + 1); }

/* export(touch, owner): each live key's touch and owner into the slot-indexed arrays. */
static PyObject *KeyTable_export(KeyTable *t, PyObject *args) {
    PyObject *o_touch, *o_owner;
    if (!PyArg_ParseTuple(args, "OO", &o_touch, &o_owner)) return NULL;
    Buf bb[2] = {0};
    if (take(o_touch, &bb[0], 8, 0, 1, 0, "touch") < 0 || take(o_owner, &bb[1], 8, 0, 1, 0, "owner") < 0) {
        release(bb, 2);
        return NULL;
    }
    int64_t *touch = bb[0].view.buf, *owner = bb[1].view.buf;
    Py_ssize_t cap = bb[0].view.len / 8 < bb[1].view.len / 8 ? bb[0].view.len / 8 : bb[1].view.len / 8;
    for (uint64_t i = 0; i <= t->mask; i++) {
        KEntry *e = &t->tab[i];
        if (e->slot >= 0 && e->slot < cap) { touch[e->slot] = e->touch; owner[e->slot] = e->owner; }
    }
    release(bb, 2);
    Py_RETURN_NONE;
}

static PyMethodDef KeyTable_methods[] = {
    {"assign", (PyCFunction)KeyTable_assign, METH_VARARGS, "assign(cols, index, touch, owner, seq, start, slots, "
     "fresh, inc, keylist, free, free_n, incarnations) -> the row it stopped at, or -(row + 1) to convert"},
    {"remove", (PyCFunction)KeyTable_remove, METH_O, "remove(keys): forget evicted keys"},
    {"rebuild", (PyCFunction)KeyTable_rebuild, METH_VARARGS,
     "rebuild(keylist, touch, owner): index keylist's keys (None: free)"},
    {"export", (PyCFunction)KeyTable_export, METH_VARARGS, "export(touch, owner): into the slot-indexed arrays"},
    {"live", (PyCFunction)KeyTable_live, METH_NOARGS, "live() -> keys indexed"},
    {"size", (PyCFunction)KeyTable_size, METH_NOARGS, "size() -> entries of the probe array"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject KeyTableType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "jenga_edge.native._windows.KeyTable",
    .tp_basicsize = sizeof(KeyTable),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "KeyTable(): live keys by fingerprint -> slot, for one key space.",
    .tp_new = KeyTable_new,
    .tp_dealloc = (destructor)KeyTable_dealloc,
    .tp_methods = KeyTable_methods,
};

static PyMethodDef methods[] = {
    {"memo_mask", w_memo_mask, METH_VARARGS,
     "memo_mask(values, memo, out, start) -> n, the row whose value memo lacks, or -(row + 1) at another type"},
    {"has_none", w_has_none, METH_O, "has_none(list) -> whether an item is None"},
    {"value_hashes", w_value_hashes, METH_VARARGS,
     "value_hashes(values, out, has): value_hash of ints and ASCII strings (has 1), None (has 0), others (has 2)"},
    {"clock", w_clock, METH_VARARGS, "clock(times, state[4], lag, ahead_max, jump): event times in place"},
    {"buckets", w_buckets, METH_VARARGS, "buckets(kind, width, slots, fresh, t, x, cond, newest, acc, out)"},
    {"stats", w_stats, METH_VARARGS,
     "stats(width, slots, fresh, t, x, newest, acc, out_sum, out_mean, out_std): a shared sum/mean/std state"},
    {"count_last", w_count_last, METH_VARARGS, "count_last(slots, fresh, inc, count, owner, ring, pos, out)"},
    {"since_previous", w_since_previous, METH_VARARGS, "since_previous(slots, fresh, t, last, out)"},
    {"damped", w_damped, METH_VARARGS, "damped(decay, stat, has_field, slots, fresh, t, x, st, out)"},
    {"distinct", w_distinct, METH_VARARGS,
     "distinct(width, start, slots, fresh, t, h, has, newest, hashes, seen, sketch, pool, free, free_n, out)\n"
     "-> the row to resume from once the pool has a free sketch, or n when done"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_windows", "Window feature kernels.", -1, methods};

PyMODINIT_FUNC PyInit__windows(void) {
    if (PyType_Ready(&KeyTableType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddObjectRef(m, "KeyTable", (PyObject *)&KeyTableType) < 0) { Py_DECREF(m); return NULL; }
    return m;
}
