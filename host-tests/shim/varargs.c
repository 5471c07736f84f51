/*
 * C-variadic entry points of the test host.
 *
 * Rust (stable) can declare and call C-variadic functions but cannot define them, and the
 * OFX message and parameter-value functions are variadic. These few functions read the
 * varargs with <stdarg.h>, exactly as a C host would, and forward plain, typed arguments
 * to non-variadic Rust functions (`ofxh_*` below, defined in src/varargs.rs).
 *
 * Messages are formatted with vsnprintf, so a plugin that passes a format and arguments
 * gets the same text a real host would show.
 *
 * Parameter values: the Rust side tells us the value kind of the parameter (int, double or
 * string) and its dimension, and we read exactly that many arguments of exactly that C type.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

typedef int OfxStatus;
#define kOfxStatOK 0
#define kOfxStatFailed 1
#define kOfxStatErrBadHandle 9
#define kOfxStatErrMemory 8
#define kOfxStatErrUnsupported 5

enum { KIND_NONE = 0, KIND_INT = 1, KIND_DOUBLE = 2, KIND_STRING = 3 };
#define MAX_DIMS 4

/* Implemented in Rust. */
extern OfxStatus ofxh_rust_message(void *handle, const char *type, const char *id, const char *text, int persistent);
extern OfxStatus ofxh_rust_param_kind(void *param, int *kind, int *dims);
extern OfxStatus ofxh_rust_param_get_ints(void *param, int has_time, double time, int *out, int n);
extern OfxStatus ofxh_rust_param_get_doubles(void *param, int has_time, double time, double *out, int n);
extern OfxStatus ofxh_rust_param_get_string(void *param, int has_time, double time, const char **out);
extern OfxStatus ofxh_rust_param_set_ints(void *param, int has_time, double time, const int *in, int n);
extern OfxStatus ofxh_rust_param_set_doubles(void *param, int has_time, double time, const double *in, int n);
extern OfxStatus ofxh_rust_param_set_string(void *param, int has_time, double time, const char *in);

static OfxStatus format_and_record(void *handle, const char *type, const char *id, const char *format, va_list args,
                                   int persistent) {
    if (format == NULL) {
        return ofxh_rust_message(handle, type, id, "", persistent);
    }
    va_list measure;
    va_copy(measure, args);
    int length = vsnprintf(NULL, 0, format, measure);
    va_end(measure);
    if (length < 0) {
        return kOfxStatFailed;
    }
    char *text = malloc((size_t)length + 1);
    if (text == NULL) {
        return kOfxStatErrMemory;
    }
    vsnprintf(text, (size_t)length + 1, format, args);
    OfxStatus status = ofxh_rust_message(handle, type, id, text, persistent);
    free(text);
    return status;
}

OfxStatus ofxh_message(void *handle, const char *type, const char *id, const char *format, ...) {
    va_list args;
    va_start(args, format);
    OfxStatus status = format_and_record(handle, type, id, format, args, 0);
    va_end(args);
    return status;
}

OfxStatus ofxh_set_persistent_message(void *handle, const char *type, const char *id, const char *format, ...) {
    va_list args;
    va_start(args, format);
    OfxStatus status = format_and_record(handle, type, id, format, args, 1);
    va_end(args);
    return status;
}

static OfxStatus get_value(void *param, int has_time, double time, va_list args) {
    int kind = KIND_NONE, dims = 0;
    OfxStatus status = ofxh_rust_param_kind(param, &kind, &dims);
    if (status != kOfxStatOK) {
        return status;
    }
    if (dims < 1 || dims > MAX_DIMS) {
        return kOfxStatErrUnsupported;
    }
    switch (kind) {
    case KIND_INT: {
        int values[MAX_DIMS];
        status = ofxh_rust_param_get_ints(param, has_time, time, values, dims);
        for (int i = 0; i < dims; i++) {
            int *out = va_arg(args, int *);
            if (status == kOfxStatOK && out != NULL) {
                *out = values[i];
            }
        }
        return status;
    }
    case KIND_DOUBLE: {
        double values[MAX_DIMS];
        status = ofxh_rust_param_get_doubles(param, has_time, time, values, dims);
        for (int i = 0; i < dims; i++) {
            double *out = va_arg(args, double *);
            if (status == kOfxStatOK && out != NULL) {
                *out = values[i];
            }
        }
        return status;
    }
    case KIND_STRING: {
        const char *value = NULL;
        status = ofxh_rust_param_get_string(param, has_time, time, &value);
        const char **out = va_arg(args, const char **);
        if (status == kOfxStatOK && out != NULL) {
            *out = value;
        }
        return status;
    }
    default:
        return kOfxStatErrUnsupported; /* push buttons, groups and pages have no value */
    }
}

static OfxStatus set_value(void *param, int has_time, double time, va_list args) {
    int kind = KIND_NONE, dims = 0;
    OfxStatus status = ofxh_rust_param_kind(param, &kind, &dims);
    if (status != kOfxStatOK) {
        return status;
    }
    if (dims < 1 || dims > MAX_DIMS) {
        return kOfxStatErrUnsupported;
    }
    switch (kind) {
    case KIND_INT: {
        int values[MAX_DIMS];
        for (int i = 0; i < dims; i++) {
            values[i] = va_arg(args, int);
        }
        return ofxh_rust_param_set_ints(param, has_time, time, values, dims);
    }
    case KIND_DOUBLE: {
        double values[MAX_DIMS];
        for (int i = 0; i < dims; i++) {
            values[i] = va_arg(args, double);
        }
        return ofxh_rust_param_set_doubles(param, has_time, time, values, dims);
    }
    case KIND_STRING: {
        const char *value = va_arg(args, const char *);
        return ofxh_rust_param_set_string(param, has_time, time, value);
    }
    default:
        return kOfxStatErrUnsupported;
    }
}

OfxStatus ofxh_param_get_value(void *param, ...) {
    va_list args;
    va_start(args, param);
    OfxStatus status = get_value(param, 0, 0.0, args);
    va_end(args);
    return status;
}

OfxStatus ofxh_param_get_value_at_time(void *param, double time, ...) {
    va_list args;
    va_start(args, time);
    OfxStatus status = get_value(param, 1, time, args);
    va_end(args);
    return status;
}

OfxStatus ofxh_param_set_value(void *param, ...) {
    va_list args;
    va_start(args, param);
    OfxStatus status = set_value(param, 0, 0.0, args);
    va_end(args);
    return status;
}

OfxStatus ofxh_param_set_value_at_time(void *param, double time, ...) {
    va_list args;
    va_start(args, time);
    OfxStatus status = set_value(param, 1, time, args);
    va_end(args);
    return status;
}

/* Values are not animated in this host: derivatives are zero, integrals value * duration.
 * Both are defined for double parameters only (ofxParam.h). */
static OfxStatus derivative_or_integral(void *param, double time1, double time2, int integral, va_list args) {
    int kind = KIND_NONE, dims = 0;
    OfxStatus status = ofxh_rust_param_kind(param, &kind, &dims);
    if (status != kOfxStatOK) {
        return status;
    }
    if (kind != KIND_DOUBLE || dims < 1 || dims > MAX_DIMS) {
        return kOfxStatErrUnsupported;
    }
    double values[MAX_DIMS];
    status = ofxh_rust_param_get_doubles(param, 1, time1, values, dims);
    for (int i = 0; i < dims; i++) {
        double *out = va_arg(args, double *);
        if (status == kOfxStatOK && out != NULL) {
            *out = integral ? values[i] * (time2 - time1) : 0.0;
        }
    }
    return status;
}

OfxStatus ofxh_param_get_derivative(void *param, double time, ...) {
    va_list args;
    va_start(args, time);
    OfxStatus status = derivative_or_integral(param, time, time, 0, args);
    va_end(args);
    return status;
}

OfxStatus ofxh_param_get_integral(void *param, double time1, double time2, ...) {
    va_list args;
    va_start(args, time2);
    OfxStatus status = derivative_or_integral(param, time1, time2, 1, args);
    va_end(args);
    return status;
}
