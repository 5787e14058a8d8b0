/* offgen._decode: the predecessor's float32 CHW frames -> offgen's uint8 HWC frames, in one pass.
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

/* Both functions' buffers: a C-contiguous source (with `src_flags`) and a writable C-contiguous
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
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "offgen._decode",
    "Compiled frame decoding for legacy conversion (see offgen/_decode.c).", -1, methods,
};

PyMODINIT_FUNC PyInit__decode(void) { return PyModule_Create(&module); }
