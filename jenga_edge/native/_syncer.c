/* fsync on a thread that never takes the GIL.
 *
 * The JSON Lines sinks fsync once per batch, off the scoring thread, so the
 * disk wait overlaps the next batch. Done by a Python thread, every fsync
 * also meant taking the GIL back from the scoring thread and handing it over
 * again: on a one-core gateway that churn (futex calls, context switches)
 * cost more than the fsync itself. This thread only touches a mutex, a
 * condition variable and fsync(2).
 *
 * Syncer.request(fd)  ask for an fsync of fd (coalesced with any pending one)
 * Syncer.check()      raise the error of a finished fsync, if any (once)
 * Syncer.wait()       block (GIL released) until every request so far is done
 * Syncer.stop()       finish pending requests and end the thread
 * A failed fsync is raised as OSError by the next check() or wait().
 * The caller must wait() before closing a descriptor it asked to sync.
 * A Syncer belongs to the process that made it: after fork() it refuses work.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <pthread.h>
#include <sys/types.h>
#include <unistd.h>

typedef struct {
    PyObject_HEAD
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned long long requested, done;
    int fd, error, stopping, started, running, joined;   /* running: the thread has not exited */
    pid_t owner;
} Syncer;

static void *run(void *arg) {
    Syncer *s = (Syncer *)arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->done >= s->requested && !s->stopping) pthread_cond_wait(&s->cv, &s->mu);
        if (s->done >= s->requested) break;                 /* stopping, nothing pending */
        unsigned long long target = s->requested;
        int fd = s->fd;
        pthread_mutex_unlock(&s->mu);
        int rc = fsync(fd);
        int err = rc < 0 ? errno : 0;
        pthread_mutex_lock(&s->mu);
        if (err) s->error = err;
        s->done = target;
        pthread_cond_broadcast(&s->cv);
    }
    s->running = 0;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static int take_error(Syncer *s) {      /* call with mu held */
    int e = s->error;
    s->error = 0;
    return e;
}

static PyObject *raise_errno(int e) {
    errno = e;
    return PyErr_SetFromErrno(PyExc_OSError);
}

static int usable(Syncer *s) {
    if (!s->started) {
        PyErr_SetString(PyExc_RuntimeError, "Syncer: not started");
        return 0;
    }
    if (s->owner != getpid()) {
        PyErr_SetString(PyExc_RuntimeError, "Syncer: made by another process (fork): its thread is not here");
        return 0;
    }
    return 1;
}

static PyObject *Syncer_request(Syncer *s, PyObject *arg) {
    int fd = PyObject_AsFileDescriptor(arg);
    if (fd < 0 || !usable(s)) return NULL;
    pthread_mutex_lock(&s->mu);
    if (s->stopping || !s->running) {
        pthread_mutex_unlock(&s->mu);
        PyErr_SetString(PyExc_RuntimeError, "Syncer: stopped");
        return NULL;
    }
    s->fd = fd;
    s->requested++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    Py_RETURN_NONE;
}

static PyObject *Syncer_check(Syncer *s, PyObject *Py_UNUSED(ignored)) {
    if (!usable(s)) return NULL;
    pthread_mutex_lock(&s->mu);
    int e = take_error(s);
    pthread_mutex_unlock(&s->mu);
    if (e) return raise_errno(e);
    Py_RETURN_NONE;
}

static PyObject *Syncer_wait(Syncer *s, PyObject *Py_UNUSED(ignored)) {
    int e = 0;
    if (!usable(s)) return NULL;
    {
        Py_BEGIN_ALLOW_THREADS
        pthread_mutex_lock(&s->mu);
        while (s->done < s->requested && s->running) pthread_cond_wait(&s->cv, &s->mu);
        e = take_error(s);
        pthread_mutex_unlock(&s->mu);
        Py_END_ALLOW_THREADS
    }
    if (e) return raise_errno(e);
    Py_RETURN_NONE;
}

static void stop_thread(Syncer *s) {
    if (!s->started || s->owner != getpid()) return;   /* after fork() the thread is not ours to join */
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cv);
    int join = !s->joined;
    s->joined = 1;                                     /* only one caller joins */
    pthread_mutex_unlock(&s->mu);
    if (join) pthread_join(s->thread, NULL);
}

static PyObject *Syncer_stop(Syncer *s, PyObject *Py_UNUSED(ignored)) {
    Py_BEGIN_ALLOW_THREADS
    stop_thread(s);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static int Syncer_init(Syncer *s, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "", kwlist)) return -1;
    if (s->started) {
        PyErr_SetString(PyExc_RuntimeError, "Syncer: already started");
        return -1;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->requested = s->done = 0;
    s->fd = -1;
    s->error = s->stopping = s->joined = 0;
    s->running = 1;
    s->owner = getpid();
    int rc = pthread_create(&s->thread, NULL, run, s);
    if (rc != 0) {
        s->running = 0;
        errno = rc;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    s->started = 1;
    return 0;
}

static void Syncer_dealloc(Syncer *s) {
    Py_BEGIN_ALLOW_THREADS
    stop_thread(s);
    Py_END_ALLOW_THREADS
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyMethodDef Syncer_methods[] = {
    {"request", (PyCFunction)Syncer_request, METH_O, "request(fd): fsync fd on the syncer thread, soon."},
    {"check", (PyCFunction)Syncer_check, METH_NOARGS, "check(): raise a finished fsync's error (once)."},
    {"wait", (PyCFunction)Syncer_wait, METH_NOARGS, "wait(): until every request so far is done."},
    {"stop", (PyCFunction)Syncer_stop, METH_NOARGS, "stop(): finish pending requests, end the thread."},
    {NULL, NULL, 0, NULL}};

static PyTypeObject SyncerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "jenga_edge._syncer.Syncer",
    .tp_basicsize = sizeof(Syncer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Syncer(): fsync requests served by a thread that never takes the GIL.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Syncer_init,
    .tp_dealloc = (destructor)Syncer_dealloc,
    .tp_methods = Syncer_methods,
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_syncer",
    .m_doc = "fsync off the GIL for jenga_edge.sinks.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__syncer(void) {
    if (PyType_Ready(&SyncerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddObjectRef(m, "Syncer", (PyObject *)&SyncerType) < 0) { Py_DECREF(m); return NULL; }
    return m;
}
