/* offgen._decode: offgen's optional compiled kernels (each has a numpy or torch fallback).
 *
 * 1. chw_float32_to_hwc_uint8: the predecessor's float32 CHW frames -> uint8 HWC, in one pass.
 * 2. hwc_to_chw_uint8: frame layout copy (below).
 * 3. max_pool_3x3_s2: the IMPALA network's max pool in inference (below).
 * 4. will_need_rows: asks the kernel to read a batch's rows of a file mapping ahead (below).
 *
 * Converting a legacy archive spends most of its decode time on three numpy passes per block of
 * frames (cast, exactness check, channel interleave with a byte stride of 3). This kernel fuses
 * them: per frame, each channel plane is cast and checked into a 4 KiB buffer, then the three
 * planes are interleaved. Both loops auto-vectorise; on x86-64 Linux the function is also
 * compiled for AVX2 and the best version is picked at load time (target_clones).
 *
 * The check is exact and matches the numpy path: a value passes only if it is a whole number in
 * [0, 255] (NaN, infinities, fractions and out-of-range values fail; -0.0 passes as 0).
 *
 * No numpy headers: arrays arrive through the buffer protocol, and the GIL is released while
 * frames are decoded (the writer's compression threads call this concurrently).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define OFFGEN_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef OFFGEN_CLONES
#define OFFGEN_CLONES
#endif

#define MAX_PIXELS 4096 /* per plane: Procgen frames are 64 x 64 */
#define MAGIC 12582912.0f /* 1.5 * 2^23 */
#define MAGIC_BITS 0x4B400000u
#define NEGATIVE_ZERO_BITS 0x80000000u

/* Casts one plane into `out`; returns nonzero if any value is not a whole number in [0, 255].
 *
 * Adding 1.5 * 2^23 moves a value in [0, 255] into [2^23, 2^24), where floats are exactly the
 * integers, so the low bits of the sum are the value rounded to an integer. The value passes only
 * if the sum's bits lie within 255 of the constant's (the rounded value is in 0..255) and
 * subtracting the constant gives the value back bit for bit (it was whole; -0.0 passes as 0). Everything else fails: fractions,
 * negatives, NaN, infinities, values above 255. Written this way (no float-to-int conversion,
 * which is undefined out of range, and no branches) the loop vectorises.
 */
static inline int cast_plane(const float *restrict plane, uint8_t *restrict out, Py_ssize_t n) {
    int bad = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        float value = plane[i];
        float shifted = value + MAGIC;
        float back = shifted - MAGIC;
        uint32_t bits, value_bits, back_bits;
        memcpy(&bits, &shifted, sizeof bits);
        memcpy(&value_bits, &value, sizeof value_bits);
        memcpy(&back_bits, &back, sizeof back_bits);
        uint32_t whole = bits - MAGIC_BITS;
        /* Compare bits, not floats: a process whose MXCSR has DAZ set (any library linked with
         * -ffast-math sets it at load) compares a denormal such as 1e-45 equal to 0. */
        bad |= ((back_bits != value_bits) & (value_bits != NEGATIVE_ZERO_BITS)) | (whole > 255u);
        out[i] = (uint8_t)whole;
    }
    return bad;
}

/* Returns the index of the first frame holding an invalid value, or -1. */
OFFGEN_CLONES
static Py_ssize_t decode_frames(const float *restrict src, uint8_t *restrict dst,
                                Py_ssize_t frames, Py_ssize_t pixels) {
    uint8_t planes[3][MAX_PIXELS];
    for (Py_ssize_t f = 0; f < frames; f++) {
        const float *frame = src + f * 3 * pixels;
        int bad = cast_plane(frame, planes[0], pixels);
        bad |= cast_plane(frame + pixels, planes[1], pixels);
        bad |= cast_plane(frame + 2 * pixels, planes[2], pixels);
        if (bad) {
            return f;
        }
        uint8_t *out = dst + f * 3 * pixels;
        for (Py_ssize_t i = 0; i < pixels; i++) {
            out[3 * i] = planes[0][i];
            out[3 * i + 1] = planes[1][i];
            out[3 * i + 2] = planes[2][i];
        }
    }
    return -1;
}

/* HWC -> CHW for uint8 frames: per frame, one pass over the interleaved pixels writing three
 * planes. numpy's strided transpose copy ran at ~1.4 GB/s here (8.8 us per 64 x 64 frame), the
 * bottleneck of a stream sampler's read-ahead thread in CHW; this loop vectorises. */
OFFGEN_CLONES
static void interleaved_to_planes(const uint8_t *restrict src, uint8_t *restrict dst,
                                  Py_ssize_t frames, Py_ssize_t pixels) {
    for (Py_ssize_t f = 0; f < frames; f++) {
        const uint8_t *in = src + f * 3 * pixels;
        uint8_t *r = dst + f * 3 * pixels, *g = r + pixels, *b = g + pixels;
        for (Py_ssize_t i = 0; i < pixels; i++) {
            r[i] = in[3 * i];
            g[i] = in[3 * i + 1];
            b[i] = in[3 * i + 2];
        }
    }
}

/* Max pooling, 3 x 3 window, stride 2, padding 1 (the IMPALA network's), on NHWC frames of
 * float32 or bfloat16 (the bits of a bfloat16 are the high half of a float32's).
 *
 * Why: in inference, torch's CPU max pool also writes int64 indices nobody reads; it was 30% of a
 * batch-64 bfloat16 IMPALA forward here. Per output row: the column max of its (up to) three input
 * rows into a float row, then the max of (up to) three neighbours of that row at stride 2. Both
 * loops run over contiguous channels and vectorise. A NaN anywhere in a window gives NaN, as in
 * torch; bfloat16 results are the winning input's bits (a max is exact). One thread: a second
 * one, started here, competed with torch's OpenMP threads (which spin between operations) and
 * made the forward slower than torch's own pool. */
static inline float bf16_bits_to_float(uint16_t bits) {
    uint32_t u = (uint32_t)bits << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint16_t float_to_bf16_bits(float f) { /* exact: f came from a bfloat16 */
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (uint16_t)(u >> 16);
}

static inline float max_nan(float m, float v) { return (v > m || v != v) ? v : m; }

/* acc[i] = max over the given rows (r2 may be NULL: a window cut by the border). */
OFFGEN_CLONES
static void rows_max_f32(const float *restrict r0, const float *restrict r1,
                         const float *restrict r2, float *restrict acc, Py_ssize_t n) {
    if (r2 != NULL) {
        for (Py_ssize_t i = 0; i < n; i++) acc[i] = max_nan(max_nan(r0[i], r1[i]), r2[i]);
    } else {
        for (Py_ssize_t i = 0; i < n; i++) acc[i] = max_nan(r0[i], r1[i]);
    }
}

OFFGEN_CLONES
static void rows_max_bf16(const uint16_t *restrict r0, const uint16_t *restrict r1,
                          const uint16_t *restrict r2, float *restrict acc, Py_ssize_t n) {
    if (r2 != NULL) {
        for (Py_ssize_t i = 0; i < n; i++) {
            float m = max_nan(bf16_bits_to_float(r0[i]), bf16_bits_to_float(r1[i]));
            acc[i] = max_nan(m, bf16_bits_to_float(r2[i]));
        }
    } else {
        for (Py_ssize_t i = 0; i < n; i++) {
            acc[i] = max_nan(bf16_bits_to_float(r0[i]), bf16_bits_to_float(r1[i]));
        }
    }
}

/* out pixel x = max of acc pixels 2x - 1, 2x, 2x + 1 that exist, channel by channel. */
OFFGEN_CLONES
static void cols_max(const float *restrict acc, float *restrict out, Py_ssize_t w, Py_ssize_t ow,
                     Py_ssize_t c) {
    for (Py_ssize_t ox = 0; ox < ow; ox++) {
        const float *mid = acc + 2 * ox * c;
        const float *left = ox > 0 ? mid - c : mid;
        const float *right = 2 * ox + 1 < w ? mid + c : mid;
        float *o = out + ox * c;
        for (Py_ssize_t k = 0; k < c; k++) o[k] = max_nan(max_nan(left[k], mid[k]), right[k]);
    }
}

typedef struct {
    const char *src;
    char *dst;
    Py_ssize_t frames, h, w, c;
    int bf16;
    float *acc, *row; /* scratch: w * c and ow * c floats */
} PoolJob;

static void pool_frames(const PoolJob *job) {
    Py_ssize_t h = job->h, w = job->w, c = job->c, oh = (h + 1) / 2, ow = (w + 1) / 2;
    size_t item = job->bf16 ? 2 : 4, row_bytes = (size_t)(w * c) * item;
    for (Py_ssize_t f = 0; f < job->frames; f++) {
        const char *frame = job->src + (size_t)(f * h) * row_bytes;
        for (Py_ssize_t oy = 0; oy < oh; oy++) {
            Py_ssize_t y = 2 * oy; /* window rows y - 1, y, y + 1, clipped to the frame */
            const char *r0 = frame + (size_t)(y > 0 ? y - 1 : y) * row_bytes;
            const char *r1 = frame + (size_t)y * row_bytes;
            const char *r2 = y + 1 < h ? frame + (size_t)(y + 1) * row_bytes : NULL;
            char *out = job->dst + (size_t)((f * oh + oy) * ow * c) * item;
            if (job->bf16) {
                rows_max_bf16((const uint16_t *)r0, (const uint16_t *)r1, (const uint16_t *)r2,
                              job->acc, w * c);
                cols_max(job->acc, job->row, w, ow, c);
                uint16_t *o = (uint16_t *)out;
                for (Py_ssize_t i = 0; i < ow * c; i++) o[i] = float_to_bf16_bits(job->row[i]);
            } else {
                rows_max_f32((const float *)r0, (const float *)r1, (const float *)r2, job->acc,
                             w * c);
                cols_max(job->acc, (float *)out, w, ow, c);
            }
        }
    }
}

/* The functions' buffers: a C-contiguous source (with `src_flags`) and a writable C-contiguous
 * destination. Returns -1 with a Python error set and nothing held, else 0 (release both). */
static int get_src_dst(PyObject *src_obj, int src_flags, PyObject *dst_obj, Py_buffer *src,
                       Py_buffer *dst) {
    if (PyObject_GetBuffer(src_obj, src, PyBUF_C_CONTIGUOUS | src_flags) < 0) {
        return -1;
    }
    if (PyObject_GetBuffer(dst_obj, dst, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(src);
        return -1;
    }
    return 0;
}

/* Releases what get_src_dst acquired; with a `problem`, raises it as ValueError and returns -1. */
static int release_src_dst(Py_buffer *src, Py_buffer *dst, const char *problem) {
    PyBuffer_Release(dst);
    PyBuffer_Release(src);
    if (problem != NULL) {
        PyErr_SetString(PyExc_ValueError, problem);
        return -1;
    }
    return 0;
}

static int is_native_float32(const Py_buffer *view) {
    const char *format = view->format;
    if (format == NULL || view->itemsize != 4) {
        return 0;
    }
    if (format[0] == '@' || format[0] == '=' ||
        (format[0] == '<' && PY_LITTLE_ENDIAN) || (format[0] == '>' && PY_BIG_ENDIAN)) {
        format++;
    }
    return strcmp(format, "f") == 0;
}

static PyObject *chw_float32_to_hwc_uint8(PyObject *self, PyObject *args) {
    PyObject *src_obj, *dst_obj;
    Py_ssize_t frames, pixels;
    if (!PyArg_ParseTuple(args, "OOnn", &src_obj, &dst_obj, &frames, &pixels)) {
        return NULL;
    }
    if (frames < 0 || pixels <= 0 || pixels > MAX_PIXELS) {
        PyErr_Format(PyExc_ValueError, "frames must be >= 0 and pixels in 1..%d", MAX_PIXELS);
        return NULL;
    }
    Py_buffer src, dst;
    if (get_src_dst(src_obj, PyBUF_FORMAT, dst_obj, &src, &dst) < 0) {
        return NULL;
    }
    Py_ssize_t result = -1;
    const char *problem = NULL;
    if (!is_native_float32(&src)) {
        problem = "source must be native float32";
    } else if (src.len != frames * 3 * pixels * 4) {
        problem = "source must hold frames x 3 x pixels float32 values";
    } else if (dst.len != frames * 3 * pixels) {
        problem = "destination must hold frames x pixels x 3 bytes";
    } else {
        Py_BEGIN_ALLOW_THREADS
        result = decode_frames((const float *)src.buf, (uint8_t *)dst.buf, frames, pixels);
        Py_END_ALLOW_THREADS
    }
    if (release_src_dst(&src, &dst, problem) < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(result);
}

static PyObject *hwc_to_chw_uint8(PyObject *self, PyObject *args) {
    PyObject *src_obj, *dst_obj;
    Py_ssize_t frames, pixels;
    if (!PyArg_ParseTuple(args, "OOnn", &src_obj, &dst_obj, &frames, &pixels)) {
        return NULL;
    }
    if (frames < 0 || pixels <= 0) {
        PyErr_SetString(PyExc_ValueError, "frames must be >= 0 and pixels >= 1");
        return NULL;
    }
    Py_buffer src, dst;
    if (get_src_dst(src_obj, 0, dst_obj, &src, &dst) < 0) {
        return NULL;
    }
    const char *problem = NULL;
    if (src.len != frames * 3 * pixels || dst.len != src.len) {
        problem = "source and destination must each hold frames x pixels x 3 bytes";
    } else if ((const char *)dst.buf < (const char *)src.buf + src.len &&
               (const char *)src.buf < (const char *)dst.buf + dst.len && src.len > 0) {
        problem = "source and destination must not overlap";
    } else {
        Py_BEGIN_ALLOW_THREADS
        interleaved_to_planes((const uint8_t *)src.buf, (uint8_t *)dst.buf, frames, pixels);
        Py_END_ALLOW_THREADS
    }
    if (release_src_dst(&src, &dst, problem) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *max_pool_3x3_s2(PyObject *self, PyObject *args) {
    PyObject *src_obj, *dst_obj;
    Py_ssize_t frames, h, w, c;
    int bf16;
    if (!PyArg_ParseTuple(args, "OOnnnnp", &src_obj, &dst_obj, &frames, &h, &w, &c, &bf16)) {
        return NULL;
    }
    if (frames < 0 || h < 2 || w < 2 || c < 1) {
        PyErr_SetString(PyExc_ValueError,
                        "need frames >= 0, height and width >= 2 and channels >= 1");
        return NULL;
    }
    Py_buffer src, dst;
    if (get_src_dst(src_obj, 0, dst_obj, &src, &dst) < 0) {
        return NULL;
    }
    Py_ssize_t item = bf16 ? 2 : 4;
    const char *problem = NULL;
    if (src.len != frames * h * w * c * item) {
        problem = "source must hold frames x height x width x channels values";
    } else if (dst.len != frames * ((h + 1) / 2) * ((w + 1) / 2) * c * item) {
        problem = "destination must hold frames x (height+1)/2 x (width+1)/2 x channels values";
    } else if ((const char *)dst.buf < (const char *)src.buf + src.len &&
               (const char *)src.buf < (const char *)dst.buf + dst.len && src.len > 0) {
        problem = "source and destination must not overlap";
    } else {
        float *scratch = PyMem_RawMalloc(sizeof(float) * (size_t)(w * c + ((w + 1) / 2) * c));
        if (scratch == NULL) {
            problem = "out of memory";
        } else {
            PoolJob job = {(const char *)src.buf, (char *)dst.buf, frames, h, w, c, bf16,
                           scratch, scratch + w * c};
            Py_BEGIN_ALLOW_THREADS
            pool_frames(&job);
            Py_END_ALLOW_THREADS
            PyMem_RawFree(scratch);
        }
    }
    if (release_src_dst(&src, &dst, problem) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Tells the kernel which rows of a file mapping a batch is about to read (MADV_WILLNEED), so
 * that the missing pages are read concurrently instead of one synchronous page fault at a time.
 *
 * Why: this project's VM reclaims cold page-cache pages by itself, so minutes after the frame
 * cache was warmed most of a random batch's frames are on disk again. Gathering a 512 x 10 window
 * batch then took 1.26-1.29 s (mostly page faults, one 4 KiB read after another); advised first,
 * 0.05 s (measured after dropping the page cache). Runs of consecutive rows (a window, a
 * frame stack) are advised as one range. Returns the number of madvise calls. */
static Py_ssize_t advise_rows(const char *base, Py_ssize_t len, const int64_t *rows,
                              Py_ssize_t count, Py_ssize_t row_bytes, uintptr_t page) {
    Py_ssize_t calls = 0, i = 0;
    while (i < count) {
        int64_t first = rows[i], last = rows[i];
        while (i + 1 < count && rows[i + 1] == last + 1) last = rows[++i];
        i++;
        if (first < 0 || (last + 1) * row_bytes > len) continue; /* the gather reports it */
        uintptr_t start = (uintptr_t)(base + first * row_bytes) & ~(page - 1);
        uintptr_t end = (uintptr_t)(base + (last + 1) * row_bytes);
        (void)madvise((void *)start, end - start, MADV_WILLNEED); /* a hint: failure is fine */
        calls++;
    }
    return calls;
}

static PyObject *will_need_rows(PyObject *self, PyObject *args) {
    PyObject *frames_obj, *rows_obj;
    Py_ssize_t row_bytes;
    if (!PyArg_ParseTuple(args, "OOn", &frames_obj, &rows_obj, &row_bytes)) {
        return NULL;
    }
    if (row_bytes < 1) {
        PyErr_SetString(PyExc_ValueError, "row_bytes must be >= 1");
        return NULL;
    }
    Py_buffer frames, rows;
    if (PyObject_GetBuffer(frames_obj, &frames, PyBUF_C_CONTIGUOUS) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(rows_obj, &rows, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&frames);
        return NULL;
    }
    Py_ssize_t calls = -1;
    size_t format_length = rows.format == NULL ? 0 : strlen(rows.format);
    const char *kind = format_length == 0 ? "" : rows.format + format_length - 1;
    if (rows.itemsize != 8 || *kind == 0 || strchr("ql", *kind) == NULL) {
        PyErr_SetString(PyExc_ValueError, "rows must be a C-contiguous int64 array");
    } else {
        uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
        Py_BEGIN_ALLOW_THREADS
        calls = advise_rows((const char *)frames.buf, frames.len, (const int64_t *)rows.buf,
                            rows.len / 8, row_bytes, page);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&rows);
    PyBuffer_Release(&frames);
    return calls < 0 ? NULL : PyLong_FromSsize_t(calls);
}

static PyMethodDef methods[] = {
    {"chw_float32_to_hwc_uint8", chw_float32_to_hwc_uint8, METH_VARARGS,
     "chw_float32_to_hwc_uint8(src, dst, frames, pixels) -> int\n\n"
     "Cast float32 frames (frames, 3, pixels) into uint8 (frames, pixels, 3), checking that every\n"
     "value is a whole number in [0, 255]. Returns -1, or the index of the first invalid frame\n"
     "(frames before it are written, it and later ones are not). Releases the GIL."},
    {"hwc_to_chw_uint8", hwc_to_chw_uint8, METH_VARARGS,
     "hwc_to_chw_uint8(src, dst, frames, pixels) -> None\n\n"
     "Copy uint8 frames (frames, pixels, 3) into (frames, 3, pixels); both C-contiguous, not\n"
     "overlapping. Releases the GIL."},
    {"max_pool_3x3_s2", max_pool_3x3_s2, METH_VARARGS,
     "max_pool_3x3_s2(src, dst, frames, height, width, channels, bf16) -> None\n\n"
     "3 x 3 max pooling, stride 2, padding 1, of C-contiguous NHWC float32 (or, with bf16,\n"
     "bfloat16 bits) frames into (frames, (height+1)/2, (width+1)/2, channels); NaN propagates.\n"
     "Releases the GIL."},
    {"will_need_rows", will_need_rows, METH_VARARGS,
     "will_need_rows(frames, rows, row_bytes) -> int\n\n"
     "madvise(MADV_WILLNEED) the rows `rows` (int64, C-contiguous) of the C-contiguous buffer\n"
     "`frames`, runs of consecutive rows as one range; rows outside it are skipped. Returns the\n"
     "number of madvise calls. Releases the GIL."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "offgen._decode",
    "Compiled kernels: legacy frame decoding, layout copies, inference max pooling, read-ahead "
    "advice (offgen/_decode.c).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__decode(void) { return PyModule_Create(&module); }
