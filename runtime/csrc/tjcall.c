/*
 * tjcall.c - tensorjit.runtime._tjcall: the C call path of a compiled function
 * whose argument shapes are all static.
 *
 * A small compiled function (a scalar-style gradient runs in about 1 us) spent
 * most of its call in Python: one ffi.from_buffer per array, np.empty per
 * output, the cffi call. A StaticCall does the same work in C: it checks that
 * each argument is exactly an ndarray with the expected dtype object, shape and
 * C-contiguous strides, allocates the outputs, fills the buffer table on the C
 * stack (so concurrent calls never share it) and calls the kernel.
 *
 * Anything it does not take (another class, dtype, shape or layout, a wrong
 * number of arguments, keywords) goes elsewhere: with `miss` set it returns
 * that object (a caller holding several signatures tries the next one), else it
 * calls `fallback(*args)`, the Python path that converts or raises a clear
 * error. Outputs of at least a pool size and the scratch arena come from the
 * Python memory pool through callables, since those calls are long anyway.
 *
 * The GIL is released around the kernel only when `release_gil` says so (the
 * caller decides by the bytes a call moves): a short kernel holds it for
 * microseconds, whereas taking it back while another Python thread runs can
 * wait for that thread's whole switch interval (5 ms by default).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stddef.h>
#include <stdint.h>

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

typedef int32_t (*tj_entry_fn)(void **bufs, int64_t *dims, char *arena);

/* Buffer tables and output lists up to this long live on the C stack. */
#define TJ_STACK_SLOTS 32

typedef struct {
    int ndim;
    npy_intp *shape;   /* ndim entries */
    npy_intp *strides; /* ndim entries, bytes (inputs only) */
    PyArray_Descr *descr;
    int pooled;        /* outputs: allocate through the pool callable */
    PyObject *shape_obj; /* outputs: the shape as a tuple, for the pool */
} ArraySpec;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    tj_entry_fn entry;
    Py_ssize_t n_in, n_out, n_const;
    ArraySpec *in;
    ArraySpec *out;
    void **const_ptrs;
    PyObject *consts; /* tuple of arrays whose data const_ptrs point into */
    Py_ssize_t arena_bytes;
    int release_gil;
    int returns_tuple;
    PyObject *miss;      /* returned for arguments not taken, or NULL */
    PyObject *fallback;  /* called with the arguments not taken when miss is NULL */
    PyObject *pool_array;
    PyObject *acquire;
    PyObject *release;
    PyObject *fail;      /* fail(status) raises the error of a non-zero status */
    PyObject *stats;     /* dict: "calls" is incremented after each call */
    PyObject *arena_size_obj;
} StaticCall;

static PyObject *str_calls;
static PyObject *str_address;

/* --- construction -------------------------------------------------------------------- */

static int read_dims(PyObject *seq, const char *what, Py_ssize_t index, npy_intp **out,
                     int *ndim)
{
    PyObject *fast = PySequence_Fast(seq, "expected a tuple of ints");
    if (fast == NULL) {
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n > NPY_MAXDIMS) {
        PyErr_Format(PyExc_ValueError, "%s[%zd]: rank %zd exceeds %d", what, index, n,
                     NPY_MAXDIMS);
        Py_DECREF(fast);
        return -1;
    }
    npy_intp *dims = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof(npy_intp));
    if (dims == NULL) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t d = 0; d < n; d++) {
        Py_ssize_t v = PyNumber_AsSsize_t(PySequence_Fast_GET_ITEM(fast, d), PyExc_OverflowError);
        if (v == -1 && PyErr_Occurred()) {
            PyMem_Free(dims);
            Py_DECREF(fast);
            return -1;
        }
        dims[d] = (npy_intp)v;
    }
    Py_DECREF(fast);
    *out = dims;
    *ndim = (int)n;
    return 0;
}

/* Fills specs[0..n) from parallel tuples; strides may be NULL (outputs). */
static int read_specs(const char *what, PyObject *dtypes, PyObject *shapes, PyObject *strides,
                      PyObject *pooled, ArraySpec **out, Py_ssize_t *count)
{
    if (!PyTuple_Check(dtypes) || !PyTuple_Check(shapes) ||
        (strides != NULL && !PyTuple_Check(strides)) || (pooled != NULL && !PyTuple_Check(pooled))) {
        PyErr_Format(PyExc_TypeError, "%s: dtypes, shapes, strides and pooled must be tuples",
                     what);
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(dtypes);
    if (PyTuple_GET_SIZE(shapes) != n || (strides != NULL && PyTuple_GET_SIZE(strides) != n) ||
        (pooled != NULL && PyTuple_GET_SIZE(pooled) != n)) {
        PyErr_Format(PyExc_ValueError, "%s: dtypes, shapes, strides and pooled differ in length",
                     what);
        return -1;
    }
    ArraySpec *specs = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof(ArraySpec));
    if (specs == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *out = specs; /* freed by the caller's dealloc, even when partly filled */
    *count = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *dt = PyTuple_GET_ITEM(dtypes, i);
        if (!PyArray_DescrCheck(dt)) {
            PyErr_Format(PyExc_TypeError, "%s dtypes[%zd]: expected a numpy.dtype, got %.100s",
                         what, i, Py_TYPE(dt)->tp_name);
            return -1;
        }
        Py_INCREF(dt);
        specs[i].descr = (PyArray_Descr *)dt;
        if (read_dims(PyTuple_GET_ITEM(shapes, i), what, i, &specs[i].shape, &specs[i].ndim) < 0) {
            return -1;
        }
        if (strides != NULL) {
            int sndim = 0;
            if (read_dims(PyTuple_GET_ITEM(strides, i), what, i, &specs[i].strides, &sndim) < 0) {
                return -1;
            }
            if (sndim != specs[i].ndim) {
                PyErr_Format(PyExc_ValueError, "%s[%zd]: %d strides for rank %d", what, i, sndim,
                             specs[i].ndim);
                return -1;
            }
        }
        if (pooled != NULL) {
            specs[i].pooled = PyObject_IsTrue(PyTuple_GET_ITEM(pooled, i));
            if (specs[i].pooled < 0) {
                return -1;
            }
            specs[i].shape_obj = PyTuple_GET_ITEM(shapes, i);
            Py_INCREF(specs[i].shape_obj);
        }
    }
    return 0;
}

static void free_specs(ArraySpec *specs, Py_ssize_t n)
{
    if (specs == NULL) {
        return;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_XDECREF(specs[i].descr);
        Py_XDECREF(specs[i].shape_obj);
        PyMem_Free(specs[i].shape);
        PyMem_Free(specs[i].strides);
    }
    PyMem_Free(specs);
}

static int require_callable(PyObject *obj, const char *name)
{
    if (!PyCallable_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "StaticCall: %s must be callable, got %.100s", name,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    return 0;
}

static PyObject *StaticCall_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                                       PyObject *kwnames);

static PyObject *StaticCall_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"entry", "in_dtypes", "in_shapes", "in_strides", "out_dtypes",
                             "out_shapes", "out_pooled", "consts", "arena_bytes",
                             "release_gil", "returns_tuple", "miss", "fallback", "pool_array",
                             "acquire", "release", "fail", "stats", NULL};
    PyObject *entry_obj, *in_dtypes, *in_shapes, *in_strides, *out_dtypes, *out_shapes;
    PyObject *out_pooled, *consts, *miss, *fallback, *pool_array, *acquire, *release, *fail;
    PyObject *stats;
    Py_ssize_t arena_bytes;
    int release_gil, returns_tuple;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOOO!nppOOOOOOO!:StaticCall", kwlist,
                                     &entry_obj, &in_dtypes, &in_shapes, &in_strides,
                                     &out_dtypes, &out_shapes, &out_pooled, &PyTuple_Type,
                                     &consts, &arena_bytes, &release_gil, &returns_tuple, &miss,
                                     &fallback, &pool_array, &acquire, &release, &fail,
                                     &PyDict_Type, &stats)) {
        return NULL;
    }
    void *entry = PyLong_AsVoidPtr(entry_obj);
    if (entry == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "StaticCall: entry address is 0");
        }
        return NULL;
    }
    if (arena_bytes < 0) {
        PyErr_SetString(PyExc_ValueError, "StaticCall: arena_bytes must be >= 0");
        return NULL;
    }
    if (require_callable(fallback, "fallback") < 0 || require_callable(pool_array, "pool_array") < 0 ||
        require_callable(acquire, "acquire") < 0 || require_callable(release, "release") < 0 ||
        require_callable(fail, "fail") < 0) {
        return NULL;
    }

    StaticCall *self = PyObject_GC_New(StaticCall, type);
    if (self == NULL) {
        return NULL;
    }
    /* Everything dealloc reads starts empty, so any failure below can just DECREF. */
    memset((char *)self + sizeof(PyObject), 0, sizeof(StaticCall) - sizeof(PyObject));
    self->vectorcall = StaticCall_vectorcall;
    /* Function pointers and data pointers have the same size on every target we build for. */
    self->entry = (tj_entry_fn)(uintptr_t)entry;
    self->arena_bytes = arena_bytes;
    self->release_gil = release_gil;
    self->returns_tuple = returns_tuple;
    self->miss = miss == Py_None ? NULL : Py_NewRef(miss);
    self->fallback = Py_NewRef(fallback);
    self->pool_array = Py_NewRef(pool_array);
    self->acquire = Py_NewRef(acquire);
    self->release = Py_NewRef(release);
    self->fail = Py_NewRef(fail);
    self->stats = Py_NewRef(stats);
    self->consts = Py_NewRef(consts);
    PyObject_GC_Track(self);

    if (read_specs("inputs", in_dtypes, in_shapes, in_strides, NULL, &self->in, &self->n_in) < 0 ||
        read_specs("outputs", out_dtypes, out_shapes, NULL, out_pooled, &self->out,
                   &self->n_out) < 0) {
        goto fail;
    }
    if (self->n_out < 1 || (!returns_tuple && self->n_out != 1)) {
        PyErr_Format(PyExc_ValueError, "StaticCall: %zd outputs with returns_tuple=%d",
                     self->n_out, returns_tuple);
        goto fail;
    }
    self->n_const = PyTuple_GET_SIZE(consts);
    self->const_ptrs = PyMem_Calloc(self->n_const > 0 ? (size_t)self->n_const : 1, sizeof(void *));
    if (self->const_ptrs == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t j = 0; j < self->n_const; j++) {
        PyObject *c = PyTuple_GET_ITEM(consts, j);
        if (!PyArray_Check(c) || !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)c)) {
            PyErr_Format(PyExc_TypeError, "StaticCall: consts[%zd] must be a C-contiguous "
                         "ndarray", j);
            goto fail;
        }
        self->const_ptrs[j] = PyArray_DATA((PyArrayObject *)c);
    }
    if (arena_bytes > 0) {
        self->arena_size_obj = PyLong_FromSsize_t(arena_bytes);
        if (self->arena_size_obj == NULL) {
            goto fail;
        }
    }
    return (PyObject *)self;

fail:
    Py_DECREF(self);
    return NULL;
}

static int StaticCall_traverse(StaticCall *self, visitproc visit, void *arg)
{
    Py_VISIT(self->miss);
    Py_VISIT(self->fallback);
    Py_VISIT(self->pool_array);
    Py_VISIT(self->acquire);
    Py_VISIT(self->release);
    Py_VISIT(self->fail);
    Py_VISIT(self->stats);
    Py_VISIT(self->consts);
    return 0;
}

static int StaticCall_clear(StaticCall *self)
{
    Py_CLEAR(self->miss);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->pool_array);
    Py_CLEAR(self->acquire);
    Py_CLEAR(self->release);
    Py_CLEAR(self->fail);
    Py_CLEAR(self->stats);
    return 0;
}

static void StaticCall_dealloc(StaticCall *self)
{
    PyObject_GC_UnTrack(self);
    StaticCall_clear(self);
    free_specs(self->in, self->n_in);
    free_specs(self->out, self->n_out);
    PyMem_Free(self->const_ptrs);
    Py_XDECREF(self->consts);
    Py_XDECREF(self->arena_size_obj);
    PyObject_GC_Del(self);
}

/* --- the call ------------------------------------------------------------------------ */

static int takes(const ArraySpec *spec, PyObject *obj)
{
    if (Py_TYPE(obj) != &PyArray_Type) {
        return 0;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    if (PyArray_DESCR(a) != spec->descr || PyArray_NDIM(a) != spec->ndim) {
        return 0;
    }
    const npy_intp *dims = PyArray_DIMS(a);
    const npy_intp *strides = PyArray_STRIDES(a);
    for (int d = 0; d < spec->ndim; d++) {
        if (dims[d] != spec->shape[d] || strides[d] != spec->strides[d]) {
            return 0;
        }
    }
    return 1;
}

static PyObject *not_taken(StaticCall *self, PyObject *const *args, size_t nargsf,
                           PyObject *kwnames)
{
    if (self->miss != NULL) {
        return Py_NewRef(self->miss);
    }
    return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
}

/* The pool's array must be what np.empty would have made, since the kernel writes it whole. */
static int pool_array_fits(const ArraySpec *spec, PyObject *obj)
{
    if (!PyArray_CheckExact(obj)) {
        return 0;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    if (!PyArray_IS_C_CONTIGUOUS(a) || !PyArray_ISWRITEABLE(a) || PyArray_NDIM(a) != spec->ndim ||
        !PyArray_EquivTypes(PyArray_DESCR(a), spec->descr)) {
        return 0;
    }
    for (int d = 0; d < spec->ndim; d++) {
        if (PyArray_DIMS(a)[d] != spec->shape[d]) {
            return 0;
        }
    }
    return 1;
}

static PyObject *new_output(const ArraySpec *spec, PyObject *pool_array)
{
    if (spec->pooled) {
        PyObject *o = PyObject_CallFunctionObjArgs(pool_array, spec->shape_obj,
                                                   (PyObject *)spec->descr, NULL);
        if (o != NULL && !pool_array_fits(spec, o)) {
            PyErr_SetString(PyExc_RuntimeError, "StaticCall: the pool returned an unusable array");
            Py_CLEAR(o);
        }
        return o;
    }
    Py_INCREF(spec->descr); /* PyArray_NewFromDescr steals it */
    return PyArray_NewFromDescr(&PyArray_Type, spec->descr, spec->ndim, spec->shape, NULL, NULL,
                                0, NULL);
}

static int count_call(PyObject *stats)
{
    PyObject *old = PyDict_GetItemWithError(stats, str_calls); /* borrowed */
    if (old == NULL && PyErr_Occurred()) {
        return -1;
    }
    PyObject *one = PyLong_FromLong(1);
    PyObject *now = old == NULL ? Py_NewRef(one) : PyNumber_Add(old, one);
    Py_DECREF(one);
    if (now == NULL) {
        return -1;
    }
    int rc = PyDict_SetItem(stats, str_calls, now);
    Py_DECREF(now);
    return rc;
}

static int run_kernel(StaticCall *self, void **bufs)
{
    PyObject *block = NULL;
    char *arena = NULL;
    if (self->arena_bytes > 0) {
        block = PyObject_CallOneArg(self->acquire, self->arena_size_obj);
        if (block == NULL) {
            return -1;
        }
        PyObject *address = PyObject_GetAttr(block, str_address);
        if (address == NULL) {
            Py_DECREF(block);
            return -1;
        }
        arena = PyLong_AsVoidPtr(address);
        Py_DECREF(address);
        if (arena == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_RuntimeError, "StaticCall: the pool returned address 0");
            }
            Py_DECREF(block);
            return -1;
        }
    }
    int32_t status;
    if (self->release_gil) {
        Py_BEGIN_ALLOW_THREADS
        status = self->entry(bufs, NULL, arena);
        Py_END_ALLOW_THREADS
    }
    else {
        status = self->entry(bufs, NULL, arena);
    }
    if (block != NULL) {
        PyObject *r = PyObject_CallOneArg(self->release, block);
        Py_DECREF(block);
        if (r == NULL) {
            return -1;
        }
        Py_DECREF(r);
    }
    if (status != 0) {
        PyObject *r = PyObject_CallFunction(self->fail, "i", (int)status);
        if (r != NULL) { /* fail() is meant to raise; make sure the call still fails */
            Py_DECREF(r);
            PyErr_Format(PyExc_RuntimeError, "native code returned error %d", (int)status);
        }
        return -1;
    }
    return 0;
}

static PyObject *StaticCall_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                                       PyObject *kwnames)
{
    StaticCall *self = (StaticCall *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (self->stats == NULL) { /* only after the cycle collector cleared it */
        PyErr_SetString(PyExc_RuntimeError, "StaticCall: called after it was cleared");
        return NULL;
    }
    if (nargs != self->n_in || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0)) {
        return not_taken(self, args, nargsf, kwnames);
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        if (!takes(&self->in[i], args[i])) {
            return not_taken(self, args, nargsf, kwnames);
        }
    }

    Py_ssize_t n_bufs = self->n_in + self->n_out + self->n_const;
    void *stack_bufs[TJ_STACK_SLOTS];
    PyObject *stack_outs[TJ_STACK_SLOTS];
    void **bufs = stack_bufs;
    PyObject **outs = stack_outs;
    PyObject *result = NULL;
    Py_ssize_t made = 0;
    if (n_bufs > TJ_STACK_SLOTS) {
        bufs = PyMem_Malloc((size_t)n_bufs * sizeof(void *));
        outs = PyMem_Malloc((size_t)self->n_out * sizeof(PyObject *));
        if (bufs == NULL || outs == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        bufs[i] = PyArray_DATA((PyArrayObject *)args[i]);
    }
    for (; made < self->n_out; made++) {
        outs[made] = new_output(&self->out[made], self->pool_array);
        if (outs[made] == NULL) {
            goto done;
        }
        bufs[self->n_in + made] = PyArray_DATA((PyArrayObject *)outs[made]);
    }
    for (Py_ssize_t j = 0; j < self->n_const; j++) {
        bufs[self->n_in + self->n_out + j] = self->const_ptrs[j];
    }
    if (run_kernel(self, bufs) < 0 || count_call(self->stats) < 0) {
        goto done;
    }
    if (self->returns_tuple) {
        result = PyTuple_New(self->n_out);
        if (result == NULL) {
            goto done;
        }
        for (Py_ssize_t k = 0; k < self->n_out; k++) {
            PyTuple_SET_ITEM(result, k, outs[k]); /* steals */
        }
        made = 0;
    }
    else {
        result = outs[0];
        made = 0;
    }

done:
    for (Py_ssize_t k = 0; k < made; k++) {
        Py_DECREF(outs[k]);
    }
    if (bufs != stack_bufs) {
        PyMem_Free(bufs);
    }
    if (outs != stack_outs) {
        PyMem_Free(outs);
    }
    return result;
}

static PyMemberDef StaticCall_members[] = {
    {"release_gil", T_INT, offsetof(StaticCall, release_gil), READONLY,
     PyDoc_STR("1 if the GIL is released around the kernel")},
    {"arena_bytes", T_PYSSIZET, offsetof(StaticCall, arena_bytes), READONLY,
     PyDoc_STR("bytes of scratch arena taken from the pool per call")},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject StaticCallType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tensorjit.runtime._tjcall.StaticCall",
    .tp_doc = PyDoc_STR("StaticCall(entry, in_dtypes, in_shapes, in_strides, out_dtypes, "
                        "out_shapes, out_pooled, consts, arena_bytes, release_gil, "
                        "returns_tuple, miss, fallback, pool_array, acquire, release, fail, "
                        "stats): call a compiled kernel of static shapes from C."),
    .tp_basicsize = sizeof(StaticCall),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = StaticCall_new,
    .tp_dealloc = (destructor)StaticCall_dealloc,
    .tp_traverse = (traverseproc)StaticCall_traverse,
    .tp_clear = (inquiry)StaticCall_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(StaticCall, vectorcall),
    .tp_members = StaticCall_members,
};

static struct PyModuleDef tjcall_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tensorjit.runtime._tjcall",
    .m_doc = PyDoc_STR("The C call path of compiled functions with static shapes."),
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__tjcall(void)
{
    import_array();
    str_calls = PyUnicode_InternFromString("calls");
    str_address = PyUnicode_InternFromString("address");
    if (str_calls == NULL || str_address == NULL || PyType_Ready(&StaticCallType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&tjcall_module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "StaticCall", (PyObject *)&StaticCallType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
