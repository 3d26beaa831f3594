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
#include <string.h>

#define B 8        /* sub-windows of a time window (windows.BUCKETS) */
#define E 32       /* exact distinct values per key (windows.EXACT_DISTINCT) */
#define M 64       /* HyperLogLog registers (windows.SKETCH_REGISTERS) */
#define EMPTY INT64_MIN

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

static PyObject *w_clock(PyObject *self, PyObject *args) {
    PyObject *o_t, *o_st;
    double lag, ahead_max;
    long jump;
    if (!PyArg_ParseTuple(args, "OOddl", &o_t, &o_st, &lag, &ahead_max, &jump)) return NULL;
    Buf b[2];
    if (take(o_t, &b[0], 8, 0, 1, 0, "times") < 0 || take(o_st, &b[1], 8, 4, 1, 0, "state") < 0) {
        release(b, 2);
        return NULL;
    }
    double *t = b[0].view.buf, *st = b[1].view.buf;
    Py_ssize_t n = b[0].view.len / 8;
    double clock = st[0], run = st[1], late = st[2], ahead = st[3];
    for (Py_ssize_t i = 0; i < n; i++) {
        double ti = t[i];
        if (clock == -INFINITY) clock = ti;
        if (ti > clock + ahead_max) {
            ahead += 1;
            run += 1;
            if (run >= (double)jump) { clock = ti; run = 0; }
            else t[i] = clock;
            continue;
        }
        run = 0;
        if (ti < clock - lag) { late += 1; t[i] = clock - lag; }
        else if (ti > clock) clock = ti;
    }
    st[0] = clock; st[1] = run; st[2] = late; st[3] = ahead;
    release(b, 2);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------- time windows */

enum { K_COUNT = 0, K_SUM = 1, K_MEAN = 2, K_STD = 3, K_RATE = 4 };

/* Move slot s's ring to sub-window b; returns the sub-window the row counts in. */
static int64_t advance(int64_t *newest, double *acc, int k, int fresh, int64_t b) {
    int64_t nw = *newest;
    if (fresh || nw == EMPTY || b - nw >= B) {
        memset(acc, 0, sizeof(double) * B * k);
        *newest = b;
        return b;
    }
    if (b > nw) {
        for (int64_t j = nw + 1; j <= b; j++) memset(acc + ring_pos(j) * k, 0, sizeof(double) * k);
        *newest = b;
        return b;
    }
    return b > nw - B + 1 ? b : nw - B + 1;
}

static PyObject *w_buckets(PyObject *self, PyObject *args) {
    int kind;
    double width;
    PyObject *o_slots, *o_fresh, *o_t, *o_x, *o_cond, *o_newest, *o_acc, *o_out;
    if (!PyArg_ParseTuple(args, "idOOOOOOOO", &kind, &width, &o_slots, &o_fresh, &o_t, &o_x, &o_cond, &o_newest,
                          &o_acc, &o_out))
        return NULL;
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
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t s = slots[i];
        double *a = acc + s * B * k;
        int64_t at = advance(&newest[s], a, k, fresh[i], (int64_t)floor(t[i] / width));
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
        for (int p = 0; p < B; p++)
            for (int q = 0; q < k; q++) tot[q] += a[p * k + q];
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
    release(b, 8);
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
        double ti = t[i], prev = fresh[i] ? NAN : last[s];
        if (prev == prev) {
            double d = ti - prev;
            out[i] = d > 0.0 ? d : 0.0;
            last[s] = prev > ti ? prev : ti;
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
        double *st = state + slots[i] * 4, ti = t[i];
        if (fresh[i]) { st[0] = st[1] = st[2] = 0.0; st[3] = NAN; }
        double w = st[0], ls = st[1], ss = st[2], tl = st[3];
        if (tl == tl) {
            double dt = ti - tl, f = pow(2.0, -decay * (dt > 0.0 ? dt : 0.0));
            w *= f; ls *= f; ss *= f;
            tl = tl > ti ? tl : ti;
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
    if (take(o_hashes, &b[6], 8, cap * E, 1, 0, "hashes") < 0 || take(o_seen, &b[7], 8, cap * E, 1, 0, "seen") < 0
        || take(o_sketch, &b[8], 8, cap, 1, 0, "sketch") < 0 || take(o_free, &b[10], 8, P, 1, 0, "free") < 0
        || !slots_ok(b[0].view.buf, n, cap)) {
        release(b, 13);
        return NULL;
    }
    const int64_t *slots = b[0].view.buf;
    const uint8_t *fresh = b[1].view.buf, *has = b[4].view.buf;
    const double *t = b[2].view.buf;
    const uint64_t *hin = b[3].view.buf;
    int64_t *newest = b[5].view.buf, *seen_all = b[7].view.buf, *sketch = b[8].view.buf, *freel = b[10].view.buf;
    int64_t *free_n = b[11].view.buf;
    uint64_t *hash_all = b[6].view.buf;
    uint8_t *pool = b[9].view.buf;
    double *out = b[12].view.buf;
    Py_ssize_t i = start;
    for (; i < n; i++) {
        int64_t s = slots[i], bk = (int64_t)floor(t[i] / width), nw = newest[s];
        int64_t *seen = seen_all + s * E;
        uint64_t *hashes = hash_all + s * E;
        int64_t k = sketch[s];
        int convert = 0;
        /* would this row need a new sketch? (checked before any change, so resuming is exact) */
        if (has[i]) {
            int64_t at_nw = (fresh[i] || nw == EMPTY || bk - nw >= B) ? bk : (bk > nw ? bk : nw);
            int64_t oldest = at_nw - B + 1;
            int keeps = !(fresh[i] || nw == EMPTY || bk - nw >= B);
            if (!(keeps && k >= 0)) {
                int hit = 0, room = 0;
                for (int j = 0; j < E; j++) {
                    int live = keeps && seen[j] >= oldest;
                    if (live && hashes[j] == hin[i]) hit = 1;
                    if (!live) room = 1;
                }
                convert = !hit && !room;
            }
            if (convert && free_n[0] == 0) break;   /* Python grows the pool, then calls again from row i */
        }
        /* advance */
        int64_t at;
        if (fresh[i] || nw == EMPTY || bk - nw >= B) {
            for (int j = 0; j < E; j++) seen[j] = EMPTY;
            if (k >= 0) { freel[free_n[0]++] = k; sketch[s] = k = -1; }
            newest[s] = at = bk;
        } else if (bk > nw) {
            if (k >= 0)
                for (int64_t j = nw + 1; j <= bk; j++) memset(pool + (k * B + ring_pos(j)) * M, 0, M);
            newest[s] = at = bk;
        } else {
            at = bk > nw - B + 1 ? bk : nw - B + 1;
        }
        if (has[i]) {
            uint64_t h = hin[i];
            if (k >= 0) {
                hll_add(pool + (k * B + ring_pos(at)) * M, h);
            } else {
                int64_t oldest = newest[s] - B + 1;
                int done = 0;
                for (int j = 0; j < E && !done; j++)
                    if (seen[j] >= oldest && hashes[j] == h) { if (at > seen[j]) seen[j] = at; done = 1; }
                for (int j = 0; j < E && !done; j++)
                    if (seen[j] < oldest) { hashes[j] = h; seen[j] = at; done = 1; }
                if (!done) {
                    k = freel[--free_n[0]];
                    sketch[s] = k;
                    memset(pool + k * B * M, 0, B * M);
                    for (int j = 0; j < E; j++) hll_add(pool + (k * B + ring_pos(seen[j])) * M, hashes[j]);
                    hll_add(pool + (k * B + ring_pos(at)) * M, h);
                }
            }
        }
        if (k >= 0) {
            out[i] = hll_estimate(pool + k * B * M);
        } else {
            int64_t oldest = newest[s] - B + 1;
            int live = 0;
            for (int j = 0; j < E; j++) live += seen[j] >= oldest;
            out[i] = (double)live;
        }
    }
    release(b, 13);
    return PyLong_FromSsize_t(i);
}

/* ------------------------------------------------------------------ keys */

/* Rows from `start` whose key is in `index` (dict key -> slot): slot, touch and
 * assignment id, until the first key that is not; returns that row (n: all done).
 * Python gives that key a slot (maybe evicting) and calls again from the next row. */
static PyObject *w_assign(PyObject *self, PyObject *args) {
    PyObject *keys, *index, *o_touch, *o_owner, *o_slots, *o_fresh, *o_inc;
    long long seq;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "O!O!OOLnOOO", &PyList_Type, &keys, &PyDict_Type, &index, &o_touch, &o_owner, &seq,
                          &start, &o_slots, &o_fresh, &o_inc))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(keys);
    Buf b[5] = {0};
    if (take(o_touch, &b[0], 8, 0, 1, 0, "touch") < 0 || take(o_slots, &b[2], 8, n, 1, 0, "slots") < 0
        || take(o_fresh, &b[3], 1, n, 1, 0, "fresh") < 0 || take(o_inc, &b[4], 8, n, 1, 0, "inc") < 0) {
        release(b, 5);
        return NULL;
    }
    Py_ssize_t cap = b[0].view.len / 8;
    if (take(o_owner, &b[1], 8, cap, 0, 0, "owner") < 0) { release(b, 5); return NULL; }
    int64_t *touch = b[0].view.buf, *slots = b[2].view.buf, *inc = b[4].view.buf;
    const int64_t *owner = b[1].view.buf;
    uint8_t *fresh = b[3].view.buf;
    Py_ssize_t i = start;
    for (; i < n; i++) {
        PyObject *v = PyDict_GetItemWithError(index, PyList_GET_ITEM(keys, i));   /* borrowed */
        if (!v) {
            if (PyErr_Occurred()) { release(b, 5); return NULL; }
            break;
        }
        long long s = PyLong_AsLongLong(v);
        if (s < 0 || s >= cap) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "assign: slot out of range");
            release(b, 5);
            return NULL;
        }
        slots[i] = s;
        fresh[i] = 0;
        touch[s] = seq + i;
        inc[i] = owner[s];
    }
    release(b, 5);
    return PyLong_FromSsize_t(i);
}

static PyMethodDef methods[] = {
    {"assign", w_assign, METH_VARARGS,
     "assign(keys, index, touch, owner, seq, start, slots, fresh, inc) -> the first row whose key has no slot, or n"},
    {"clock", w_clock, METH_VARARGS, "clock(times, state[4], lag, ahead_max, jump): event times in place"},
    {"buckets", w_buckets, METH_VARARGS, "buckets(kind, width, slots, fresh, t, x, cond, newest, acc, out)"},
    {"count_last", w_count_last, METH_VARARGS, "count_last(slots, fresh, inc, count, owner, ring, pos, out)"},
    {"since_previous", w_since_previous, METH_VARARGS, "since_previous(slots, fresh, t, last, out)"},
    {"damped", w_damped, METH_VARARGS, "damped(decay, stat, has_field, slots, fresh, t, x, st, out)"},
    {"distinct", w_distinct, METH_VARARGS,
     "distinct(width, start, slots, fresh, t, h, has, newest, hashes, seen, sketch, pool, free, free_n, out)\n"
     "-> the row to resume from once the pool has a free sketch, or n when done"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_windows", "Window feature kernels.", -1, methods};

PyMODINIT_FUNC PyInit__windows(void) { return PyModule_Create(&module); }
